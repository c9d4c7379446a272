package orchestrator

import (
	"context"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

// Issue 10: status did not show when a VM's next scheduled snapshot is.
func TestStatusShowsNextScheduledSnapshot(t *testing.T) {
	ctx := context.Background()
	h := fake.New(fake.WithFile("/img/g.qcow2", "qcow2", 1<<30))
	if _, err := h.EnsurePool(ctx, "default", "/pool"); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.Local)
	define := func(vm, uuid string, p *virt.PolicyRef) {
		t.Helper()
		_, err := h.DefineDomain(ctx, virt.DomainSpec{Name: vm, UUID: uuid, Accel: virt.AccelTCG, Arch: "x86_64", Machine: "pc", VCPUs: 1, MemoryBytes: 1 << 30,
			Metadata: &virt.Metadata{Profile: "ops", VM: vm, Instance: vm, Created: created, Provisioned: true, Policy: p}})
		if err != nil {
			t.Fatal(err)
		}
	}
	define("daily", "6a0b8e4e-1f6a-4c1e-9f55-0d6a3c2b1a01", &virt.PolicyRef{Name: "d", Baseline: "clean", Schedule: "@daily", Keep: 3})
	define("fixed", "6a0b8e4e-1f6a-4c1e-9f55-0d6a3c2b1a02", &virt.PolicyRef{Name: "f", Baseline: "clean", Schedule: "30 2 * * *", Keep: 3})
	define("none", "6a0b8e4e-1f6a-4c1e-9f55-0d6a3c2b1a03", &virt.PolicyRef{Name: "n", Baseline: "clean"})

	now := created.Add(time.Hour)
	st, err := hostStatusAt(ctx, h, "ops", now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]VMStatus{}
	for _, s := range st {
		got[s.Name] = s
	}
	if n := got["fixed"].NextSnapshot; n == nil || !n.Equal(time.Date(2026, 3, 2, 2, 30, 0, 0, time.Local)) {
		t.Errorf("fixed: next %v, want 2026-03-02 02:30 local", n)
	}
	if n := got["daily"].NextSnapshot; n == nil || n.Hour() < 1 || n.Hour() >= 5 || !n.After(now) || n.Sub(now) > 24*time.Hour {
		t.Errorf("daily: next %v (spec %q), want the night after %v within 01:00-05:00", n, got["daily"].Schedule, now)
	}
	if got["none"].NextSnapshot != nil {
		t.Errorf("none: next %v, want none", got["none"].NextSnapshot)
	}
	// Overdue (the daemon was down): due now.
	later := created.Add(72 * time.Hour)
	st, err = hostStatusAt(ctx, h, "ops", later)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Name == "fixed" && (s.NextSnapshot == nil || !s.NextSnapshot.Equal(later)) {
			t.Errorf("overdue: next %v, want now (%v)", s.NextSnapshot, later)
		}
	}
}
