package domainxml

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCase renders one or more documents; each lands in
// testdata/<name><suffix>.xml.
type goldenCase struct {
	name   string
	render func() (map[string]string, error) // suffix -> document
}

func one(s string, err error) (map[string]string, error) {
	return map[string]string{"": s}, err
}

func filterDocs(spec virt.FilterSpec) (map[string]string, error) {
	docs, err := FiltersXML(spec)
	if err != nil {
		return nil, err
	}
	if len(docs) != 2 {
		return nil, fmt.Errorf("got %d filters, want 2", len(docs))
	}
	return map[string]string{"-guard": docs[0], "-root": docs[1]}, nil
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{"domain-x64-pc-kvm", func() (map[string]string, error) { return one(DomainXML(baseDomain())) }},
		{"domain-x64-q35-kvm", func() (map[string]string, error) {
			s := baseDomain()
			s.Machine = "q35"
			return one(DomainXML(s))
		}},
		{"domain-x86-pc-kvm", func() (map[string]string, error) {
			s := baseDomain()
			s.Name, s.Title = "legacy32-1", "legacy32-1 (profile acct)"
			s.Machine = "pc-i440fx-7.2" // a pinned versioned type is kept
			s.MemoryBytes = 3 << 30
			s.Disks[0].Path = "/var/lib/libvirt/images/legacyvm/legacy32-1.qcow2"
			s.Disks[1].Path = "/var/lib/libvirt/images/legacyvm/legacy32-1-answer.iso"
			s.SerialLog = ""
			return one(DomainXML(s))
		}},
		{"domain-x64-pc-tcg", func() (map[string]string, error) {
			s := baseDomain()
			s.Accel = virt.AccelTCG // Hyperv stays true: the renderer drops it
			return one(DomainXML(s))
		}},
		{"domain-x64-pc-agent", func() (map[string]string, error) {
			s := baseDomain()
			s.GuestAgent = true
			return one(DomainXML(s))
		}},
		{"domain-install-q35", func() (map[string]string, error) {
			s := baseDomain()
			s.Machine = "q35"
			s.Disks = []virt.DiskSpec{
				{Device: virt.DeviceDisk, Target: "sda", Path: "/var/lib/libvirt/images/legacyvm/acct-1.qcow2", BootOrder: 1},
				{Device: virt.DeviceCDROM, Target: "sdb", Path: "/srv/iso/en_windows_7_professional_with_sp1_x64.iso", BootOrder: 2},
				{Device: virt.DeviceCDROM, Target: "sdc", Path: "/var/lib/libvirt/images/legacyvm/acct-1-answer.iso"},
			}
			s.Metadata.Image = "/srv/iso/en_windows_7_professional_with_sp1_x64.iso"
			s.Metadata.Provisioned = false
			s.Metadata.Policy = nil
			return one(DomainXML(s))
		}},
		{"network-dhcp-hosts", func() (map[string]string, error) { return one(NetworkXML(sampleNetwork())) }},
		{"network-l2", func() (map[string]string, error) {
			n := sampleNetwork()
			n.Name, n.Bridge, n.MAC = "lvm-l2", "lvm-l2", "52:54:00:4c:56:02"
			n.Subnet, n.HostAddress = netip.Prefix{}, netip.Addr{}
			n.DHCP, n.DHCPStart, n.DHCPEnd, n.DHCPHosts = false, netip.Addr{}, netip.Addr{}, nil
			n.Metadata.Network = "l2"
			return one(NetworkXML(n))
		}},
		{"network-dns-isolated", func() (map[string]string, error) {
			n := sampleNetwork()
			n.DNS = true
			n.PortIsolated = true
			n.DHCPStart, n.DHCPEnd = netip.Addr{}, netip.Addr{}
			return one(NetworkXML(n))
		}},
		{"filter-dhcp", func() (map[string]string, error) { return filterDocs(sampleFilter()) }},
		{"filter-dns", func() (map[string]string, error) {
			f := sampleFilter()
			f.DNS = true
			return filterDocs(f)
		}},
		{"filter-rdp-in", func() (map[string]string, error) {
			f := sampleFilter()
			f.Allows = []virt.AllowSpec{{Name: "rdp-from-host", Direction: "in", Peer: "host", Protocol: "tcp", PortStart: 3389}}
			return filterDocs(f)
		}},
		{"filter-icmp", func() (map[string]string, error) {
			f := sampleFilter()
			f.Allows = []virt.AllowSpec{{Name: "ping", Direction: "out", Peer: "host", Protocol: "icmp"}}
			return filterDocs(f)
		}},
		{"filter-any", func() (map[string]string, error) {
			f := sampleFilter()
			f.DHCP = false
			f.Allows = []virt.AllowSpec{{Name: "all-with-host", Direction: "out", Peer: "host", Protocol: "any"}}
			return filterDocs(f)
		}},
		{"filter-doors", func() (map[string]string, error) {
			f := sampleFilter()
			f.Doors = []virt.DoorSpec{
				{Name: "publish rdp of app", Kind: virt.DoorPublish, GuestIP: netip.MustParseAddr("10.77.0.10"), Port: 3389},
				{Name: "egress db of network acct-lab", Kind: virt.DoorEgress, Port: 11433},
				{Name: "egress lic of app", Kind: virt.DoorEgress, GuestIP: netip.MustParseAddr("10.77.0.10"), Port: 12700},
			}
			return filterDocs(f)
		}},
		{"filter-l2", func() (map[string]string, error) {
			f := sampleFilter()
			f.Name, f.BridgeMAC = "lvm-l2", "52:54:00:4c:56:02"
			f.Subnet, f.HostAddress, f.DHCP = netip.Prefix{}, netip.Addr{}, false
			return filterDocs(f)
		}},
		{"volume-overlay", func() (map[string]string, error) {
			return one(VolumeXML(virt.VolumeSpec{
				Pool: "legacyvm", Name: "acct-1.qcow2", CapacityBytes: 60 << 30, Format: "qcow2",
				BackingPath: "/var/lib/libvirt/images/win7-sp1-x64-golden.qcow2",
			}))
		}},
		{"volume-raw", func() (map[string]string, error) {
			return one(VolumeXML(virt.VolumeSpec{
				Pool: "legacyvm", Name: "acct-1-answer.iso", CapacityBytes: 360448, Format: "raw", Mode: 0o400,
			}))
		}},
		{"pool", func() (map[string]string, error) { return one(PoolXML("legacyvm", "/var/lib/libvirt/images/legacyvm")) }},
		{"snapshot-running", func() (map[string]string, error) {
			return one(SnapshotXML(virt.SnapshotSpec{
				Name:        "auto-daily-20261125T131152Z",
				Description: `{"policy":"daily","expires":"2026-12-25T13:11:52Z"}`,
				Memory:      true,
			}, true))
		}},
		{"snapshot-shutoff", func() (map[string]string, error) {
			return one(SnapshotXML(virt.SnapshotSpec{Name: "clean", Description: `{"policy":"daily","baseline":true}`}, false))
		}},
		{"metadata", func() (map[string]string, error) { return one(MetadataXML(sampleMetadata())) }},
	}
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			docs, err := c.render()
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			for suffix, doc := range docs {
				path := filepath.Join("testdata", c.name+suffix+".xml")
				got := []byte(doc + "\n")
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the rendering (go test -update rewrites it):\n%s", path, lineDiff(string(want), string(got)))
				}
			}
		})
	}
}

// lineDiff shows the first differing lines of two documents.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
			if shown++; shown == 5 {
				b.WriteString("  ...\n")
				break
			}
		}
	}
	return b.String()
}

// schemaFor maps a testdata file name to the virt-xml-validate schema.
func schemaFor(name string) string {
	for prefix, schema := range map[string]string{
		"domain-":        "domain",
		"network-":       "network",
		"filter-":        "nwfilter",
		"nwfilter-":      "nwfilter",
		"filterbinding-": "nwfilterbinding",
		"volume-":        "storagevol",
		"pool":           "storagepool",
		"snapshot-":      "domainsnapshot",
	} {
		if strings.HasPrefix(name, prefix) {
			return schema
		}
	}
	return ""
}

// TestSchema validates every golden file and every libvirt-shaped sample in
// testdata/live with virt-xml-validate (package libvirt-clients). Without
// the tool the test fails under CI=true and is skipped otherwise.
func TestSchema(t *testing.T) {
	tool, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("virt-xml-validate not found (install libvirt-clients); CI=true requires schema validation")
		}
		t.Skip("virt-xml-validate not found (install libvirt-clients); skipping schema validation")
	}
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil {
		t.Fatal(err)
	}
	live, _ := filepath.Glob("testdata/live/*.xml")
	files = append(files, live...)
	validated := 0
	for _, f := range files {
		schema := schemaFor(filepath.Base(f))
		if schema == "" {
			continue // metadata.xml is checked inside the domain documents
		}
		validated++
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(tool, f, schema).CombinedOutput()
			if err != nil {
				t.Errorf("virt-xml-validate %s %s: %v\n%s", f, schema, err, out)
			}
		})
	}
	if validated < 20 {
		t.Errorf("validated %d files, want at least 20 (golden files missing?)", validated)
	}
}
