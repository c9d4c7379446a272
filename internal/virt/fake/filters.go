package fake

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml/filterdiff"
)

// filter is one nwfilter: its definition as libvirt holds it.
type filter struct {
	def *libvirtxml.NWFilter
}

func (f *filter) refs() []string {
	var out []string
	for _, e := range f.def.Entries {
		if e.Ref != nil {
			out = append(out, e.Ref.Filter)
		}
	}
	return out
}

// builtinFilters are the filters libvirt 9.0 installs (their references;
// their own rules are left out).
func builtinFilters() map[string]*filter {
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
	out := make(map[string]*filter, len(list))
	for i, b := range list {
		def := &libvirtxml.NWFilter{Name: b.name, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), Chain: b.chain}
		for _, r := range b.refs {
			def.Entries = append(def.Entries, libvirtxml.NWFilterEntry{Ref: &libvirtxml.NWFilterRef{Filter: r}})
		}
		out[b.name] = &filter{def: def}
	}
	return out
}

func (h *Hypervisor) observeFilter(f *filter) virt.Filter {
	doc, err := f.def.Marshal()
	if err == nil {
		if out, err := domainxml.ParseFilter(doc); err == nil {
			return out
		}
	}
	return virt.Filter{Name: f.def.Name, UUID: f.def.UUID, Chain: f.def.Chain, Refs: f.refs(), XML: doc}
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

// DefineFilter implements virt.Hypervisor: the filters domainxml renders,
// guard first, each keeping the UUID it has.
func (h *Hypervisor) DefineFilter(ctx context.Context, spec virt.FilterSpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "define nwfilter"
	if err := h.begin(ctx, "DefineFilter", op, spec.Name); err != nil {
		return err
	}
	defs, err := domainxml.Filters(spec)
	if err != nil {
		return opErr(op, spec.Name, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	for _, def := range defs {
		if old, ok := h.filters[def.Name]; ok && old.def.UUID != def.UUID {
			return errf(op, def.Name, virt.ErrExists, "filter '%s' already exists with uuid %s", def.Name, old.def.UUID)
		}
		for name, other := range h.filters {
			if name != def.Name && other.def.UUID == def.UUID {
				return errf(op, def.Name, virt.ErrExists, "filter '%s' already exists with uuid %s", name, def.UUID)
			}
		}
	}
	for _, def := range defs {
		for _, r := range (&filter{def: def}).refs() {
			if _, ok := h.filters[r]; !ok && !slices.ContainsFunc(defs, func(d *libvirtxml.NWFilter) bool { return d.Name == r }) {
				return errf(op, def.Name, virt.ErrInvalid, "referenced filter '%s' is missing", r)
			}
		}
		h.filters[def.Name] = &filter{def: def}
	}
	return nil
}

// FilterDiff implements virt.Hypervisor with the comparison the libvirt
// adapter uses (package filterdiff).
func (h *Hypervisor) FilterDiff(ctx context.Context, spec virt.FilterSpec) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "compare nwfilter"
	if err := h.begin(ctx, "FilterDiff", op, spec.Name); err != nil {
		return nil, err
	}
	want, err := domainxml.Filters(spec)
	if err != nil {
		return nil, opErr(op, spec.Name, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	got := map[string]*libvirtxml.NWFilter{}
	for _, w := range want {
		if f, ok := h.filters[w.Name]; ok {
			got[w.Name] = f.def
		}
	}
	return filterdiff.Diff(want, got), nil
}

// TamperFilter simulates someone editing the named filter outside legacyvm
// (virsh nwfilter-edit): edit changes the definition the host holds.
func (h *Hypervisor) TamperFilter(name string, edit func(*libvirtxml.NWFilter)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.filters[name]
	if !ok {
		return errf("tamper with nwfilter", name, virt.ErrNotFound, "no nwfilter with matching name '%s'", name)
	}
	edit(f.def)
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
	for _, r := range f.refs() {
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
	for _, r := range f.refs() {
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
