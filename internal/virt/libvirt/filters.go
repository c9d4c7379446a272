package libvirt

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml/filterdiff"
)

// ListFilters implements virt.Hypervisor; filters (libvirt's built-in ones
// included) are sorted by name.
func (h *Hypervisor) ListFilters(ctx context.Context) ([]virt.Filter, error) {
	const op = "list nwfilters"
	docs, err := h.filterDocs(ctx, op)
	if err != nil {
		return nil, err
	}
	out := make([]virt.Filter, 0, len(docs))
	for name, doc := range docs {
		f, err := domainxml.ParseFilter(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", op, name, err)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// filterDocs returns the XML of every nwfilter by name.
func (h *Hypervisor) filterDocs(ctx context.Context, op string) (map[string]string, error) {
	if err := alive(ctx, op, ""); err != nil {
		return nil, err
	}
	fs, err := h.conn.ListAllNWFilters(0)
	if err != nil {
		return nil, wrap(op, "", err)
	}
	defer func() {
		for i := range fs {
			fs[i].Free()
		}
	}()
	out := make(map[string]string, len(fs))
	for i := range fs {
		name, err := fs[i].GetName()
		if err != nil {
			return nil, wrap(op, "", err)
		}
		doc, err := fs[i].GetXMLDesc(0)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, wrap(op, name, err)
		}
		out[name] = doc
	}
	return out, nil
}

// DefineFilter implements virt.Hypervisor: the guard, then the root filter
// that references it (libvirt refuses a reference to a missing filter).
// libvirt re-instantiates the rules of running domains that use them.
func (h *Hypervisor) DefineFilter(ctx context.Context, spec virt.FilterSpec) error {
	const op = "define nwfilter"
	docs, err := domainxml.FiltersXML(spec)
	if err != nil {
		return invalid(op, spec.Name, err)
	}
	for _, doc := range docs {
		if err := alive(ctx, op, spec.Name); err != nil {
			return err
		}
		f, err := h.conn.NWFilterDefineXML(doc)
		if err != nil {
			return wrap(op, spec.Name, err)
		}
		f.Free()
	}
	return nil
}

// FilterDiff implements virt.Hypervisor with package filterdiff.
func (h *Hypervisor) FilterDiff(ctx context.Context, spec virt.FilterSpec) ([]string, error) {
	const op = "compare nwfilter"
	want, err := domainxml.Filters(spec)
	if err != nil {
		return nil, invalid(op, spec.Name, err)
	}
	got := map[string]*libvirtxml.NWFilter{}
	for _, w := range want {
		if err := alive(ctx, op, w.Name); err != nil {
			return nil, err
		}
		f, err := h.conn.LookupNWFilterByName(w.Name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, wrap(op, w.Name, err)
		}
		doc, err := f.GetXMLDesc(0)
		f.Free()
		if err != nil {
			return nil, wrap(op, w.Name, err)
		}
		var def libvirtxml.NWFilter
		if err := def.Unmarshal(doc); err != nil {
			return nil, fmt.Errorf("%s %q: parse: %w", op, w.Name, err)
		}
		got[w.Name] = &def
	}
	return filterdiff.Diff(want, got), nil
}

// DeleteFilter implements virt.Hypervisor. libvirt only refuses to undefine
// a filter bound to a running interface; this also refuses one that a
// defined domain's NIC reaches (directly or through other filters), so that
// a shut-off domain never loses a filter it needs to start.
func (h *Hypervisor) DeleteFilter(ctx context.Context, name string) error {
	const op = "delete nwfilter"
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	f, err := h.conn.LookupNWFilterByName(name)
	if err != nil {
		return wrap(op, name, err)
	}
	defer f.Free()
	users, err := h.filterUsers(ctx, op, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return failf(op, name, virt.ErrInUse, "nwfilter is referenced by domain %s", strings.Join(users, ", "))
	}
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	return wrap(op, name, f.Undefine())
}

// filterUsers returns the domains whose NICs (persistent or live) reach
// filter target.
func (h *Hypervisor) filterUsers(ctx context.Context, op, target string) ([]string, error) {
	docs, err := h.filterDocs(ctx, op)
	if err != nil {
		return nil, err
	}
	refs := map[string][]string{}
	for name, doc := range docs {
		f, err := domainxml.ParseFilter(doc)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", op, name, err)
		}
		refs[name] = f.Refs
	}
	var reaches func(from string, depth int) bool
	reaches = func(from string, depth int) bool {
		if from == target {
			return true
		}
		if depth > 32 {
			return false
		}
		for _, r := range refs[from] {
			if reaches(r, depth+1) {
				return true
			}
		}
		return false
	}

	if err := alive(ctx, op, target); err != nil {
		return nil, err
	}
	doms, err := h.conn.ListAllDomains(0)
	if err != nil {
		return nil, wrap(op, target, err)
	}
	defer func() {
		for i := range doms {
			doms[i].Free()
		}
	}()
	var users []string
	for i := range doms {
		name, err := doms[i].GetName()
		if err != nil {
			return nil, wrap(op, target, err)
		}
		for _, flags := range []libvirt.DomainXMLFlags{libvirt.DOMAIN_XML_INACTIVE, 0} {
			doc, err := doms[i].GetXMLDesc(flags)
			if err != nil {
				if isNotFound(err) {
					break
				}
				return nil, wrap(op, target, err)
			}
			d, err := domainxml.ParseDomain(doc)
			if err != nil {
				return nil, fmt.Errorf("%s %q: domain %s: %w", op, target, name, err)
			}
			if usesFilter(d, reaches) {
				users = append(users, name)
				break
			}
		}
	}
	sort.Strings(users)
	return users, nil
}

func usesFilter(d virt.Domain, reaches func(string, int) bool) bool {
	for _, nic := range d.Interfaces {
		if nic.Filter != "" && reaches(nic.Filter, 0) {
			return true
		}
	}
	return false
}

// FilterBindings implements virt.Hypervisor, sorted by tap device.
func (h *Hypervisor) FilterBindings(ctx context.Context) ([]virt.FilterBinding, error) {
	const op = "list nwfilter bindings"
	if err := alive(ctx, op, ""); err != nil {
		return nil, err
	}
	bs, err := h.conn.ListAllNWFilterBindings(0)
	if err != nil {
		return nil, wrap(op, "", err)
	}
	defer func() {
		for i := range bs {
			bs[i].Free()
		}
	}()
	out := make([]virt.FilterBinding, 0, len(bs))
	for i := range bs {
		doc, err := bs[i].GetXMLDesc(0)
		if isNotFound(err) {
			continue // the domain stopped meanwhile
		}
		if err != nil {
			return nil, wrap(op, "", err)
		}
		b, err := domainxml.ParseFilterBinding(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PortDev < out[j].PortDev })
	return out, nil
}
