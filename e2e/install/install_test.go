package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// applyTimeout bounds one apply with setup under TCG (boot, setup, power
// off, baseline, boot again).
const applyTimeout = 8 * time.Minute

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// secretFile writes a secret the way a user keeps it: 0600.
func secretFile(t *testing.T, name, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lineOf is the 1-based line of the first occurrence of s in src.
func lineOf(t *testing.T, src, s string) int {
	t.Helper()
	i := strings.Index(src, s)
	if i < 0 {
		t.Fatalf("%q not in profile", s)
	}
	return strings.Count(src[:i], "\n") + 1
}

// located checks that stderr holds the diagnostic summary at file:line.
func located(t *testing.T, stderr, summary, file string, line int) {
	t.Helper()
	if !strings.Contains(stderr, "Error: "+summary+"\n") {
		t.Errorf("stderr lacks %q:\n%s", "Error: "+summary, stderr)
		return
	}
	if want := fmt.Sprintf("on %s line %d", file, line); !strings.Contains(stderr, want) {
		t.Errorf("diagnostic %q is not located at %s:\n%s", summary, want, stderr)
	}
}

// setupRun returns the serial log of the run that did setup (the one that
// powered off for the answer CD).
func setupRun(t *testing.T, runs []string) []string {
	t.Helper()
	for _, r := range runs {
		if l := rigLines(r); indexOf(l, "RIG poweroff reason=answercd") >= 0 {
			return l
		}
	}
	t.Fatalf("no serial run powered off for the answer CD; runs:\n%s", strings.Join(runs, "\n-----\n"))
	return nil
}

// checkProvisioned checks what a finished provisioning leaves: the VM
// running from its own system disk, both the live and the persistent
// definition with empty CD drives, no answer media in the pool, the
// baseline snapshot, and the licence seat in the metadata.
func checkProvisioned(t *testing.T, h *e2eutil.Host, name, label, key string, cdTargets ...string) virt.Domain {
	t.Helper()
	ctx := context.Background()
	d, err := h.HV.GetDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != virt.StateRunning {
		t.Errorf("%s is %s after apply, want running", name, d.State)
	}
	m := d.Metadata
	if m == nil || !m.Provisioned || m.License == nil {
		t.Fatalf("%s metadata: %+v", name, m)
	}
	if m.License.Label != label || m.License.Channel != "retail" || m.License.LastGroup != lastGroup(key) || !regexp.MustCompile(`^hmac1:[0-9a-f]{32}$`).MatchString(m.License.Fingerprint) {
		t.Errorf("%s licence record: %+v", name, *m.License)
	}
	system := filepath.Join(h.PoolDir, "lvm-"+name+"-system.qcow2")
	if m.Policy != nil && m.Policy.Memory {
		// A memory baseline is layered: the VM runs on its layer, over
		// the system disk.
		system = filepath.Join(h.PoolDir, "lvm-"+name+"-live.qcow2")
	}
	for _, live := range []bool{true, false} {
		args := []string{"dumpxml", name}
		what := "live"
		if !live {
			args = []string{"dumpxml", "--inactive", name}
			what = "persistent"
		}
		doc := h.MustVirsh(t, args...)
		got := cdroms(t, doc)
		if len(got) != len(cdTargets) {
			t.Errorf("%s %s definition has CD drives %v, want %v", name, what, got, cdTargets)
		}
		for _, tg := range cdTargets {
			if src, ok := got[tg]; !ok || src != "" {
				t.Errorf("%s %s definition: CD drive %s holds %q (present %v), want an empty drive", name, what, tg, src, ok)
			}
		}
		if b := bootDisk(t, doc); b != system {
			t.Errorf("%s %s definition: system disk %q, want %q", name, what, b, system)
		}
	}
	vols, err := h.HV.ListVolumes(ctx, h.Pool)
	if err != nil {
		t.Fatal(err)
	}
	var volNames []string
	for _, v := range vols {
		volNames = append(volNames, v.Name)
	}
	if !strings.Contains(strings.Join(volNames, " "), "lvm-"+name+"-system.qcow2") {
		t.Errorf("pool %s lacks the system volume: %v", h.Pool, volNames)
	}
	if strings.Contains(strings.Join(volNames, " "), "answer") {
		t.Errorf("answer media left in pool %s: %v", h.Pool, volNames)
	}
	if _, err := os.Stat(filepath.Join(h.PoolDir, "lvm-"+name+"-answer.iso")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("answer media file still on disk (stat: %v)", err)
	}
	snaps, err := h.HV.ListSnapshots(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Name != "clean" {
		t.Fatalf("%s snapshots: %+v, want the baseline clean", name, snaps)
	}
	desc := snapshotDescription(t, h.MustVirsh(t, "snapshot-dumpxml", name, "clean"))
	if !strings.Contains(desc, `"baseline"`) {
		t.Errorf("baseline description %q does not say it is the baseline", desc)
	}
	return d
}

// checkInventory checks legacyvm licenses (text and JSON) for one VM's
// seat.
func checkInventory(t *testing.T, h *e2eutil.Host, w *e2eutil.SecretWatch, dir, profile, label, vm, key string) {
	t.Helper()
	r := h.RunWatched(t, w, nil, 0, "licenses")
	row := regexp.MustCompile(fmt.Sprintf(`(?m)^%s \(%s\)\s+professional\s+retail\s+1/1\s+XXXXX-XXXXX-XXXXX-XXXXX-%s\s+%s\s+%s\s+running\s+\d{4}-\d\d-\d\dT`,
		label, profile, lastGroup(key), vm, profile))
	if !row.MatchString(r.Stdout) {
		t.Errorf("licenses does not list %s:\n%s", vm, r.Stdout)
	}
	r = h.RunWatched(t, w, nil, 0, "licenses", dir, "-o", "json")
	var doc struct {
		FormatVersion int `json:"format_version"`
		Licenses      []struct {
			Label, Profile, Channel, Key string
			SeatsUsed                    int  `json:"seats_used"`
			SeatsAllowed                 *int `json:"seats_allowed"` // null: unlimited
			Over                         bool `json:"over_subscribed"`
			VMs                          []struct {
				Name        string `json:"vm"`
				Profile     string
				Provisioned bool
				Since       time.Time
			}
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil || doc.FormatVersion != 1 {
		t.Fatalf("licenses -o json: %v\n%s", err, r.Stdout)
	}
	if len(doc.Licenses) != 1 {
		t.Fatalf("licenses -o json for profile %s: %s", profile, r.Stdout)
	}
	l := doc.Licenses[0]
	if l.Label != label || l.Profile != profile || l.Channel != "retail" || l.SeatsUsed != 1 || l.SeatsAllowed == nil || *l.SeatsAllowed != 1 || l.Over ||
		l.Key != "XXXXX-XXXXX-XXXXX-XXXXX-"+lastGroup(key) || len(l.VMs) != 1 || l.VMs[0].Name != vm || !l.VMs[0].Provisioned || time.Since(l.VMs[0].Since) > time.Hour {
		t.Errorf("licenses -o json: %+v", l)
	}
}

// runDaemon runs legacyvm daemon against the host until it has connected
// and made a tick, then stops it, and records its log.
func runDaemon(t *testing.T, h *e2eutil.Host, w *e2eutil.SecretWatch) {
	t.Helper()
	cmd, _, stderr := h.Start(t, nil, "daemon", "--tick", "1s")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(stderr.String(), "connected to libvirt") {
		select {
		case err := <-exited:
			t.Fatalf("daemon exited early (%v):\n%s", err, stderr)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			t.Fatalf("daemon did not connect:\n%s", stderr)
		case <-tick.C:
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("daemon: %v", err)
		}
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		t.Fatalf("daemon did not stop on SIGTERM:\n%s", stderr)
	}
	w.Add("daemon log", stderr.String())
	if !strings.Contains(stderr.String(), "daemon stopped") {
		t.Errorf("daemon log lacks its stop:\n%s", stderr)
	}
}

// scanForLeaks greps every file the flow may have left on disk: the
// storage pools, serial logs, the harness's libvirt directories (daemon
// and QEMU logs, libvirt's state), legacyvm's state directory, and any
// file created in the temporary directory since the test began. skip are
// the user's own secret files.
func scanForLeaks(t *testing.T, h *e2eutil.Host, since time.Time, secrets []string, extraRoots []string, skip ...string) {
	t.Helper()
	tmp := os.TempDir()
	roots := append([]string{h.PoolDir, h.LogDir, h.StateDir, h.Env.Dir}, extraRoots...)
	roots = append(roots, tmp)
	skips := map[string]bool{}
	for _, s := range skip {
		skips[s] = true
	}
	files, bytes := scanFiles(t, secrets, roots, map[string]bool{tmp: true}, since, skips)
	t.Logf("leak scan: %d files, %.1f MiB", files, float64(bytes)/(1<<20))
	if files == 0 {
		t.Errorf("leak scan read no file")
	}
}

// TestScanFindsPlantedSecrets proves the leak scan finds a secret in a
// file (across a chunk boundary, in UTF-16 too) and not in a clean one.
func TestScanFindsPlantedSecrets(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, chunkSize+4096)
	copy(big[chunkSize-12:], keyInstall) // straddles the first chunk's end
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	straddle := write("straddle.bin", big)
	wide := write("wide.txt", []byte("key: "+utf16le(keyInstall)))
	group := write("group.txt", []byte("only a group: "+strings.Split(pwSpec, "-")[0]+" "+strings.Split(keySpec, "-")[2]))
	clean := write("clean.txt", []byte("XXXXX-XXXXX-XXXXX-XXXXX-"+lastGroup(keyInstall)+" is the redacted form\n"))
	rec := &leakRecorder{}
	files, _ := scanFiles(rec, []string{keyInstall, keySpec}, []string{dir}, nil, time.Time{}, nil)
	if files != 4 {
		t.Errorf("scanned %d files, want 4", files)
	}
	found := strings.Join(rec.finds, "\n")
	for _, p := range []string{straddle, wide, group} {
		if !strings.Contains(found, p) {
			t.Errorf("planted secret in %s not found; finds:\n%s", filepath.Base(p), found)
		}
	}
	if strings.Contains(found, clean) {
		t.Errorf("the redacted form was reported as a leak:\n%s", found)
	}
}

// TestInstallFromMedia installs the stand-in "Windows" from its installer
// ISO with a generated Autounattend.xml: the installer finds the answer
// CD, prints the computer name it read, copies itself to the empty disk and
// powers off; legacyvm detaches and deletes the media, takes the baseline
// and starts the VM from its own disk. A second profile that reuses the
// retail key is then refused before anything is created, and the key and
// the administrator password appear nowhere.
//
// Not parallel: the leak scan reads every file created meanwhile, and
// another flow's answer media holds (its own fake) secrets by design.
func TestInstallFromMedia(t *testing.T) {
	since := time.Now()
	h := e2eutil.NewHost(t)
	w := e2eutil.NewSecretWatch()
	isoDir := h.Env.PoolDir(t)
	iso := filepath.Join(isoDir, "win7-standin.iso")
	copyFile(t, h.Guest.Installer, iso)
	pwFile := secretFile(t, "admin.password", pwInstall)
	env := []string{"LVM_E2E_INSTALL_KEY=" + keyInstall}

	// The password file is outside the profile directory: say so.
	src := h.HostBlock() + fmt.Sprintf("files {\n  allow_dirs = [%q]\n}\n", filepath.Dir(pwFile)) + fmt.Sprintf(`
license "site" {
  product_key = env("LVM_E2E_INSTALL_KEY")
  edition     = "professional"
  channel     = "retail"
}

network "lvinst" {
  subnet = "10.93.0.0/24"
  dhcp   = true
}

snapshot_policy "base" {}

vm "w7inst" {
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    install {
      iso     = %q
      edition = "professional"
      timeout = "6m"
    }
  }
  windows {
    computer_name  = "W7-INSTALL"
    admin_user     = "labadmin"
    admin_password = file(%q)
  }
  oem_strings     = ["rig.diskcheck=1"]
  licenses        = [license.site]
  network         = network.lvinst
  snapshot_policy = snapshot_policy.base
}
`, iso, pwFile)
	dir := e2eutil.Profile(t, "inst", map[string]string{"main.hcl": src})

	// Plan: the ISO is checked; no secret is read, and the plan says what
	// that leaves unchecked.
	r := h.RunWatched(t, w, nil, 2, "plan", dir)
	for _, want := range []string{"+   vm       w7inst", "installed from " + iso + " (40 GiB)", "answer media for setup (reads the product key at apply)",
		"licence site (retail)", "baseline snapshot clean", "note: licence site: seats counted by licence name only"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, r.Stdout)
		}
	}
	r = h.RunWatched(t, w, env, 2, "plan", "--check-keys", dir)
	if strings.Contains(r.Stdout, "seats counted by licence name only") {
		t.Errorf("plan --check-keys still says the key was not read:\n%s", r.Stdout)
	}
	r = h.RunWatched(t, w, env, 2, "plan", "--check-keys", "-o", "json", dir)
	if !strings.Contains(r.Stdout, `"has_changes": true`) {
		t.Errorf("plan -o json:\n%s", r.Stdout)
	}

	// A missing ISO is a located diagnostic at the iso attribute.
	missing := filepath.Join(isoDir, "no-such.iso")
	badSrc := strings.Replace(src, iso, missing, 1)
	badDir := e2eutil.Profile(t, "instbad", map[string]string{"main.hcl": badSrc})
	r = h.RunWatched(t, w, env, 1, "plan", badDir)
	located(t, r.Stderr, "Installation ISO not found", filepath.Join(badDir, "main.hcl"), lineOf(t, badSrc, "iso     ="))
	if !strings.Contains(r.Stderr, "The file "+missing+" does not exist") {
		t.Errorf("ISO diagnostic does not name the file:\n%s", r.Stderr)
	}

	// Apply: install, then the VM runs from its own disk.
	r, runs := applyRecorded(t, h, w, env, "w7inst", applyTimeout, "apply", "--auto-approve", dir)
	e2eutil.InOrder(t, "apply progress", r.Stderr,
		"w7inst: defining domain", "w7inst: creating empty 40 GiB system disk", "w7inst: uploading answer media",
		"w7inst: starting Windows setup (waiting up to 6m0s for the guest to power off)",
		"w7inst: Windows setup finished; removing answer media", "w7inst: taking baseline snapshot clean", "w7inst: done in")
	setup := setupRun(t, runs)
	prev := -1
	for _, want := range []string{"RIG disk marker=nodisk", "RIG install target=sda result=written",
		"RIG answer file=Autounattend.xml computername=W7-INSTALL", "RIG poweroff reason=answercd"} {
		j := indexOf(setup, want)
		if j <= prev {
			t.Fatalf("setup run lacks %q after the previous step:\n%s", want, strings.Join(setup, "\n"))
		}
		prev = j
	}
	// The VM now boots the installed system from sda: no answer CD, the
	// disk carries the stand-in system, the network works.
	h.WaitSerial(t, "w7inst", `^RIG disk marker=absent dev=sda`, 2*time.Minute)
	h.WaitSerial(t, "w7inst", `^RIG answer file=none`, 2*time.Minute)
	h.WaitSerial(t, "w7inst", `^RIG net dev=eth0 .* ip=10\.93\.0\.\d+/24 via=dhcp`, 2*time.Minute)
	if log, _ := os.ReadFile(h.SerialLog("w7inst")); strings.Contains(string(log), "RIG install") {
		t.Errorf("the VM ran the installer again after provisioning:\n%s", log)
	}
	checkProvisioned(t, h, "w7inst", "site", keyInstall, "sdb", "sdc")

	// Applying again needs no key: nothing to create.
	r = h.RunWatched(t, w, nil, 0, "apply", "--auto-approve", dir)
	if !strings.Contains(r.Stdout, "No changes.") {
		t.Errorf("second apply:\n%s", r)
	}
	h.RunWatched(t, w, nil, 0, "plan", dir)
	checkInventory(t, h, w, dir, "inst", "site", "w7inst", keyInstall)
	h.RunWatched(t, w, nil, 0, "status", "-o", "json", dir)
	h.RunWatched(t, w, nil, 0, "snapshot", "list", "-o", "json", "w7inst")

	t.Run("second profile reusing the retail key is refused", func(t *testing.T) {
		reuseSrc := h.HostBlock() + fmt.Sprintf(`
license "other" {
  product_key = env("LVM_E2E_REUSE_KEY")
  edition     = "professional"
  channel     = "retail"
}

network "lvreuse" {
  subnet = "10.95.0.0/24"
  dhcp   = true
}

vm "reuse1" {
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image = %q
  }
  licenses = [license.other]
  network  = network.lvreuse
}
`, h.Golden)
		reuse := e2eutil.Profile(t, "reuse", map[string]string{"main.hcl": reuseSrc})
		reuseHCL := filepath.Join(reuse, "main.hcl")
		reuseEnv := []string{"LVM_E2E_REUSE_KEY=" + keyInstall}
		before := inventory(t, h)

		// Plan reads no key: it cannot know, and says so.
		r := h.RunWatched(t, w, reuseEnv, 2, "plan", reuse)
		if !strings.Contains(r.Stdout, "note: licence other: seats counted by licence name only") {
			t.Errorf("plan does not say the key was not checked:\n%s", r.Stdout)
		}
		detail := `VM "w7inst" (licence "site", profile "inst", defined on the host since `
		for _, args := range [][]string{{"plan", "--check-keys", reuse}, {"apply", "--auto-approve", reuse}, {"apply", "--auto-approve", "-o", "json", reuse}} {
			r := h.RunWatched(t, w, reuseEnv, 1, args...)
			located(t, r.Stderr, "Licence key already in use", reuseHCL, lineOf(t, reuseSrc, "licenses = [license.other]"))
			for _, want := range []string{`Licence "other" (key XXXXX-XXXXX-XXXXX-XXXXX-` + lastGroup(keyInstall) + `) is a retail licence`, detail, `VM "reuse1" would get no seat`} {
				if !strings.Contains(strings.Join(strings.Fields(r.Stderr), " "), want) {
					t.Errorf("%v: diagnostic lacks %q:\n%s", args, want, r.Stderr)
				}
			}
			if strings.Contains(r.Stdout, "Plan:") {
				t.Errorf("%v printed a plan after refusing:\n%s", args, r.Stdout)
			}
		}
		// Key problems are errors that name the source, never the key.
		badKey := keyInstall[:len(keyInstall)-1] + "N"
		r = h.RunWatched(t, w, []string{"LVM_E2E_REUSE_KEY=" + badKey}, 1, "apply", "--auto-approve", reuse)
		if want := `Error: product key of licence other (from env("LVM_E2E_REUSE_KEY")): not a Windows 7 product key: character 25 (group 5, place 5) is the letter N`; !strings.Contains(r.Stderr, want) {
			t.Errorf("bad key: stderr lacks %q:\n%s", want, r.Stderr)
		}
		r = h.RunWatched(t, w, nil, 1, "apply", "--auto-approve", reuse)
		if want := "environment variable LVM_E2E_REUSE_KEY is not set"; !strings.Contains(r.Stderr, want) {
			t.Errorf("missing key: stderr lacks %q:\n%s", want, r.Stderr)
		}
		if after := inventory(t, h); after != before {
			t.Errorf("a refused apply changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	runDaemon(t, h, w)
	dumpLibvirt(t, h, w)
	w.Check(t, keyInstall, pwInstall)

	h.RunWatched(t, w, nil, 0, "destroy", "--auto-approve", dir)
	if inv := inventory(t, h); strings.Contains(inv, "w7inst") {
		t.Errorf("destroy left objects of w7inst:\n%s", inv)
	}
	w.Check(t, keyInstall, pwInstall)
	scanForLeaks(t, h, since, []string{keyInstall, pwInstall}, []string{isoDir, dir}, pwFile)
}

// TestSpecializeGoldenImage clones the golden image with prepare =
// "specialize": the guest boots with the Unattend.xml CD, prints the
// computer name, powers off; legacyvm removes the media, takes a baseline
// with memory from the running VM, and the key and password appear
// nowhere (not even in the memory snapshot).
func TestSpecializeGoldenImage(t *testing.T) {
	t.Parallel()
	since := time.Now()
	h := e2eutil.NewHost(t)
	w := e2eutil.NewSecretWatch()
	env := []string{"LVM_E2E_SPEC_KEY=" + keySpec, "LVM_E2E_SPEC_PW=" + pwSpec}
	src := h.HostBlock() + fmt.Sprintf(`
license "lab" {
  product_key = env("LVM_E2E_SPEC_KEY")
  edition     = "professional"
  channel     = "retail"
}

network "lvspec" {
  subnet = "10.94.0.0/24"
  dhcp   = true
}

snapshot_policy "mem" {
  memory = true
}

vm "w7spec" {
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image   = %q
    prepare = "specialize"
  }
  windows {
    computer_name  = "W7-SPEC"
    admin_password = env("LVM_E2E_SPEC_PW")
    activate       = true
  }
  licenses        = [license.lab]
  network         = network.lvspec
  snapshot_policy = snapshot_policy.mem
}
`, h.Golden)
	dir := e2eutil.Profile(t, "spec", map[string]string{"main.hcl": src})

	r := h.RunWatched(t, w, nil, 2, "plan", dir)
	for _, want := range []string{"linked clone of " + h.Golden, "answer media for setup (reads the product key at apply)", "baseline snapshot clean with memory"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, r.Stdout)
		}
	}
	r, runs := applyRecorded(t, h, w, env, "w7spec", applyTimeout, "apply", "--auto-approve", dir)
	e2eutil.InOrder(t, "apply progress", r.Stderr,
		"w7spec: defining domain", "w7spec: creating linked clone of ", "w7spec: uploading answer media",
		"w7spec: starting specialize pass", "w7spec: specialize pass finished; removing answer media",
		"w7spec: taking baseline snapshot clean (with memory)", "w7spec: done in")
	setup := setupRun(t, runs)
	for _, want := range []string{"RIG answer file=Unattend.xml computername=W7-SPEC", "RIG poweroff reason=answercd"} {
		if indexOf(setup, want) < 0 {
			t.Errorf("setup run lacks %q:\n%s", want, strings.Join(setup, "\n"))
		}
	}
	if indexOf(setup, "RIG install") >= 0 {
		t.Errorf("a clone ran the installer:\n%s", strings.Join(setup, "\n"))
	}
	h.WaitSerial(t, "w7spec", `^RIG answer file=none`, 2*time.Minute)
	h.WaitSerial(t, "w7spec", `^RIG net dev=eth0 .* ip=10\.94\.0\.\d+/24 via=dhcp`, 2*time.Minute)
	checkProvisioned(t, h, "w7spec", "lab", keySpec, "sdb")
	checkInventory(t, h, w, dir, "spec", "lab", "w7spec", keySpec)
	h.RunWatched(t, w, nil, 0, "status", "-o", "json", dir)
	h.RunWatched(t, w, nil, 0, "snapshot", "list", "w7spec")

	dumpLibvirt(t, h, w)
	w.Check(t, keySpec, pwSpec)
	// The files while the VM and its memory baseline exist, then after
	// destroy.
	scanForLeaks(t, h, since, []string{keySpec, pwSpec}, []string{dir})
	h.RunWatched(t, w, nil, 0, "destroy", "--auto-approve", dir)
	w.Check(t, keySpec, pwSpec)
	scanForLeaks(t, h, since, []string{keySpec, pwSpec}, []string{dir})
}
