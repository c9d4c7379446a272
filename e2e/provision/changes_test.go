package provision

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// changesProfile declares one VM whose memory and golden image come from
// variables.
const changesProfile = `
variable "golden" {}
variable "memory" {
  default = "256MiB"
}

network "chg" {
  subnet = "10.92.0.0/24"
  dhcp   = true
}

snapshot_policy "p" {}

vm "chg" {
  os     = "win7-x64"
  cpus   = 1
  memory = var.memory
  disk {
    image   = var.golden
    prepare = "none"
  }
  network         = network.chg
  snapshot_policy = snapshot_policy.p
  # The stand-in skips DHCP: this test needs the guest up, not addressed.
  oem_strings = ["rig.ip=none"]
}
`

// TestChanges: a second apply (and one after a reset to the baseline)
// plans nothing; a memory change is an in-place update that needs a
// restart; a new golden image is a replace that names the change, asks for
// confirmation and keeps the VM's identity.
func TestChanges(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	dir := e2eutil.Profile(t, "chg", map[string]string{"main.hcl": h.HostBlock() + changesProfile})
	goldenA := "golden=" + h.Golden
	serial := watchSerial(t, h.SerialLog("chg"))
	outputs := map[string]string{}
	run := func(want int, args ...string) e2eutil.Result {
		t.Helper()
		r := h.Run(t, args...)
		outputs[strings.Join(args, " ")+" #"+itoa(uint(len(outputs)))] = r.Stdout + r.Stderr
		if r.Code != want {
			t.Fatalf("exit %d, want %d\n%s", r.Code, want, r)
		}
		return r
	}
	run(0, "apply", "--auto-approve", dir, "--var", goldenA)
	serial.Wait(t, 0, `^RIG net dev=eth0 `, 3*time.Minute)

	// Nothing to do, as plan (exit 0, JSON with only no-ops) and as apply.
	p := parsePlan(t, run(0, "plan", "-o", "json", dir, "--var", goldenA))
	if p.HasChanges || len(p.Hosts) != 1 {
		t.Errorf("second plan: has_changes=%v hosts=%d, want no changes on one host", p.HasChanges, len(p.Hosts))
	}
	for _, c := range p.Hosts[0].Changes {
		if c.Action != "no-op" {
			t.Errorf("second plan: %s %s %s, want no-op", c.Kind, c.Name, c.Action)
		}
	}
	if r := run(0, "apply", dir, "--var", goldenA); !strings.Contains(r.Stdout, "No changes") {
		t.Errorf("second apply did not say it had nothing to do:\n%s", r)
	}

	// A reset to the baseline is not drift: the definition the snapshot
	// restores still says the VM is provisioned.
	run(0, "reset", "chg")
	run(0, "plan", dir, "--var", goldenA)
	run(0, "start", "chg")
	// Up to userspace (its ACPI handler runs), so that stop below is a
	// clean shutdown.
	serial.Wait(t, 1, `^RIG net dev=eth0 `, 3*time.Minute)

	// Memory: in place, restart needed while running.
	p = parsePlan(t, run(2, "plan", "-o", "json", dir, "--var", goldenA, "--var", "memory=384MiB"))
	c := findChange(t, p, "vm", "chg")
	if c.Action != "update" || !c.RestartNeeded || c.Destructive || !anyMatch(c.Reasons, `^memory 256 MiB -> 384 MiB$`) {
		t.Errorf("memory change planned as %+v, want update in place, restart needed, reason memory 256 MiB -> 384 MiB", c)
	}
	r := run(2, "plan", dir, "--var", goldenA, "--var", "memory=384MiB")
	if !regexp.MustCompile(`(?m)^\s+~\s+vm\s+chg\s+update in place\s+\(restart needed\)$`).MatchString(r.Stdout) {
		t.Errorf("text plan does not show the update in place with restart needed:\n%s", r.Stdout)
	}
	boots := len(serial.Boots())
	domid := virsh(t, h, "domid", "chg")
	r = run(0, "apply", dir, "--var", goldenA, "--var", "memory=384MiB")
	if !strings.Contains(r.Stderr, "takes effect at the next boot") {
		t.Errorf("apply did not say the change needs a restart:\n%s", r)
	}
	if got := liveDomain(t, h, "chg", true).Memory.Value; got != 384*1024 {
		t.Errorf("persistent memory %d KiB after apply, want %d", got, 384*1024)
	}
	if got := liveDomain(t, h, "chg", false).Memory.Value; got != 256*1024 {
		t.Errorf("running memory %d KiB, want the old %d until a restart", got, 256*1024)
	}
	if n, id := len(serial.Boots()), virsh(t, h, "domid", "chg"); n != boots || id != domid {
		t.Errorf("the in-place update restarted the guest (%d boots, then %d; domain id %s, then %s)", boots, n, domid, id)
	}
	run(0, "plan", dir, "--var", goldenA, "--var", "memory=384MiB")
	run(0, "stop", "chg")
	run(0, "start", "chg")
	if got := liveDomain(t, h, "chg", false).Memory.Value; got != 384*1024 {
		t.Errorf("running memory %d KiB after a restart, want %d", got, 384*1024)
	}

	// A new golden image: replace, with the reason, destructive (the disk
	// and its baseline go).
	// The new image sits next to the old one, in the directory whose
	// storage pool legacyvm made at the first apply.
	goldenB := filepath.Join(filepath.Dir(h.Golden), "golden-b.qcow2")
	copyFile(t, h.Golden, goldenB)
	vars := []string{"--var", "golden=" + goldenB, "--var", "memory=384MiB"}
	p = parsePlan(t, run(2, append([]string{"plan", "-o", "json", dir}, vars...)...))
	c = findChange(t, p, "vm", "chg")
	if c.Action != "replace" || !c.Destructive || !anyMatch(c.Reasons, `^disk image changed: `+regexp.QuoteMeta(h.Golden+" -> "+goldenB)+`$`) {
		t.Errorf("golden image change planned as %+v, want a destructive replace because the disk image changed %s -> %s", c, h.Golden, goldenB)
	}
	mac := liveDomain(t, h, "chg", true).Devices.Interfaces[0].MAC.Address
	uuid := liveDomain(t, h, "chg", true).UUID

	// Without a terminal and without --auto-approve apply refuses.
	r = run(1, append([]string{"apply", dir}, vars...)...)
	if !strings.Contains(r.Stderr, "--auto-approve") {
		t.Errorf("apply of a destructive plan without confirmation did not point at --auto-approve:\n%s", r)
	}
	if got := backingFile(t, h, "chg"); got != h.Golden {
		t.Fatalf("the refused apply changed the disk: backing file %s", got)
	}

	run(0, append([]string{"apply", "--auto-approve", dir}, vars...)...)
	if got := backingFile(t, h, "chg"); got != goldenB {
		t.Errorf("after the replace the disk's backing file is %s, want %s", got, goldenB)
	}
	d := liveDomain(t, h, "chg", true)
	if d.UUID != uuid || d.Devices.Interfaces[0].MAC.Address != mac {
		t.Errorf("the replaced VM changed identity: uuid %s -> %s, mac %s -> %s", uuid, d.UUID, mac, d.Devices.Interfaces[0].MAC.Address)
	}
	if st := strings.TrimSpace(virsh(t, h, "domstate", "chg")); st != "running" {
		t.Errorf("the replaced VM is %s, want running", st)
	}
	run(0, append([]string{"plan", dir}, vars...)...)
	inv := wantInv{profile: "chg", domains: []string{"chg"}, snapshots: []string{"clean"}, networks: []string{"chg"},
		images: []string{filepath.Base(h.Golden), filepath.Base(goldenB)}}
	scope := regexp.MustCompile(`^(lvm-)?chg(-|$)`)
	checkInventory(t, "after the replace", inventory(t, h, scope, "chg"), inv.lines(h))

	run(0, append([]string{"destroy", "--auto-approve", dir}, vars...)...)
	checkInventory(t, "after destroy", inventory(t, h, scope, "chg"), wantInv{profile: "chg", images: inv.images, unpooled: true}.lines(h))
	noSecrets(t, outputs)
}

func findChange(t *testing.T, p planJSON, kind, name string) planChange {
	t.Helper()
	for _, hp := range p.Hosts {
		for _, c := range hp.Changes {
			if c.Kind == kind && c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("plan has no change for %s %s: %+v", kind, name, p)
	return planChange{}
}

func anyMatch(ss []string, re string) bool {
	rx := regexp.MustCompile(re)
	for _, s := range ss {
		if rx.MatchString(s) {
			return true
		}
	}
	return false
}

// backingFile is the backing store of a domain's system disk, from its live
// XML.
func backingFile(t *testing.T, h *e2eutil.Host, domain string) string {
	t.Helper()
	for _, dk := range liveDomain(t, h, domain, false).Devices.Disks {
		if dk.Device == "disk" && dk.BackingStore != nil && dk.BackingStore.Source != nil && dk.BackingStore.Source.File != nil {
			return dk.BackingStore.Source.File.File
		}
	}
	return ""
}
