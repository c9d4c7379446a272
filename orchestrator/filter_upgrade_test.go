package orchestrator

import (
	"context"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// TestOldFilterLayoutIsRedefined: a host holding the filters of an earlier
// legacyvm (the root filter referencing libvirt's clean-traffic and the
// guard, the guard in its own ipv4-lvguard chain) plans an update of the
// filter, and apply redefines both in place: the VM keeps its filter and
// verify passes.
func TestOldFilterLayoutIsRedefined(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))

	// The earlier layout, as libvirt stored it.
	if err := h.TamperFilter("lvm-lab-guard", func(f *libvirtxml.NWFilter) {
		f.Chain, f.Priority = "ipv4-lvguard", -705
		for _, e := range f.Entries {
			e.Rule.Priority += 900
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.TamperFilter("lvm-lab", func(f *libvirtxml.NWFilter) {
		f.Entries = []libvirtxml.NWFilterEntry{
			{Ref: &libvirtxml.NWFilterRef{Filter: "clean-traffic"}},
			{Ref: &libvirtxml.NWFilterRef{Filter: "lvm-lab-guard"}},
		}
	}); err != nil {
		t.Fatal(err)
	}
	if v := verifyOK(t, h, p); v.OK {
		t.Fatal("verify passes with the earlier filter layout")
	}

	hp := plan(t, p, h)
	c, ok := changesByName(hp.Plan)["filter/lvm-lab"]
	if !ok || c.Action != ActionUpdate {
		t.Fatalf("filter change = %+v, want an update", c)
	}
	var why []string
	for _, r := range c.Reasons {
		why = append(why, r.Subject)
	}
	want := map[string]bool{
		"filter lvm-lab-guard: chain ipv4-lvguard differs from root": false,
		"filter lvm-lab-guard: priority -705 differs from 0":         false,
	}
	for _, w := range why {
		if _, ok := want[w]; ok {
			want[w] = true
		}
	}
	for w, seen := range want {
		if !seen {
			t.Errorf("plan reasons %q lack %q", why, w)
		}
	}
	apply(t, hp)

	fs, err := h.ListFilters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if (f.Name == "lvm-lab" || f.Name == "lvm-lab-guard") && f.Chain != "root" {
			t.Errorf("after apply %s has chain %s, want root", f.Name, f.Chain)
		}
		if f.Name == "lvm-lab" && len(f.Refs) != 1 {
			t.Errorf("after apply lvm-lab references %v, want only its guard", f.Refs)
		}
	}
	if v := verifyOK(t, h, p); !v.OK {
		t.Errorf("verify after apply: %+v", v)
	}
	if c := changesByName(plan(t, p, h).Plan)["filter/lvm-lab"]; c.Action != ActionNoop {
		t.Errorf("second plan: filter change %+v, want none", c)
	}
}
