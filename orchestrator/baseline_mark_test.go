package orchestrator

import (
	"context"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// TestMarkedWithoutBaselineIsReplaced: apply marks a VM provisioned right
// before its baseline snapshot (the snapshot's copy of the definition must
// say provisioned, or every reset would un-provision the VM). A VM killed
// in between is marked but has no snapshot: plan replaces it. A VM with
// any snapshot left is not touched.
func TestMarkedWithoutBaselineIsReplaced(t *testing.T) {
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
	// The state a kill between the mark and the snapshot leaves.
	if err := h.DeleteSnapshot(ctx, "web-1", "clean"); err != nil {
		t.Fatal(err)
	}
	// web-2 lost its baseline but keeps a manual snapshot: not replaced.
	if _, err := h.CreateSnapshot(ctx, "web-2", virt.SnapshotSpec{Name: "mine", Memory: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteSnapshot(ctx, "web-2", "clean"); err != nil {
		t.Fatal(err)
	}

	hp := plan(t, p, h)
	cs := changesByName(hp.Plan)
	if c := cs["vm/web-1"]; c.Action != ActionReplace || len(c.Reasons) != 1 || !strings.Contains(c.Reasons[0], "without its baseline snapshot clean") {
		t.Fatalf("web-1 marked without baseline planned as %+v", c)
	}
	if c := cs["vm/web-2"]; c.Action != ActionNoop {
		t.Fatalf("web-2 (a manual snapshot left) planned as %+v", c)
	}
	apply(t, hp)
	snaps, err := h.ListSnapshots(ctx, "web-1")
	if err != nil || len(snaps) != 1 || snaps[0].Name != "clean" {
		t.Fatalf("web-1 after the replace: snapshots %+v, %v", snaps, err)
	}
	if hp := plan(t, p, h); hp.Plan.HasChanges() {
		t.Fatalf("not converged: %+v", hp.Plan.Changes)
	}
}
