package filterdiff

import (
	"os"
	"slices"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// The fixtures are one guard filter as libvirtxml renders it and as
// libvirt 9.0 returns it after nwfilter-define (other quoting, attribute
// layout and self-closing elements).
func fixtures(t *testing.T) (want []*libvirtxml.NWFilter, host string) {
	t.Helper()
	r, err := os.ReadFile("testdata/rendered-guard.xml")
	if err != nil {
		t.Fatal(err)
	}
	h, err := os.ReadFile("testdata/libvirt-guard.xml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(string(r))
	if err != nil {
		t.Fatal(err)
	}
	return []*libvirtxml.NWFilter{m["exp-net-guard"]}, string(h)
}

func TestDiff(t *testing.T) {
	want, host := fixtures(t)
	tests := []struct {
		name string
		edit func(string) string
		diff []string
	}{
		{"same rules, libvirt's formatting", func(s string) string { return s }, nil},
		{"other uuid", func(s string) string { return strings.Replace(s, "37fe9a17", "00000000", 1) }, nil},
		{"rule changed", func(s string) string { return strings.Replace(s, "dstportstart='3389'", "dstportstart='3390'", 1) },
			[]string{"filter exp-net-guard: rule 4 differs"}},
		{"priority changed", func(s string) string { return strings.Replace(s, "priority='-705'", "priority='-600'", 1) },
			[]string{"filter exp-net-guard: priority -600 differs from -705"}},
		{"chain changed", func(s string) string { return strings.Replace(s, "chain='ipv4-lvguard'", "chain='ipv4'", 1) },
			[]string{"filter exp-net-guard: chain ipv4 differs from ipv4-lvguard"}},
		{"rule added", func(s string) string {
			return strings.Replace(s, "</filter>", "<rule action='accept' direction='out' priority='1'><all/></rule></filter>", 1)
		}, []string{"filter exp-net-guard: 12 entries, want 11"}},
		{"missing", func(string) string { return "<filter name='other'/>" }, []string{"filter exp-net-guard is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.edit(host))
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(want, got); !slices.Equal(d, tt.diff) {
				t.Errorf("Diff = %q, want %q", d, tt.diff)
			}
		})
	}
}
