package orchestrator

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/inventory"
	"github.com/legacyvm/legacyvm/internal/license"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
	"github.com/legacyvm/legacyvm/profiles"
)

// Obviously fake keys in the Windows 7 format.
const (
	seatKeyA = "BCDFG-HJKMP-QRTVW-XY234-6789B"
	seatKeyB = "MPQRT-VWXY2-3467B-CDFGH-JK89C"
)

// seatEnv is the environment the tests' key sources read.
var seatEnv = map[string]string{"KEY_A": seatKeyA, "KEY_A_AGAIN": seatKeyA, "KEY_B": seatKeyB}

func seatGetenv(k string) (string, bool) { v, ok := seatEnv[k]; return v, ok }

func testFingerprinter(t *testing.T) FingerprintFunc {
	t.Helper()
	f, err := license.NewFingerprinter(bytes.Repeat([]byte{7}, license.SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	return func(k license.Key, _ []license.FingerprintHolder) (string, string, error) {
		return f.Fingerprint(k), f.SecretID(), nil
	}
}

// seatProfile is one licence and one vm with count instances that use it.
func seatProfile(label, envVar, channel string, seats int, vm string, count int) string {
	seatLine := ""
	if seats > 0 {
		seatLine = fmt.Sprintf("  seats       = %d\n", seats)
	}
	edition := "professional"
	countLine := ""
	if count > 1 {
		countLine = fmt.Sprintf("  count  = %d\n", count)
	}
	return fmt.Sprintf(`license %q {
  product_key = env(%q)
  edition     = %q
  channel     = %q
%s}

vm %q {
%s  os     = "win7-x64"
  memory = "1GiB"
  disk {
    image   = %q
    prepare = "none"
  }
  licenses = [license.%s]
}
`, label, envVar, edition, channel, seatLine, vm, countLine, golden, label)
}

// countingKeys is SourceKeys on the tests' environment that records which
// variables were read.
type countingKeys struct {
	read []string
	fp   FingerprintFunc
}

func (c *countingKeys) keys() keyIdentifier {
	return sourceKeys(func(k string) (string, bool) {
		c.read = append(c.read, k)
		return seatGetenv(k)
	}, c.fp)
}

func planWith(t *testing.T, p *profiles.Profile, h virt.Hypervisor, keys keyIdentifier) ([]*HostPlan, hcl.Diagnostics, error) {
	t.Helper()
	return planProfile(context.Background(), p, connector(h), Options{DefaultURI: "test:///fake", ReadKeys: keys.on, keys: keys})
}

// applyWithKeys plans with keys and applies, recording fingerprints.
func applyWithKeys(t *testing.T, p *profiles.Profile, h virt.Hypervisor) {
	t.Helper()
	fp := testFingerprinter(t)
	hps, diags, err := planWith(t, p, h, sourceKeys(seatGetenv, fp))
	if err != nil || diags.HasErrors() {
		t.Fatalf("plan %s: %v %s", p.Name, err, diags.Error())
	}
	e := &engine{HV: h, Parallelism: 2, PollInterval: 1, Getenv: seatGetenv, Fingerprint: fp}
	if res, err := e.Apply(context.Background(), hps[0].Plan); err != nil {
		t.Fatalf("apply %s: %v %+v", p.Name, err, res)
	}
}

// lineOf returns the 1-based line of the first occurrence of s in src.
func lineOf(t *testing.T, src, s string) int {
	t.Helper()
	i := strings.Index(src, s)
	if i < 0 {
		t.Fatalf("%q not in profile", s)
	}
	return strings.Count(src[:i], "\n") + 1
}

func diagText(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "%s: %s\n", d.Summary, d.Detail)
	}
	return b.String()
}

func assertNoKeyIn(t *testing.T, what, s string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		for _, g := range strings.Split(k, "-")[:4] {
			if strings.Contains(s, g) {
				t.Fatalf("%s shows a group of a product key: %s", what, s)
			}
		}
	}
}

func TestSeatsSecondProfileReusingRetailKeyIsRefused(t *testing.T) {
	h := newFakeHost(t)
	a := loadProfile(t, "alpha", seatProfile("office", "KEY_A", "retail", 0, "acct", 1))
	applyWithKeys(t, a, h)

	srcB := seatProfile("spare", "KEY_A_AGAIN", "retail", 0, "tester", 1)
	b := loadProfile(t, "beta", srcB)

	// plan without keys: the key is unknown, so nothing can be matched
	// across profiles; the plan says what it did not check.
	hps, diags, err := planWith(t, b, h, keyIdentifier{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("plan without keys: %v %s", err, diagText(diags))
	}
	notes := strings.Join(hps[0].Plan.Notes, "\n")
	if !strings.Contains(notes, "licence spare: seats counted by licence name only") || !strings.Contains(notes, "plan --check-keys") {
		t.Errorf("plan notes do not say the key was not checked: %q", notes)
	}

	// With keys (apply's planning, plan --check-keys): refused, at the vm
	// block's licenses attribute, naming the VM and profile holding it.
	keys := &countingKeys{fp: testFingerprinter(t)}
	_, diags, err = planWith(t, b, h, keys.keys())
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 || diags[0].Severity != hcl.DiagError {
		t.Fatalf("want one error diagnostic, got:\n%s", diagText(diags))
	}
	d := diags[0]
	if d.Summary != "Licence key already in use" {
		t.Errorf("summary %q", d.Summary)
	}
	for _, want := range []string{`Licence "spare" (key XXXXX-XXXXX-XXXXX-XXXXX-6789B) is a retail licence`,
		`VM "acct" (licence "office", profile "alpha", defined on the host since `, `VM "tester" would get no seat`} {
		if !strings.Contains(d.Detail, want) {
			t.Errorf("detail does not contain %q:\n%s", want, d.Detail)
		}
	}
	if d.Subject == nil || d.Subject.Start.Line != lineOf(t, srcB, "licenses = [license.spare]") || filepath.Base(d.Subject.Filename) != "main.hcl" {
		t.Errorf("subject %v, want the licenses attribute at line %d", d.Subject, lineOf(t, srcB, "licenses ="))
	}
	if got := strings.Join(keys.read, ","); got != "KEY_A_AGAIN" {
		t.Errorf("keys read: %q, want KEY_A_AGAIN (licence spare)", got)
	}
	assertNoKeyIn(t, "diagnostic", diagText(diags), seatKeyA)
	// Planning created nothing.
	doms, _ := h.ListDomains(context.Background())
	for _, dom := range doms {
		if dom.Name == "tester" {
			t.Errorf("planning created domain tester")
		}
	}
}

func TestSeatsOwnProfile(t *testing.T) {
	h := newFakeHost(t)
	src := seatProfile("office", "KEY_A", "retail", 0, "acct", 1)
	a := loadProfile(t, "alpha", src)
	applyWithKeys(t, a, h)

	t.Run("re-plan needs no key and finds the recorded one", func(t *testing.T) {
		keys := &countingKeys{fp: testFingerprinter(t)}
		hps, diags, err := planWith(t, a, h, keys.keys())
		if err != nil || len(diags) != 0 {
			t.Fatalf("re-plan: %v %s", err, diagText(diags))
		}
		if hps[0].Plan.HasChanges() || len(keys.read) != 0 || len(hps[0].Plan.Notes) != 0 {
			t.Errorf("changes %v, keys read %v, notes %v", hps[0].Plan.HasChanges(), keys.read, hps[0].Plan.Notes)
		}
	})
	t.Run("another profile found by the recorded fingerprint without keys", func(t *testing.T) {
		// The second profile's VM exists already (applied before the
		// check existed, or by two applies at once): each plan reports
		// the over-subscription, without reading any key.
		b := loadProfile(t, "beta", seatProfile("spare", "KEY_A_AGAIN", "retail", 0, "tester", 1))
		fp := testFingerprinter(t)
		hpsB, _, err := planWith(t, b, h, keyIdentifier{})
		if err != nil {
			t.Fatal(err)
		}
		e := &engine{HV: h, Parallelism: 1, PollInterval: 1, Getenv: seatGetenv, Fingerprint: fp}
		if _, err := e.Apply(context.Background(), hpsB[0].Plan); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*profiles.Profile{a, b} {
			_, diags, err := planWith(t, p, h, keyIdentifier{})
			if err != nil {
				t.Fatal(err)
			}
			if len(diags) != 1 || diags[0].Summary != "Licence key already in use" {
				t.Errorf("plan %s: want the reuse reported, got:\n%s", p.Name, diagText(diags))
			}
		}
		if err := (&engine{HV: h, PollInterval: 1}).teardownVM(context.Background(), mustDomain(t, h, "tester")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a vm leaving the licence frees its seat", func(t *testing.T) {
		// acct is replaced by other (same licence): acct's seat goes
		// with acct's deletion.
		b := loadProfile(t, "alpha", strings.ReplaceAll(src, `vm "acct"`, `vm "other"`))
		keys := &countingKeys{fp: testFingerprinter(t)}
		hps, diags, err := planWith(t, b, h, keys.keys())
		if err != nil || diags.HasErrors() {
			t.Fatalf("plan: %v %s", err, diagText(diags))
		}
		got := changesByName(hps[0].Plan)
		if got["vm/acct"].Action != ActionDelete || got["vm/other"].Action != ActionCreate {
			t.Errorf("plan %+v", hps[0].Plan.Changes)
		}
	})
}

func mustDomain(t *testing.T, h virt.Hypervisor, name string) virt.Domain {
	t.Helper()
	d, err := h.GetDomain(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSeatsMAKAcrossProfiles(t *testing.T) {
	h := newFakeHost(t)
	a := loadProfile(t, "alpha", seatProfile("vol", "KEY_B", "mak", 3, "w", 2))
	applyWithKeys(t, a, h)
	// Two of three activations are used: one more VM fits, two do not.
	one := loadProfile(t, "beta", seatProfile("vol2", "KEY_B", "mak", 3, "x", 1))
	keys := sourceKeys(seatGetenv, testFingerprinter(t))
	if _, diags, err := planWith(t, one, h, keys); err != nil || len(diags) != 0 {
		t.Fatalf("one more VM: %v %s", err, diagText(diags))
	}
	srcTwo := seatProfile("vol2", "KEY_B", "mak", 3, "x", 2)
	two := loadProfile(t, "beta", srcTwo)
	_, diags, err := planWith(t, two, h, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 {
		t.Fatalf("two more VMs: want one diagnostic, got:\n%s", diagText(diags))
	}
	d := diags[0]
	for _, want := range []string{"Licence has no free seat", `is a MAK licence declared with 3 activations`, `VM "w-1" (licence "vol", profile "alpha"`, `VM "w-2"`, `VM "x-2" would get no seat`} {
		if !strings.Contains(d.Summary+" "+d.Detail, want) {
			t.Errorf("diagnostic does not contain %q:\n%s: %s", want, d.Summary, d.Detail)
		}
	}
	if d.Subject == nil || d.Subject.Start.Line != lineOf(t, srcTwo, "licenses =") {
		t.Errorf("subject %v", d.Subject)
	}
}

func TestSeatsChannelConflict(t *testing.T) {
	h := newFakeHost(t)
	applyWithKeys(t, loadProfile(t, "alpha", seatProfile("vol", "KEY_B", "mak", 5, "w", 1)), h)
	src := seatProfile("cheap", "KEY_B", "retail", 0, "r", 1)
	p := loadProfile(t, "beta", src)
	_, diags, err := planWith(t, p, h, sourceKeys(seatGetenv, testFingerprinter(t)))
	if err != nil {
		t.Fatal(err)
	}
	// The key is a MAK key declared as retail here, and as retail it has
	// no seat left either: both are reported.
	if len(diags) != 2 || diags[0].Summary != "Licence key declared with two channels" || diags[1].Summary != "Licence key already in use" {
		t.Fatalf("got:\n%s", diagText(diags))
	}
	if !strings.Contains(diags[0].Detail, `VM "w" (licence "vol", profile "alpha", defined on the host since `) || !strings.Contains(diags[0].Detail, "uses the same key as MAK") {
		t.Errorf("detail: %s", diags[0].Detail)
	}
	if s := diags[0].Subject; s == nil || s.Start.Line != lineOf(t, src, `license "cheap"`) {
		t.Errorf("subject %v, want the licence block", s)
	}
	if s := diags[1].Subject; s == nil || s.Start.Line != lineOf(t, src, "licenses =") {
		t.Errorf("subject %v, want the licenses attribute", s)
	}
}

func TestSeatsKeyReadErrors(t *testing.T) {
	h := newFakeHost(t)
	bad := map[string]string{"KEY_BAD": "BCDFG-HJKMP-QRTVW-XY234-6789N"}
	getenv := func(k string) (string, bool) { v, ok := bad[k]; return v, ok }
	for _, tt := range []struct{ env, want string }{
		{"KEY_MISSING", "read product key of licence office from env(\"KEY_MISSING\"): secret unavailable: environment variable KEY_MISSING is not set"},
		{"KEY_BAD", "product key of licence office (from env(\"KEY_BAD\")): not a Windows 7 product key: character 25 (group 5, place 5) is the letter N"},
	} {
		p := loadProfile(t, "alpha", seatProfile("office", tt.env, "retail", 0, "acct", 1))
		_, _, err := planWith(t, p, h, sourceKeys(getenv, testFingerprinter(t)))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("err = %v, want prefix %q", err, tt.want)
		}
		if err != nil {
			assertNoKeyIn(t, "error", err.Error(), bad["KEY_BAD"])
		}
	}
}

func TestLicenceInventory(t *testing.T) {
	h := newFakeHost(t)
	applyWithKeys(t, loadProfile(t, "alpha", seatProfile("office", "KEY_A", "retail", 0, "acct", 1)), h)
	applyWithKeys(t, loadProfile(t, "gamma", seatProfile("vol", "KEY_B", "mak", 5, "w", 2)), h)
	// beta reuses alpha's key (as if applied before seat checks existed).
	b := loadProfile(t, "beta", seatProfile("spare", "KEY_A_AGAIN", "retail", 0, "tester", 1))
	hps, _, err := planWith(t, b, h, keyIdentifier{})
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{HV: h, Parallelism: 1, PollInterval: 1, Getenv: seatGetenv, Fingerprint: testFingerprinter(t)}
	if _, err := e.Apply(context.Background(), hps[0].Plan); err != nil {
		t.Fatal(err)
	}
	doms, err := h.ListDomains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hosts := []inventory.HostDomains{{URI: "test:///fake", Domains: doms}}

	all := inventory.Licences(hosts, nil)
	if len(all) != 2 {
		t.Fatalf("want 2 entries, got %+v", all)
	}
	office, vol := all[0], all[1]
	if office.Label != "office" || office.Profile != "alpha" || len(office.OtherNames) != 1 || office.OtherNames[0] != (inventory.LicenceName{Profile: "beta", Label: "spare"}) {
		t.Errorf("office entry names: %+v", office)
	}
	if office.SeatsUsed != 2 || office.SeatsAllowed != 1 || !office.OverSubscribed || office.Key != "XXXXX-XXXXX-XXXXX-XXXXX-6789B" {
		t.Errorf("office entry seats/key: %+v", office)
	}
	if len(office.VMs) != 2 || office.VMs[0].Name != "acct" || office.VMs[1].Name != "tester" || office.VMs[1].Profile != "beta" || office.VMs[0].Since.IsZero() || !office.VMs[0].Provisioned {
		t.Errorf("office VMs: %+v", office.VMs)
	}
	if vol.Channel != "mak" || vol.SeatsDeclared != 5 || vol.SeatsAllowed != 5 || vol.SeatsUsed != 2 || vol.OverSubscribed || vol.Edition != "professional" || vol.Key != "XXXXX-XXXXX-XXXXX-XXXXX-JK89C" {
		t.Errorf("vol entry: %+v", vol)
	}

	// A profile's view: its licences, including one no VM uses yet, and
	// the other profiles' VMs that share a key with it.
	p := loadProfile(t, "beta", seatProfile("spare", "KEY_A_AGAIN", "retail", 0, "tester", 1)+`
license "unused" {
  product_key = env("NOPE")
  edition     = "ultimate"
  channel     = "retail"
}
`)
	mine := inventory.Licences(hosts, p)
	if len(mine) != 2 {
		t.Fatalf("profile view: want 2 entries, got %+v", mine)
	}
	if mine[0].Label != "office" || mine[0].SeatsUsed != 2 {
		t.Errorf("profile view, shared key: %+v", mine[0])
	}
	if u := mine[1]; u.Label != "unused" || u.Profile != "beta" || u.SeatsUsed != 0 || u.SeatsAllowed != 1 || u.Key != "" || u.VMs == nil || len(u.VMs) != 0 {
		t.Errorf("profile view, unused licence: %+v", u)
	}
	assertNoKeyIn(t, "inventory", fmt.Sprintf("%+v", all), seatKeyA, seatKeyB)
}

func TestInstallISOCheck(t *testing.T) {
	dir := t.TempDir()
	iso := filepath.Join(dir, "win7.iso")
	if err := os.WriteFile(iso, []byte("CD001"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.iso")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	installProfile := func(path string) string {
		return fmt.Sprintf(`vm "fresh" {
  os = "win7-x64"
  disk {
    install {
      iso     = %q
      edition = "professional"
    }
  }
}
`, path)
	}
	tests := []struct {
		name    string
		uri     string
		iso     string
		setup   func(h *fake.Hypervisor)
		summary string // "" = no diagnostic
		sev     hcl.DiagnosticSeverity
	}{
		{name: "local, present", uri: "qemu:///system", iso: iso},
		{name: "local, missing", uri: "qemu:///system", iso: filepath.Join(dir, "nope.iso"), summary: "Installation ISO not found", sev: hcl.DiagError},
		{name: "local, directory", uri: "qemu:///system?socket=/run/x.sock", iso: dir, summary: "Installation ISO is a directory", sev: hcl.DiagError},
		{name: "local, empty", uri: "qemu:///system", iso: empty, summary: "Installation ISO is empty", sev: hcl.DiagError},
		{name: "remote, known to a pool", uri: "qemu+ssh://lab1/system", iso: "/srv/iso/win7.iso", setup: func(h *fake.Hypervisor) {
			h.PutFile("/srv/iso/win7.iso", "raw", 3<<30)
			if _, err := h.EnsurePool(context.Background(), "isos", "/srv/iso"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "remote, no pool yet", uri: "qemu+ssh://lab1/system", iso: "/srv/iso/win7.iso", summary: "Installation ISO not checked yet", sev: hcl.DiagWarning},
		{name: "remote, missing from legacyvm's pool", uri: "qemu+ssh://lab1/system", iso: "/srv/iso/win7.iso", setup: func(h *fake.Hypervisor) {
			if _, err := h.EnsurePool(context.Background(), imagePoolName("/srv/iso"), "/srv/iso"); err != nil {
				t.Fatal(err)
			}
		}, summary: "Installation ISO not found on the host", sev: hcl.DiagError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			src := installProfile(tt.iso)
			p := loadProfile(t, "inst", src)
			_, diags, err := planProfile(context.Background(), p, connector(h), Options{DefaultURI: tt.uri})
			if err != nil {
				t.Fatal(err)
			}
			var got []*hcl.Diagnostic
			for _, d := range diags {
				if strings.Contains(d.Summary, "ISO") {
					got = append(got, d)
				}
			}
			if tt.summary == "" {
				if len(got) != 0 {
					t.Fatalf("unexpected diagnostics:\n%s", diagText(got))
				}
				return
			}
			if len(got) != 1 || got[0].Summary != tt.summary || got[0].Severity != tt.sev {
				t.Fatalf("want %q, got:\n%s", tt.summary, diagText(got))
			}
			if s := got[0].Subject; s == nil || s.Start.Line != lineOf(t, src, "iso     =") || s.Start.Column != 17 {
				t.Errorf("subject %v, want the iso expression at line %d column 17", s, lineOf(t, src, "iso     ="))
			}
			if !strings.Contains(got[0].Detail, tt.iso) {
				t.Errorf("detail does not name the file: %s", got[0].Detail)
			}
		})
	}
}
