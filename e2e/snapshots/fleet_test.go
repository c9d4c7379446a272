package snapshots

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// Five VMs with memory baselines are reset at once: every one reports its
// time, ends running, and its guest is back at the baseline (the disk
// marker it wrote after the baseline is gone).
func TestResetFiveInParallel(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "par", `
snapshot_policy "live" {
  memory = true
}
`, vmBlock(h, "par", 5, "live", "rig.diskcheck=1", "rig.disktouch=1"))
	apply(t, h, dir)
	var vms []string
	for i := 1; i <= 5; i++ {
		vms = append(vms, fmt.Sprintf("par-%d", i))
	}
	for _, vm := range vms {
		h.WaitSerial(t, vm, `RIG disk marker=written`, 180*time.Second)
	}

	start := time.Now()
	r := h.MustRun(t, append([]string{"reset", "--parallelism", "5"}, vms...))
	t.Logf("legacyvm reset of 5 VMs took %s (wall clock, with the CLI's start):\n%s", time.Since(start).Round(time.Millisecond), r.Stdout)
	lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("reset printed %d lines, want one per VM and a total:\n%s", len(lines), r)
	}
	for _, vm := range vms {
		re := regexp.MustCompile(`^` + vm + `: reverted to clean in \d+(\.\d+)?m?s \(running\)$`)
		if !slices.ContainsFunc(lines[:5], re.MatchString) {
			t.Errorf("no line for %s matching %s", vm, re)
		}
	}
	if !regexp.MustCompile(`^Reset 5 VM\(s\) in \d+(\.\d+)?m?s\.$`).MatchString(lines[5]) {
		t.Errorf("total line %q", lines[5])
	}
	for _, vm := range vms {
		if got := domState(t, h, vm); got != "running" {
			t.Errorf("%s is %q after reset", vm, got)
		}
	}
	for _, vm := range vms {
		if line := h.WaitSerial(t, vm, `RIG disk marker=(absent|present)`, 180*time.Second); !strings.Contains(line, "absent") {
			t.Errorf("%s: after reset the guest found its marker: %q", vm, line)
		}
	}
}

// destroy removes a VM with all its snapshots (baseline, manual, scheduled;
// with and without memory): after confirmation only, leaving no libvirt
// record, no disk and nothing in the shared golden image; a VM created
// again under the same name starts with its baseline alone.
func TestDestroyRemovesSnapshots(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "gone", `
snapshot_policy "hourly" {
  schedule = "0 * * * *"
  keep     = 5
}
`, vmBlock(h, "gone", 1, "hourly"))
	apply(t, h, dir)
	h.MustRun(t, []string{"snapshot", "create", "gone", "m-running"})
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Hour)
	h.MustRun(t, []string{"snapshot", "run-due", "--now", tomorrow.Format(time.RFC3339)})
	h.MustRun(t, []string{"stop", "--force", "gone"})
	h.MustRun(t, []string{"snapshot", "create", "gone", "m-off"})
	want := []string{"auto-hourly-" + tomorrow.Format("20060102T150405Z"), "clean", "m-off", "m-running"}
	disk := systemDisk(h, "gone")
	if got := qcowSnapshots(t, disk); !slices.Equal(got, want) {
		t.Fatalf("before destroy the image holds %v, want %v", got, want)
	}
	metaDir := filepath.Join(h.Env.Dir, "lib", "qemu", "snapshot", "gone")
	if ents, err := os.ReadDir(metaDir); err != nil || len(ents) != len(want) {
		t.Fatalf("libvirt's snapshot records in %s: %v %v", metaDir, ents, err)
	}

	// Without a terminal and without --auto-approve, nothing happens.
	r := h.MustRun(t, []string{"destroy", dir}, 1)
	if !strings.Contains(r.Stdout, "deletes the disk and 4 snapshot(s)") || !strings.Contains(r.Stderr, "--auto-approve") {
		t.Errorf("destroy without confirmation:\n%s", r)
	}
	if got := virshSnapshots(t, h, "gone"); !slices.Equal(got, want) {
		t.Fatalf("the refused destroy changed the snapshots: %v", got)
	}

	r = h.MustRun(t, []string{"destroy", "--auto-approve", dir})
	if !strings.Contains(r.Stdout, "deletes the disk and 4 snapshot(s)") {
		t.Errorf("destroy does not say it deletes the snapshots:\n%s", r)
	}
	if _, err := h.Env.Virsh(t.Context(), "dominfo", "gone"); err == nil {
		t.Error("the domain is still defined")
	}
	if _, err := os.Stat(disk); !os.IsNotExist(err) {
		t.Errorf("the disk %s is still there: %v", disk, err)
	}
	if ents, err := os.ReadDir(metaDir); err == nil && len(ents) > 0 {
		t.Errorf("libvirt still holds snapshot records of gone: %v", ents)
	}
	if got := qcowSnapshots(t, h.Golden); len(got) != 0 {
		t.Errorf("the golden image holds snapshots: %v", got)
	}

	// The same VM again: only its new baseline.
	apply(t, h, dir)
	if got := virshSnapshots(t, h, "gone"); !slices.Equal(got, []string{"clean"}) {
		t.Errorf("re-created VM has snapshots %v, want [clean]", got)
	}
	if got := qcowSnapshots(t, disk); !slices.Equal(got, []string{"clean"}) {
		t.Errorf("re-created VM's image holds %v, want [clean]", got)
	}
}
