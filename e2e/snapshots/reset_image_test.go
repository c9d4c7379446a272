package snapshots

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// allocated is the bytes a file occupies on disk.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Blocks * 512
}

// A memory baseline is a memory image volume plus a disk snapshot, taken
// layered (the VM runs on a layer over its system disk). reset
// brings back the disk (the marker the guest wrote after the baseline is
// gone) and the running guest (it goes on from where the baseline was
// taken, without a start), and adds nothing to the VM's disk file. A reset
// killed (SIGKILL) while the disks are reverted, right when the memory
// restore begins, and while the restore runs, leaves a VM that the next
// reset brings back. destroy leaves no disk and no memory image behind.
func TestResetMemoryImageSurvivesKills(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "rimg", `
snapshot_policy "live" {
  memory = true
}
`, vmBlock(h, "rimg", 1, "live", "rig.diskcheck=1", "rig.disktouch=1", "rig.hb=1"))
	apply(t, h, dir)
	// The baseline is layered: the VM runs on its layer, over the system
	// disk, which holds the baseline's disk state and is no longer written.
	frozen, disk, image := systemDisk(h, "rimg"), filepath.Join(h.PoolDir, "lvm-rimg-live.qcow2"), filepath.Join(h.PoolDir, "lvm-rimg-baseline.mem")
	if out := h.MustVirsh(t, "domblklist", "rimg"); !strings.Contains(out, disk) {
		t.Fatalf("rimg does not run on its layer %s:\n%s", disk, out)
	}
	if out := h.MustVirsh(t, "vol-dumpxml", "--pool", h.Pool, "lvm-rimg-live.qcow2"); !strings.Contains(out, frozen) {
		t.Errorf("the layer is not over the system disk %s:\n%s", frozen, out)
	}
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("no memory image after apply: %v", err)
	}
	s := snapsOf(t, h, "rimg")
	if len(s) != 1 || s[0].Name != "clean" || s[0].Kind != "baseline" || s[0].State != "running" || !s[0].Memory {
		t.Fatalf("after apply, want the memory baseline \"clean\", got %+v", s)
	}
	h.WaitSerial(t, "rimg", `RIG disk marker=written`, 180*time.Second)
	h.WaitSerial(t, "rimg", `RIG hb n=2 `, 60*time.Second)
	before, beforeFrozen := allocated(t, disk), allocated(t, frozen)

	// back checks that the guest runs again from the baseline: the domain
	// runs, and the restored guest finds no marker on its disk (it was
	// restored in the middle of its boot, before it wrote one), writes it
	// again and beats.
	back := func(when string) {
		t.Helper()
		if got := domState(t, h, "rimg"); got != "running" {
			t.Fatalf("%s: the domain is %q, want running", when, got)
		}
		if line := h.WaitSerial(t, "rimg", `RIG disk marker=(absent|present)`, 180*time.Second); !strings.Contains(line, "absent") {
			t.Fatalf("%s: the guest found its marker after the reset: %q", when, line)
		}
		h.WaitSerial(t, "rimg", `RIG disk marker=written`, 60*time.Second)
		h.WaitSerial(t, "rimg", `RIG hb n=2 `, 60*time.Second)
	}

	r := h.MustRun(t, []string{"reset", "rimg"})
	if !strings.Contains(r.Stdout, "rimg: reverted to clean in ") || !strings.Contains(r.Stdout, "(running)") {
		t.Errorf("reset output:\n%s", r)
	}
	for _, step := range []string{"returning the disks to clean", "restoring memory from lvm-rimg-baseline.mem"} {
		if !strings.Contains(r.Stderr, step) {
			t.Errorf("reset progress lacks %q:\n%s", step, r.Stderr)
		}
	}
	back("after a reset")
	if after := allocated(t, disk); after > before {
		t.Errorf("a reset grew the disk file from %d to %d bytes", before, after)
	}

	// Kill points: the progress line each step prints before its libvirt
	// call, and a moment into the restore.
	for _, k := range []struct {
		name, line string
		delay      time.Duration
	}{
		{"during the disk revert", "returning the disks to clean", 0},
		{"when the restore begins", "restoring memory from", 0},
		{"during the restore", "restoring memory from", 300 * time.Millisecond},
	} {
		cmd, _, errb := h.Start(t, nil, "reset", "rimg")
		deadline := time.Now().Add(2 * time.Minute)
		for !strings.Contains(errb.String(), k.line) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if !strings.Contains(errb.String(), k.line) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			t.Fatalf("%s: reset never printed %q:\n%s", k.name, k.line, errb)
		}
		time.Sleep(k.delay)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		// Let libvirtd finish (or fail) the call in flight.
		time.Sleep(2 * time.Second)
		t.Logf("killed %s: the domain is %q", k.name, domState(t, h, "rimg"))
		h.MustRun(t, []string{"reset", "rimg"})
		back("reset after a kill " + k.name)
	}
	if after := allocated(t, disk); after > before {
		t.Errorf("resets grew the disk file from %d to %d bytes", before, after)
	}
	if after := allocated(t, frozen); after != beforeFrozen {
		t.Errorf("the frozen system disk changed from %d to %d bytes", beforeFrozen, after)
	}
	// A memory snapshot taken after the baseline lives in the layer beside
	// the baseline's mark: resets keep it.
	h.MustRun(t, []string{"snapshot", "create", "--memory", "rimg", "later"})
	h.MustRun(t, []string{"reset", "rimg"})
	back("a reset after a memory snapshot")
	if got := names(snapsOf(t, h, "rimg")); strings.Join(got, ",") != "clean,later" {
		t.Errorf("snapshots after the resets = %v, want clean and later", got)
	}
	h.MustRun(t, []string{"reset", "rimg", "--to", "later"})
	if got := domState(t, h, "rimg"); got != "running" {
		t.Errorf("after reset --to later the domain is %q, want running", got)
	}

	h.MustRun(t, []string{"destroy", "--auto-approve", dir})
	left, _ := filepath.Glob(filepath.Join(h.PoolDir, "lvm-rimg*"))
	if len(left) > 0 {
		t.Errorf("destroy left %v", left)
	}
	if out := h.MustVirsh(t, "vol-list", h.Pool); strings.Contains(out, "rimg") {
		t.Errorf("destroy left volumes:\n%s", out)
	}
}

// An apply killed (SIGKILL) while it takes a layered memory baseline (at
// the progress line, and a moment into the external snapshot) leaves a
// VM that the next apply finishes: the baseline exists, the VM runs on its
// layer, plan has nothing left to do, and a reset brings the guest back.
func TestLayeredBaselineSurvivesKilledApply(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "rkill", `
snapshot_policy "live" {
  memory = true
}
`, vmBlock(h, "rkill", 1, "live", "rig.diskcheck=1", "rig.disktouch=1", "rig.hb=1"))
	layer := filepath.Join(h.PoolDir, "lvm-rkill-live.qcow2")
	t.Cleanup(func() { h.Run(t, "destroy", "--auto-approve", dir) })
	for _, delay := range []time.Duration{0, 40 * time.Millisecond, 150 * time.Millisecond} {
		cmd, _, errb := h.Start(t, nil, "apply", "--auto-approve", dir)
		const line = "rkill: taking baseline snapshot clean (with memory)"
		deadline := time.Now().Add(3 * time.Minute)
		for !strings.Contains(errb.String(), line) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if !strings.Contains(errb.String(), line) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			t.Fatalf("apply never printed %q:\n%s", line, errb)
		}
		time.Sleep(delay)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		time.Sleep(2 * time.Second)
		t.Logf("killed %s into the baseline: the domain is %q, on %s", delay, domState(t, h, "rkill"), h.MustVirsh(t, "domblklist", "rkill"))

		r := h.MustRun(t, []string{"apply", "--auto-approve", dir})
		t.Logf("apply after the kill:\n%s", r.Stderr)
		if p := h.MustRun(t, []string{"plan", dir}); !strings.Contains(p.Stdout, "No changes") {
			t.Errorf("plan after the converging apply:\n%s", p.Stdout)
		}
		s := snapsOf(t, h, "rkill")
		if len(s) != 1 || s[0].Name != "clean" || !s[0].Memory {
			t.Fatalf("after the converging apply, want the memory baseline clean, got %+v", s)
		}
		if out := h.MustVirsh(t, "domblklist", "rkill"); !strings.Contains(out, layer) {
			t.Errorf("rkill does not run on its layer:\n%s", out)
		}
		h.WaitSerial(t, "rkill", `RIG disk marker=written`, 180*time.Second)
		h.MustRun(t, []string{"reset", "rkill"})
		if line := h.WaitSerial(t, "rkill", `RIG disk marker=(absent|present)`, 180*time.Second); !strings.Contains(line, "absent") {
			t.Errorf("after the reset the guest found its marker: %q", line)
		}
		h.MustRun(t, []string{"destroy", "--auto-approve", dir})
		if left, _ := filepath.Glob(filepath.Join(h.PoolDir, "lvm-rkill*")); len(left) > 0 {
			t.Fatalf("destroy left %v", left)
		}
	}
}
