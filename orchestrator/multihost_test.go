package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
	"github.com/legacyvm/legacyvm/profiles"
)

const multiProfile = `
host "a" {
  uri    = "qemu+tls://a.test/system"
  labels = { zone = "lab" }
}
host "b" {
  uri     = "qemu+tls://b.test/system"
  max_vms = %MAXB%
  labels  = { zone = "lab" }
}
host "c" {
  uri = "qemu+tls://c.test/system"
}
vm "web" {
  count       = 3
  os          = "win7-x64"
  memory      = "2GiB"
  placement   = "%POLICY%"
  host_labels = { zone = "lab" }
  disk {
    image   = "%LOCAL%"
    prepare = "none"
  }
}
`

// fleet is a set of fake hosts by URI; down lists URIs that refuse
// connections.
type fleet struct {
	hosts map[string]*fake.Hypervisor
	down  map[string]bool
}

func newFleet(t *testing.T, uris ...string) *fleet {
	f := &fleet{hosts: map[string]*fake.Hypervisor{}, down: map[string]bool{}}
	for _, u := range uris {
		h := fake.New()
		if _, err := h.EnsurePool(context.Background(), "default", "/var/lib/libvirt/images"); err != nil {
			t.Fatal(err)
		}
		f.hosts[u] = h
	}
	return f
}

func (f *fleet) connect(ctx context.Context, uri string) (virt.Hypervisor, error) {
	if f.down[uri] {
		return nil, fmt.Errorf("%w: unable to connect to server at '%s'", virt.ErrConnection, uri)
	}
	h, ok := f.hosts[uri]
	if !ok {
		return nil, fmt.Errorf("no fake host %s", uri)
	}
	return nopClose{h}, nil
}

func localGolden(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "golden.qcow2")
	data := append([]byte("QFI\xfb"), []byte(strings.Repeat("stand-in golden image\n", 5000))...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func planFleet(t *testing.T, p *profiles.Profile, f *fleet) []*HostPlan {
	t.Helper()
	hps, diags, err := planProfile(context.Background(), p, f.connect, Options{})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if diags.HasErrors() {
		t.Fatalf("plan diagnostics: %s", diags.Error())
	}
	return hps
}

func vmHosts(hps []*HostPlan) map[string]string {
	m := map[string]string{}
	for _, hp := range plannedOf(hps) {
		for _, c := range hp.Plan.Changes {
			if c.Kind == KindVM {
				m[c.Name] = hp.Host.Name
			}
		}
	}
	return m
}

func TestMultiHostSpreadUploadsOnceVerifiedAndPlacementIsStable(t *testing.T) {
	local := localGolden(t)
	f := newFleet(t, "qemu+tls://a.test/system", "qemu+tls://b.test/system", "qemu+tls://c.test/system")
	p := loadProfile(t, "multi", multiProfile, "%POLICY%", "spread", "%LOCAL%", local, "%MAXB%", "5")
	hps := planFleet(t, p, f)
	if got := vmHosts(hps); got["web-1"] != "a" || got["web-2"] != "b" || got["web-3"] != "a" {
		t.Fatalf("spread placed %v, want web-1 and web-3 on a, web-2 on b", got)
	}
	uploads := map[string]int{}
	for _, hp := range plannedOf(hps) {
		for _, c := range hp.Plan.Changes {
			if c.Kind == KindImage {
				uploads[hp.Host.Name]++
				if c.Name != UploadedImageName(local) || !strings.Contains(strings.Join(c.Details, " "), "SHA-256") {
					t.Errorf("upload change %+v", c)
				}
			}
		}
	}
	if uploads["a"] != 1 || uploads["b"] != 1 || uploads["c"] != 0 {
		t.Fatalf("uploads per host = %v, want one on a and one on b, none on c (no VM there)", uploads)
	}
	for _, hp := range plannedOf(hps) {
		var lines []string
		e := &engine{HV: hp.HV, Parallelism: 3, PollInterval: 1, Hook: event.Func(func(ev event.Event) { lines = append(lines, ev.Object+": "+ev.Message) })}
		if res, err := e.Apply(context.Background(), hp.Plan); err != nil {
			t.Fatalf("apply on %s: %v (%+v)", hp.Host.Name, err, res)
		}
		if hp.Host.Name != "c" && !strings.Contains(strings.Join(lines, "\n"), "100%") {
			t.Errorf("no upload progress to 100%% on %s:\n%s", hp.Host.Name, strings.Join(lines, "\n"))
		}
	}
	want, err := fileSHA256(context.Background(), local)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"qemu+tls://a.test/system", "qemu+tls://b.test/system"} {
		got, err := f.hosts[u].VolumeSHA256(context.Background(), "default", UploadedImageName(local))
		if err != nil || got != want {
			t.Errorf("%s: uploaded image SHA-256 %s, %v; want %s", u, got, err, want)
		}
		d, err := f.hosts[u].GetDomain(context.Background(), "web-2")
		if u == "qemu+tls://b.test/system" && err != nil {
			t.Errorf("web-2 not on b: %v", err)
		}
		_ = d
	}

	// Stable: a second plan changes nothing, and neither does switching
	// the policy to pack (existing VMs never move).
	for _, policy := range []string{"spread", "pack"} {
		p2 := loadProfile(t, "multi", multiProfile, "%POLICY%", policy, "%LOCAL%", local, "%MAXB%", "5")
		for _, hp := range planFleet(t, p2, f) {
			if hp.Err != nil || hp.Plan.HasChanges() {
				t.Errorf("%s re-plan on %s: err %v, changes %+v", policy, hp.Host.Name, hp.Err, hp.Plan)
			}
		}
	}
}

func TestMultiHostPackAndMaxVMs(t *testing.T) {
	local := localGolden(t)
	f := newFleet(t, "qemu+tls://a.test/system", "qemu+tls://b.test/system", "qemu+tls://c.test/system")
	p := loadProfile(t, "multi", multiProfile, "%POLICY%", "pack", "%LOCAL%", local, "%MAXB%", "1")
	// pack fills a first (no max_vms there).
	if got := vmHosts(planFleet(t, p, f)); got["web-1"] != "a" || got["web-2"] != "a" || got["web-3"] != "a" {
		t.Errorf("pack placed %v, want all on a", got)
	}
	// With a full, b takes one (max_vms = 1) and the third has no room.
	p = loadProfile(t, "multi", strings.Replace(multiProfile, `labels = { zone = "lab" }
}
host "b"`, `labels = { zone = "lab" }
  max_vms = 1
}
host "b"`, 1), "%POLICY%", "pack", "%LOCAL%", local, "%MAXB%", "1")
	_, diags, err := planProfile(context.Background(), p, f.connect, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "No host has room") || diags[0].Subject == nil || diags[0].Subject.Start.Line == 0 {
		t.Errorf("want a located 'No host has room' diagnostic, got %v", diags)
	}
}

func TestMultiHostUnreachableHostIsPartial(t *testing.T) {
	local := localGolden(t)
	f := newFleet(t, "qemu+tls://a.test/system", "qemu+tls://b.test/system", "qemu+tls://c.test/system")
	p := loadProfile(t, "multi", multiProfile, "%POLICY%", "spread", "%LOCAL%", local, "%MAXB%", "5")
	for _, hp := range planFleet(t, p, f) {
		e := &engine{HV: hp.HV, Parallelism: 3, PollInterval: 1}
		if _, err := e.Apply(context.Background(), hp.Plan); err != nil {
			t.Fatal(err)
		}
	}
	f.down["qemu+tls://b.test/system"] = true
	p = loadProfile(t, "multi", multiProfile, "%POLICY%", "spread", "%LOCAL%", local, "%MAXB%", "5")
	hps := planFleet(t, p, f)
	failed := failedOf(hps)
	if len(failed) != 1 || failed[0].Host.Name != "b" || !errors.Is(failed[0].Err, virt.ErrConnection) {
		t.Fatalf("failed hosts = %+v, want b with a connection error", failed)
	}
	// web-2 lives on b, which did not answer: it is skipped, never
	// created a second time on a.
	if strings.Join(failed[0].Skipped, ",") != "web-2" {
		t.Errorf("skipped on b = %v, want [web-2]", failed[0].Skipped)
	}
	for _, hp := range plannedOf(hps) {
		if hp.Plan.HasChanges() {
			t.Errorf("plan on %s has changes while b is down: %+v", hp.Host.Name, hp.Plan.Changes)
		}
	}
	// Every host down: an error, as with a single host.
	for u := range f.hosts {
		f.down[u] = true
	}
	if _, _, err := planProfile(context.Background(), p, f.connect, Options{}); err == nil || !errors.Is(err, virt.ErrConnection) {
		t.Errorf("all hosts down: err %v, want a connection error", err)
	}
}

func TestMultiHostDamagedUploadIsRejected(t *testing.T) {
	local := localGolden(t)
	f := newFleet(t, "qemu+tls://a.test/system", "qemu+tls://b.test/system", "qemu+tls://c.test/system")
	f.hosts["qemu+tls://b.test/system"].CorruptNextUploads(1)
	p := loadProfile(t, "multi", multiProfile, "%POLICY%", "spread", "%LOCAL%", local, "%MAXB%", "5")
	for _, hp := range planFleet(t, p, f) {
		e := &engine{HV: hp.HV, Parallelism: 3, PollInterval: 1}
		_, err := e.Apply(context.Background(), hp.Plan)
		if hp.Host.Name != "b" {
			if err != nil {
				t.Errorf("apply on %s: %v", hp.Host.Name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Errorf("apply on b: err %v, want a checksum mismatch", err)
		}
		if _, err := hp.HV.VolumeSHA256(context.Background(), "default", UploadedImageName(local)); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("the damaged upload was kept: %v", err)
		}
		if _, err := hp.HV.GetDomain(context.Background(), "web-2"); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("web-2 was created on a damaged image: %v", err)
		}
	}
}

func TestMultiHostSeatWarningWhileAHostIsDown(t *testing.T) {
	local := localGolden(t)
	f := newFleet(t, "qemu+tls://a.test/system", "qemu+tls://b.test/system", "qemu+tls://c.test/system")
	f.down["qemu+tls://b.test/system"] = true
	src := strings.Replace(multiProfile, `vm "web" {`, `license "k" {
  product_key = env("K")
  edition     = "professional"
  channel     = "retail"
}
vm "lic" {
  os       = "win7-x64"
  memory   = "2GiB"
  host     = host.a
  licenses = [license.k]
  disk {
    image   = "%LOCAL%"
    prepare = "none"
  }
}
vm "web" {`, 1)
	p := loadProfile(t, "multi", src, "%POLICY%", "spread", "%LOCAL%", local, "%MAXB%", "5")
	hps, diags, err := planProfile(context.Background(), p, f.connect, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() || !strings.Contains(diags.Error(), "Seats counted without a host") || !strings.Contains(diags.Error(), `vm "lic"`) {
		t.Errorf("want a warning that b's seats were not counted for lic, got %v", diags)
	}
	if got := vmHosts(hps); got["lic"] != "a" || got["web-1"] != "" {
		t.Errorf("planned %v: lic on a; web-* unplaced while b (a candidate) is down", got)
	}
}

func TestMultiHostFixedHostBeyondMaxVMs(t *testing.T) {
	local := localGolden(t)
	f := newFleet(t, "qemu+tls://a.test/system", "qemu+tls://b.test/system", "qemu+tls://c.test/system")
	src := strings.Replace(multiProfile, `  placement   = "%POLICY%"
  host_labels = { zone = "lab" }
`, "  host = host.b\n", 1)
	p := loadProfile(t, "multi", src, "%LOCAL%", local, "%MAXB%", "2")
	_, diags, err := planProfile(context.Background(), p, f.connect, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "Host is full") || !strings.Contains(diags.Error(), `"web-3"`) || diags[0].Subject == nil || diags[0].Subject.Start.Line == 0 {
		t.Errorf("3 instances on b with max_vms = 2: want a located 'Host is full' for web-3, got %v", diags)
	}
}

func TestMultiHostDestroyWithAHostDown(t *testing.T) {
	local := localGolden(t)
	f := newFleet(t, "qemu+tls://a.test/system", "qemu+tls://b.test/system", "qemu+tls://c.test/system")
	p := loadProfile(t, "multi", multiProfile, "%POLICY%", "spread", "%LOCAL%", local, "%MAXB%", "5")
	for _, hp := range planFleet(t, p, f) {
		e := &engine{HV: hp.HV, Parallelism: 3, PollInterval: 1}
		if _, err := e.Apply(context.Background(), hp.Plan); err != nil {
			t.Fatal(err)
		}
	}
	f.down["qemu+tls://b.test/system"] = true
	p = loadProfile(t, "multi", multiProfile, "%POLICY%", "spread", "%LOCAL%", local, "%MAXB%", "5")
	hps, err := planProfileDestroy(context.Background(), p, f.connect, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	failed := failedOf(hps)
	if len(failed) != 1 || failed[0].Host.Name != "b" || strings.Join(failed[0].Skipped, ",") != "web-1,web-2,web-3" {
		t.Errorf("failed = %+v; want b, skipping the instances that may be there", failed)
	}
	deletes := vmHosts(hps)
	if deletes["web-1"] != "a" || deletes["web-3"] != "a" || deletes["web-2"] != "" {
		t.Errorf("destroy plans %v; want web-1 and web-3 on a only", deletes)
	}
}

func TestMultiHostUploadRaceKeepsIdenticalImage(t *testing.T) {
	local := localGolden(t)
	f := newFleet(t, "qemu+tls://a.test/system", "qemu+tls://b.test/system", "qemu+tls://c.test/system")
	p := loadProfile(t, "multi", multiProfile, "%POLICY%", "spread", "%LOCAL%", local, "%MAXB%", "5")
	hps := planFleet(t, p, f)
	// Another command uploads the same image to b after this plan.
	b := f.hosts["qemu+tls://b.test/system"]
	if _, err := b.UploadFile(context.Background(), virt.VolumeSpec{Pool: "default", Name: UploadedImageName(local)}, local, nil); err != nil {
		t.Fatal(err)
	}
	for _, hp := range plannedOf(hps) {
		e := &engine{HV: hp.HV, Parallelism: 3, PollInterval: 1}
		if res, err := e.Apply(context.Background(), hp.Plan); err != nil {
			t.Errorf("apply on %s: %v (%+v)", hp.Host.Name, err, res)
		}
	}
	if _, err := b.GetDomain(context.Background(), "web-2"); err != nil {
		t.Errorf("web-2 not created on b: %v", err)
	}
}
