package orchestrator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// TestResetWithMemoryImage: a memory baseline is a disk snapshot plus a
// memory image volume; reset brings back the disk content and a running VM,
// adds nothing to the VM's disk, and a reset interrupted after either step
// (the VM stopped at the baseline disk, or the restore failed) is brought
// back by the next reset. snapshot list shows the baseline with memory, a
// forced delete of the baseline and destroy remove the image.
func TestResetWithMemoryImage(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))
	var mu sync.Mutex
	var lines []string
	e := &engine{HV: h, Parallelism: 2, Hook: event.Func(func(ev event.Event) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, ev.Object+": "+ev.Message)
	})}

	d, err := h.GetDomain(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	disk := d.Disks[0].Path
	base, _ := h.DiskGeneration(disk)
	if err := h.WriteDisk("web-1"); err != nil {
		t.Fatal(err)
	}
	vols := func() map[string]virt.Volume {
		vs, err := h.ListVolumes(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]virt.Volume{}
		for _, v := range vs {
			m[v.Name] = v
		}
		return m
	}
	before := vols()[systemVolumeName("web-1")]

	res, err := e.Reset(ctx, []string{"web-1", "web-2"}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != "" || r.State != virt.StateRunning || r.Snapshot != "clean" {
			t.Errorf("reset %+v, want running at clean", r)
		}
	}
	if g, _ := h.DiskGeneration(disk); g != base {
		t.Errorf("disk generation after reset %d, want the baseline's %d", g, base)
	}
	if after := vols()[systemVolumeName("web-1")]; after.AllocationBytes != before.AllocationBytes {
		t.Errorf("reset changed the disk's allocation %d -> %d", before.AllocationBytes, after.AllocationBytes)
	}
	mu.Lock()
	all := strings.Join(lines, "\n")
	mu.Unlock()
	for _, want := range []string{"web-1: returning the disks to clean", "web-1: restoring memory from " + memoryImageVolumeName("web-1")} {
		if !strings.Contains(all, want) {
			t.Errorf("progress lacks %q:\n%s", want, all)
		}
	}

	// Killed after the disk revert: the VM is off at the baseline disk.
	if err := h.RevertSnapshot(ctx, "web-1", "clean"); err != nil {
		t.Fatal(err)
	}
	if d, _ := h.GetDomain(ctx, "web-1"); d.State != virt.StateShutoff {
		t.Fatalf("web-1 after the disk revert alone is %s", d.State)
	}
	if st, err := e.RevertSnapshot(ctx, "web-1", "clean"); err != nil || st != virt.StateRunning {
		t.Errorf("reset after an interrupted one: %s %v", st, err)
	}
	// The restore failed (libvirtd refused, or was killed): the next
	// reset converges.
	h.FailTimes("RestoreDomain", "web-1", 1, errors.New("injected restore failure"))
	if _, err := e.RevertSnapshot(ctx, "web-1", "clean"); err == nil {
		t.Fatal("reset with a failing restore succeeded")
	}
	if st, err := e.RevertSnapshot(ctx, "web-1", "clean"); err != nil || st != virt.StateRunning {
		t.Errorf("reset after a failed restore: %s %v", st, err)
	}

	// snapshot list: the baseline holds memory.
	ls, err := e.ListSnapshots(ctx, []string{"web-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || len(ls[0].Snapshots) != 1 || s0(ls).Kind != snapmeta.Baseline || !s0(ls).Memory || s0(ls).State != virt.StateRunning {
		t.Errorf("snapshot list %+v, want the baseline clean with memory", ls)
	}
	// retention never deletes it; a delete without force is refused.
	if err := e.DeleteSnapshot(ctx, "web-1", "clean", false); !errors.Is(err, errBaselineProtected) {
		t.Errorf("delete the baseline without force: %v", err)
	}
	// A forced delete takes the image with it; apply takes both again.
	if err := e.DeleteSnapshot(ctx, "web-1", "clean", true); err != nil {
		t.Fatal(err)
	}
	if _, ok := vols()[memoryImageVolumeName("web-1")]; ok {
		t.Errorf("memory image of web-1 left after its baseline was deleted")
	}
	apply(t, plan(t, p, h))
	if _, ok := vols()[memoryImageVolumeName("web-1")]; !ok {
		t.Errorf("apply did not take web-1's memory baseline again")
	}
	if st, err := e.RevertSnapshot(ctx, "web-1", "clean"); err != nil || st != virt.StateRunning {
		t.Errorf("reset to the retaken baseline: %s %v", st, err)
	}

	// destroy leaves no image behind.
	hps, err := planProfileDestroy(ctx, p, connector(h), Options{DefaultURI: "test:///fake"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&engine{HV: h, Parallelism: 2, PollInterval: 1}).Apply(ctx, hps[0].Plan); err != nil {
		t.Fatal(err)
	}
	left := vols()
	for name := range left {
		if strings.Contains(name, "web-") {
			t.Errorf("destroy left volume %s", name)
		}
	}
}

func s0(ls []VMSnapshots) snapmeta.Info { return ls[0].Snapshots[0] }

// TestResetOldInternalBaseline: a VM whose baseline is an internal memory
// snapshot (made by an earlier version: no memory image) is still reset by
// reverting that snapshot.
func TestResetOldInternalBaseline(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))
	// Turn web-1 into what earlier versions made.
	if err := h.DeleteSnapshot(ctx, "web-1", "clean"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteVolume(ctx, "default", memoryImageVolumeName("web-1")); err != nil {
		t.Fatal(err)
	}
	desc := snapmeta.Description{Kind: snapmeta.Baseline, Policy: "p"}
	if _, err := h.CreateSnapshot(ctx, "web-1", virt.SnapshotSpec{Name: "clean", Description: desc.String(), Memory: true}); err != nil {
		t.Fatal(err)
	}
	d, _ := h.GetDomain(ctx, "web-1")
	base, _ := h.DiskGeneration(d.Disks[0].Path)
	if err := h.WriteDisk("web-1"); err != nil {
		t.Fatal(err)
	}
	h.FailOn("RestoreDomain", "web-1", errors.New("the old path must not restore an image"))
	e := &engine{HV: h}
	if st, err := e.RevertSnapshot(ctx, "web-1", "clean"); err != nil || st != virt.StateRunning {
		t.Fatalf("reset of an old-style baseline: %s %v", st, err)
	}
	if g, _ := h.DiskGeneration(d.Disks[0].Path); g != base {
		t.Errorf("disk generation %d, want %d", g, base)
	}
	ls, _ := e.ListSnapshots(ctx, []string{"web-1"})
	if !slices.ContainsFunc(ls[0].Snapshots, func(s snapmeta.Info) bool { return s.Name == "clean" && s.Memory }) {
		t.Errorf("old baseline not listed with memory: %+v", ls)
	}
}

// TestBaselineInterruptedAfterSave: an apply killed between saving the
// memory for the baseline and its disk snapshot leaves the VM shut off
// (stop reason "other") with an image no snapshot names; the next apply
// finishes that baseline and the VM runs again, from the saved memory.
func TestBaselineInterruptedAfterSave(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))
	if err := h.DeleteSnapshot(ctx, "web-1", "clean"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteVolume(ctx, "default", memoryImageVolumeName("web-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SaveDomain(ctx, "web-1", "default", memoryImageVolumeName("web-1"), virt.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	hp := plan(t, p, h)
	c := changesByName(hp.Plan)["vm/web-1"]
	if c.Action != ActionUpdate || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "with the memory saved before an interruption") {
		t.Errorf("planned %+v", c)
	}
	h.FailOn("SaveDomain", "web-1", errors.New("the saved memory must be used, not a new save"))
	apply(t, hp)
	d, _ := h.GetDomain(ctx, "web-1")
	if d.State != virt.StateRunning {
		t.Errorf("web-1 is %s after the apply, want running", d.State)
	}
	snaps, _ := h.ListSnapshots(ctx, "web-1")
	if len(snaps) != 1 || !snapmeta.Classify(snaps[0], "clean").Memory {
		t.Errorf("snapshots %+v, want the memory baseline clean", snaps)
	}
}

// TestMemoryImageKeptWhenPolicyDropsMemory: a policy that stops asking for
// memory does not orphan the image of the existing baseline: the VM's
// metadata keeps listing it, reset still restores it, destroy deletes it.
func TestMemoryImageKeptWhenPolicyDropsMemory(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))
	noMem := loadProfile(t, "lab", strings.Replace(labProfile, "memory = true", "memory = false", 1))
	apply(t, plan(t, noMem, h))
	d, _ := h.GetDomain(ctx, "web-1")
	if ref, ok := memoryImageRef(d.Metadata); !ok || ref.Name != memoryImageVolumeName("web-1") {
		t.Fatalf("web-1's metadata no longer lists its memory image: %+v", d.Metadata.Volumes)
	}
	if st, err := (&engine{HV: h}).RevertSnapshot(ctx, "web-1", "clean"); err != nil || st != virt.StateRunning {
		t.Errorf("reset after the policy change: %s %v", st, err)
	}
	hps, err := planProfileDestroy(ctx, noMem, connector(h), Options{DefaultURI: "test:///fake"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&engine{HV: h, Parallelism: 2, PollInterval: 1}).Apply(ctx, hps[0].Plan); err != nil {
		t.Fatal(err)
	}
	vs, _ := h.ListVolumes(ctx, "default")
	for _, v := range vs {
		if strings.HasSuffix(v.Name, ".mem") {
			t.Errorf("destroy left %s", v.Name)
		}
	}
}
