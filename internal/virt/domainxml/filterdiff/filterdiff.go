// Package filterdiff compares nwfilter definitions the way legacyvm's plan
// and verify need it: what a host holds against what a FilterSpec renders
// to (package domainxml), rule by rule, ignoring formatting, attribute
// order and UUIDs. It is pure Go (no cgo) so that both the libvirt adapter
// and the in-memory fake use the same comparison.
package filterdiff

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// Diff describes each difference between the filters want (as rendered)
// and got (the host's filters by name; a missing name is a missing
// filter) in a short phrase, in want's order:
//
//	filter lvm-lab-guard is missing
//	filter lvm-lab-guard: chain ipv4-lvguard differs from root
//	filter lvm-lab-guard: priority -705 differs from 0
//	filter lvm-lab-guard: rule 3 differs
//	filter lvm-lab-guard: 11 entries, want 12
//
// An empty result means the host enforces exactly what want describes.
// UUIDs are not compared.
func Diff(want []*libvirtxml.NWFilter, got map[string]*libvirtxml.NWFilter) []string {
	var out []string
	for _, w := range want {
		g := got[w.Name]
		if g == nil {
			out = append(out, fmt.Sprintf("filter %s is missing", w.Name))
			continue
		}
		if chain(g) != chain(w) {
			out = append(out, fmt.Sprintf("filter %s: chain %s differs from %s", w.Name, chain(g), chain(w)))
		}
		if g.Priority != w.Priority {
			out = append(out, fmt.Sprintf("filter %s: priority %d differs from %d", w.Name, g.Priority, w.Priority))
		}
		n := min(len(w.Entries), len(g.Entries))
		for i := range n {
			if !sameEntry(w.Entries[i], g.Entries[i]) {
				out = append(out, fmt.Sprintf("filter %s: %s %d differs", w.Name, kind(w.Entries[i]), i+1))
			}
		}
		if len(g.Entries) != len(w.Entries) {
			out = append(out, fmt.Sprintf("filter %s: %d entries, want %d", w.Name, len(g.Entries), len(w.Entries)))
		}
	}
	return out
}

// chain is the filter's chain; libvirt's default is root.
func chain(f *libvirtxml.NWFilter) string {
	if f.Chain == "" {
		return "root"
	}
	return f.Chain
}

func kind(e libvirtxml.NWFilterEntry) string {
	if e.Ref != nil {
		return "filter reference"
	}
	return "rule"
}

// sameEntry compares two entries by their canonical XML: both are marshalled
// by libvirtxml, so quoting, attribute order and empty elements no longer
// matter.
func sameEntry(a, b libvirtxml.NWFilterEntry) bool {
	x, errA := canonical(a)
	y, errB := canonical(b)
	return errA == nil && errB == nil && x == y
}

func canonical(e libvirtxml.NWFilterEntry) (string, error) {
	f := libvirtxml.NWFilter{Name: "x", Entries: []libvirtxml.NWFilterEntry{e}}
	return f.Marshal()
}

// Parse reads filter XML documents (as libvirt returns them) into the map
// Diff takes.
func Parse(docs ...string) (map[string]*libvirtxml.NWFilter, error) {
	out := make(map[string]*libvirtxml.NWFilter, len(docs))
	for _, d := range docs {
		var f libvirtxml.NWFilter
		if err := f.Unmarshal(d); err != nil {
			return nil, fmt.Errorf("parse nwfilter: %w", err)
		}
		out[f.Name] = &f
	}
	return out, nil
}
