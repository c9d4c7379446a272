package fake

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// filter is one nwfilter.
type filter struct {
	name, uuid, chain string
	refs              []string
	// spec is what legacyvm defined it from (nil for built-in filters).
	spec *virt.FilterSpec
	// tampered is set by TamperFilter: the filter was edited outside
	// legacyvm.
	tampered bool
}

// builtinFilters are the filters libvirt 9.0 installs.
func builtinFilters() []*filter {
	type b struct {
		name, chain string
		refs        []string
	}
	list := []b{
		{"allow-arp", "arp", nil},
		{"allow-dhcp", "ipv4", nil},
		{"allow-dhcp-server", "ipv4", nil},
		{"allow-dhcpv6", "ipv6", nil},
		{"allow-dhcpv6-server", "ipv6", nil},
		{"allow-incoming-ipv4", "ipv4", nil},
		{"allow-incoming-ipv6", "ipv6", nil},
		{"allow-ipv4", "ipv4", nil},
		{"allow-ipv6", "ipv6", nil},
		{"clean-traffic", "root", []string{"no-mac-spoofing", "no-ip-spoofing", "allow-incoming-ipv4", "no-arp-spoofing", "no-other-l2-traffic", "qemu-announce-self"}},
		{"clean-traffic-gateway", "root", []string{"no-mac-spoofing", "no-ip-spoofing", "no-arp-spoofing", "no-other-l2-traffic", "qemu-announce-self"}},
		{"no-arp-ip-spoofing", "arp-ip", nil},
		{"no-arp-mac-spoofing", "arp-mac", nil},
		{"no-arp-spoofing", "root", []string{"no-arp-mac-spoofing", "no-arp-ip-spoofing"}},
		{"no-ip-multicast", "ipv4", nil},
		{"no-ip-spoofing", "ipv4-ip", nil},
		{"no-ipv6-multicast", "ipv6", nil},
		{"no-ipv6-spoofing", "ipv6-ip", nil},
		{"no-mac-broadcast", "ipv4", nil},
		{"no-mac-spoofing", "mac", nil},
		{"no-other-l2-traffic", "root", nil},
		{"no-other-rarp-traffic", "rarp", nil},
		{"qemu-announce-self", "root", []string{"qemu-announce-self-rarp", "no-other-rarp-traffic"}},
		{"qemu-announce-self-rarp", "rarp", nil},
	}
	out := make([]*filter, 0, len(list))
	for i, f := range list {
		out = append(out, &filter{
			name:  f.name,
			uuid:  fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1),
			chain: f.chain,
			refs:  f.refs,
		})
	}
	return out
}

// specFilters describes the two filters spec renders to: the root filter
// (clean-traffic, then the guard) and the guard chain.
func (h *Hypervisor) specFilters(spec virt.FilterSpec) []*filter {
	guardUUID := ""
	if spec.UUID != "" {
		guardUUID = derivedUUID(spec.UUID, "guard")
	}
	s := spec
	s.Allows = append([]virt.AllowSpec(nil), spec.Allows...)
	return []*filter{
		{name: spec.Name, uuid: strings.ToLower(spec.UUID), chain: "root", refs: []string{"clean-traffic", spec.Name + "-guard"}, spec: &s},
		{name: spec.Name + "-guard", uuid: guardUUID, chain: guardChain(spec.Name), spec: &s},
	}
}

// guardChain is the ipv4 sub-chain of the guard filter.
func guardChain(name string) string { return "ipv4-guard" }

func (h *Hypervisor) observeFilter(f *filter) virt.Filter {
	return virt.Filter{Name: f.name, UUID: f.uuid, Chain: f.chain, Refs: append([]string(nil), f.refs...), XML: filterXML(f)}
}

// ListFilters implements virt.Hypervisor; filters are sorted by name and
// include libvirt's built-in ones.
func (h *Hypervisor) ListFilters(ctx context.Context) ([]virt.Filter, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin(ctx, "ListFilters", "list nwfilters", ""); err != nil {
		return nil, err
	}
	out := make([]virt.Filter, 0, len(h.filters))
	for _, name := range sortedKeys(h.filters) {
		out = append(out, h.observeFilter(h.filters[name]))
	}
	return out, nil
}

// DefineFilter implements virt.Hypervisor. The guard is defined before the
// root filter that references it.
func (h *Hypervisor) DefineFilter(ctx context.Context, spec virt.FilterSpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "define nwfilter"
	if err := h.begin(ctx, "DefineFilter", op, spec.Name); err != nil {
		return err
	}
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/ \n") {
		return errf(op, spec.Name, virt.ErrInvalid, "invalid nwfilter name %q", spec.Name)
	}
	for _, a := range spec.Allows {
		switch a.Protocol {
		case "tcp", "udp", "icmp", "any":
		default:
			return errf(op, spec.Name, virt.ErrInvalid, "allow %q: unknown protocol %q", a.Name, a.Protocol)
		}
		if a.Direction != "in" && a.Direction != "out" {
			return errf(op, spec.Name, virt.ErrInvalid, "allow %q: unknown direction %q", a.Name, a.Direction)
		}
	}
	fs := h.specFilters(spec)
	for i := len(fs) - 1; i >= 0; i-- {
		f := fs[i]
		if old, ok := h.filters[f.name]; ok {
			if f.uuid != "" && old.uuid != f.uuid {
				return errf(op, f.name, virt.ErrExists, "filter '%s' already exists with uuid %s", f.name, old.uuid)
			}
			f.uuid = old.uuid
		}
		if f.uuid == "" {
			f.uuid = h.newUUID("nwfilter", f.name)
		}
		h.filters[f.name] = f
	}
	return nil
}

// FilterDiff implements virt.Hypervisor. It reports missing filters and
// filters that no longer match spec (defined from another spec, or edited
// outside legacyvm: see TamperFilter).
func (h *Hypervisor) FilterDiff(ctx context.Context, spec virt.FilterSpec) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin(ctx, "FilterDiff", "compare nwfilter", spec.Name); err != nil {
		return nil, err
	}
	var diffs []string
	for _, want := range h.specFilters(spec) {
		got, ok := h.filters[want.name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("filter %s is missing", want.name))
		case got.tampered:
			diffs = append(diffs, fmt.Sprintf("filter %s was edited outside legacyvm", want.name))
		case got.chain != want.chain:
			diffs = append(diffs, fmt.Sprintf("filter %s has chain %s, want %s", want.name, got.chain, want.chain))
		case !reflect.DeepEqual(got.refs, want.refs):
			diffs = append(diffs, fmt.Sprintf("filter %s references %v, want %v", want.name, got.refs, want.refs))
		case got.spec == nil || !sameFilterRules(*got.spec, spec):
			diffs = append(diffs, fmt.Sprintf("filter %s rules differ", want.name))
		}
	}
	return diffs, nil
}

// sameFilterRules compares what decides the rendered rules (not the UUID).
func sameFilterRules(a, b virt.FilterSpec) bool {
	a.UUID, b.UUID = "", ""
	if len(a.Allows) == 0 {
		a.Allows = nil
	}
	if len(b.Allows) == 0 {
		b.Allows = nil
	}
	return reflect.DeepEqual(a, b)
}

// TamperFilter simulates someone editing the named filter outside legacyvm
// (virsh nwfilter-edit): FilterDiff reports it until it is defined again.
func (h *Hypervisor) TamperFilter(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.filters[name]
	if !ok {
		return errf("tamper with nwfilter", name, virt.ErrNotFound, "no nwfilter with matching name '%s'", name)
	}
	f.tampered = true
	return nil
}

// filterUsers returns the domains whose NICs reference name, directly or
// through other filters.
func (h *Hypervisor) filterUsers(name string) []string {
	var users []string
	for _, dn := range sortedKeys(h.domains) {
		d := h.domains[dn]
		defs := []virt.DomainSpec{d.def}
		if d.live != nil {
			defs = append(defs, *d.live)
		}
	check:
		for _, def := range defs {
			for _, nic := range def.Interfaces {
				if nic.Filter != "" && h.reaches(nic.Filter, name, 0) {
					users = append(users, dn)
					break check
				}
			}
		}
	}
	return users
}

// reaches reports whether filter from is target or references it.
func (h *Hypervisor) reaches(from, target string, depth int) bool {
	if from == target {
		return true
	}
	f, ok := h.filters[from]
	if !ok || depth > 20 {
		return false
	}
	for _, r := range f.refs {
		if h.reaches(r, target, depth+1) {
			return true
		}
	}
	return false
}

// missingFilter returns the first filter in the tree under name that does
// not exist ("" when all do).
func (h *Hypervisor) missingFilter(name string) string {
	f, ok := h.filters[name]
	if !ok {
		return name
	}
	for _, r := range f.refs {
		if m := h.missingFilter(r); m != "" {
			return m
		}
	}
	return ""
}

// DeleteFilter implements virt.Hypervisor.
func (h *Hypervisor) DeleteFilter(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "delete nwfilter"
	if err := h.begin(ctx, "DeleteFilter", op, name); err != nil {
		return err
	}
	if _, ok := h.filters[name]; !ok {
		return errf(op, name, virt.ErrNotFound, "no nwfilter with matching name '%s'", name)
	}
	if users := h.filterUsers(name); len(users) > 0 {
		return errf(op, name, virt.ErrInUse, "nwfilter is in use by domain %s", strings.Join(users, ", "))
	}
	delete(h.filters, name)
	return nil
}

// FilterBindings implements virt.Hypervisor: one binding per filtered NIC
// of each running domain, tap devices numbered vnet0, vnet1, ... in domain
// name order.
func (h *Hypervisor) FilterBindings(ctx context.Context) ([]virt.FilterBinding, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin(ctx, "FilterBindings", "list nwfilter bindings", ""); err != nil {
		return nil, err
	}
	var out []virt.FilterBinding
	tap := 0
	for _, dn := range sortedKeys(h.domains) {
		d := h.domains[dn]
		if d.live == nil {
			continue
		}
		for _, nic := range d.live.Interfaces {
			dev := fmt.Sprintf("vnet%d", tap)
			tap++
			if nic.Filter == "" {
				continue
			}
			params := append([]virt.FilterParam{{Name: "MAC", Value: nic.MAC}}, nic.FilterParams...)
			out = append(out, virt.FilterBinding{PortDev: dev, MAC: nic.MAC, Owner: dn, Filter: nic.Filter, Params: params})
		}
	}
	return out, nil
}
