package orchestrator

import (
	"context"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// TestMissingBaselineIsTakenInPlace: apply marks a VM provisioned right
// before its baseline snapshot (the snapshot's copy of the definition must
// say provisioned, or every reset would un-provision the VM), so a kill in
// between leaves a provisioned VM without baseline; a baseline deleted by
// hand, or a policy added to an existing VM, look the same. The VM is kept
// (no replace, nothing destroyed): apply takes the baseline from the VM as
// it is, with memory when it runs, disk only when it is off.
func TestMissingBaselineIsTakenInPlace(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))

	d, err := h.GetDomain(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Metadata == nil || !d.Metadata.Provisioned {
		t.Fatalf("web-1 not provisioned after apply: %+v", d.Metadata)
	}
	// web-1: the state a kill between the mark and the snapshot leaves,
	// with the VM shut off. web-2: running, baseline deleted by hand, a
	// manual snapshot kept.
	if err := h.DeleteSnapshot(ctx, "web-1", "clean"); err != nil {
		t.Fatal(err)
	}
	if err := h.DestroyDomain(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateSnapshot(ctx, "web-2", virt.SnapshotSpec{Name: "mine", Memory: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteSnapshot(ctx, "web-2", "clean"); err != nil {
		t.Fatal(err)
	}
	disk1 := d.Disks[0].Path
	gen, _ := h.DiskGeneration(disk1)

	hp := plan(t, p, h)
	cs := changesByName(hp.Plan)
	for vm, how := range map[string]string{"web-1": "disk only, the VM is shut off", "web-2": "with memory, the VM runs"} {
		c := cs["vm/"+vm]
		if c.Action != ActionUpdate || c.Destructive || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "baseline snapshot clean is missing") ||
			!strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), how) {
			t.Errorf("%s planned as %+v, want a non-destructive update taking the baseline (%s)", vm, c, how)
		}
	}
	apply(t, hp)
	for vm, want := range map[string]struct {
		snaps  int
		memory bool
		state  virt.DomainState
	}{"web-1": {1, false, virt.StateShutoff}, "web-2": {2, true, virt.StateRunning}} {
		snaps, err := h.ListSnapshots(ctx, vm)
		if err != nil {
			t.Fatal(err)
		}
		var base *virt.Snapshot
		for i := range snaps {
			if snaps[i].Name == "clean" {
				base = &snaps[i]
			}
		}
		if len(snaps) != want.snaps || base == nil || snapmeta.Classify(*base, "clean").Memory != want.memory {
			t.Errorf("%s after apply: snapshots %+v, want %d with a clean baseline (memory %v)", vm, snaps, want.snaps, want.memory)
		}
		if d, _ := h.GetDomain(ctx, vm); d.State != want.state {
			t.Errorf("%s is %s after apply, want %s (apply neither starts nor stops it)", vm, d.State, want.state)
		}
	}
	if g, _ := h.DiskGeneration(disk1); g != gen {
		t.Errorf("web-1's disk changed (generation %d -> %d): it was replaced, not kept", gen, g)
	}
	if hp := plan(t, p, h); hp.Plan.HasChanges() {
		t.Fatalf("not converged: %+v", hp.Plan.Changes)
	}
}
