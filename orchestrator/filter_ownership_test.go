package orchestrator

import (
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// TestFilterConflicts: an existing nwfilter named like a network's filters
// is redefined only when it is provably this profile's own.
func TestFilterConflicts(t *testing.T) {
	dn := newDesiredNetwork(&profiles.Profile{Name: "lab"}, &profiles.Network{Name: "x"})
	root, guard := dn.Filter.Name, dn.Filter.Name+"-guard"
	ourNet := virt.Network{Name: dn.Spec.Name, Metadata: &virt.Metadata{Profile: "lab", Filters: []string{root, guard}}}
	otherNet := virt.Network{Name: dn.Spec.Name, Metadata: &virt.Metadata{Profile: "other", Filters: []string{root, guard}}}
	ourRoot := virt.Filter{Name: root, UUID: dn.Filter.UUID, Refs: []string{guard}}
	handRoot := virt.Filter{Name: root, UUID: "c7f93a6e-8965-4208-bd9f-092fb6574ff2", Refs: []string{guard}}
	handGuard := virt.Filter{Name: guard, UUID: "c2a55508-45c0-4267-9ea3-e7d1d423e5b1"}
	for _, tc := range []struct {
		name     string
		nets     []virt.Network
		filters  []virt.Filter
		conflict []string
	}{
		{"nothing exists", nil, nil, nil},
		{"listed by the profile's network", []virt.Network{ourNet}, []virt.Filter{handRoot, handGuard}, nil},
		{"interrupted delete: our root and its guard", nil, []virt.Filter{ourRoot, handGuard}, nil},
		{"our root alone", nil, []virt.Filter{ourRoot}, nil},
		{"guard made by hand", nil, []virt.Filter{handGuard}, []string{guard}},
		{"root and guard made by hand", nil, []virt.Filter{handRoot, handGuard}, []string{root, guard}},
		{"another profile's network lists them", []virt.Network{otherNet}, []virt.Filter{handRoot, handGuard}, []string{root, guard}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &observation{Networks: map[string]virt.Network{}, Filters: map[string]virt.Filter{}}
			for _, n := range tc.nets {
				o.Networks[n.Name] = n
			}
			for _, f := range tc.filters {
				o.Filters[f.Name] = f
			}
			diags := filterConflicts("lab", dn, o)
			if len(diags) != len(tc.conflict) {
				t.Fatalf("got %d diagnostics, want %d (%v): %v", len(diags), len(tc.conflict), tc.conflict, diags)
			}
			for i, name := range tc.conflict {
				if want := "A traffic filter named " + name + " already exists"; diags[i].Summary != want {
					t.Errorf("diagnostic %d: %q, want %q", i, diags[i].Summary, want)
				}
			}
		})
	}
}
