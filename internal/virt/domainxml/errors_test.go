package domainxml

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Each invalid spec must be refused with an error that names the object
// and says what is wrong.

func TestDomainErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*virt.DomainSpec)
		want   string
	}{
		{"no name", func(s *virt.DomainSpec) { s.Name = "" }, "name is empty"},
		{"slash in name", func(s *virt.DomainSpec) { s.Name = "a/b" }, "no slash"},
		{"bad uuid", func(s *virt.DomainSpec) { s.UUID = "not-a-uuid" }, "not a canonical UUID"},
		{"braced uuid", func(s *virt.DomainSpec) { s.UUID = "{" + domUUID + "}" }, "not a canonical UUID"},
		{"no metadata", func(s *virt.DomainSpec) { s.Metadata = nil }, "metadata: missing"},
		{"metadata without profile", func(s *virt.DomainSpec) { s.Metadata.Profile = "" }, "profile is empty"},
		{"unknown accel", func(s *virt.DomainSpec) { s.Accel = "xen" }, `accelerator "xen"`},
		{"arm", func(s *virt.DomainSpec) { s.Arch = "aarch64" }, `arch "aarch64"`},
		{"no machine", func(s *virt.DomainSpec) { s.Machine = "" }, "machine is empty"},
		{"odd machine", func(s *virt.DomainSpec) { s.Machine = "virt" }, `machine "virt"`},
		{"no vcpu", func(s *virt.DomainSpec) { s.VCPUs = 0 }, "vcpus 0"},
		{"no memory", func(s *virt.DomainSpec) { s.MemoryBytes = 0 }, "memory 0 bytes"},
		{"memory not KiB", func(s *virt.DomainSpec) { s.MemoryBytes = 1000 }, "multiple of 1024"},
		{"two-line title", func(s *virt.DomainSpec) { s.Title = "a\nb" }, "single line"},
		{"ide on q35", func(s *virt.DomainSpec) { s.Machine = "pc-q35-7.2"; s.Disks[1].Bus = "ide" }, "no IDE bus"},
		{"virtio disk", func(s *virt.DomainSpec) { s.Disks[0].Bus = "virtio" }, `bus "virtio"`},
		{"raw system disk", func(s *virt.DomainSpec) { s.Disks[0].Format = "raw" }, "internal snapshots need it"},
		{"disk without path", func(s *virt.DomainSpec) { s.Disks[0].Path = "" }, "needs a path"},
		{"relative path", func(s *virt.DomainSpec) { s.Disks[0].Path = "a.qcow2" }, "not absolute"},
		{"no target", func(s *virt.DomainSpec) { s.Disks[0].Target = "" }, "no target"},
		{"same target", func(s *virt.DomainSpec) { s.Disks[1].Target = "sda" }, "target used twice"},
		{"same boot order", func(s *virt.DomainSpec) { s.Disks[1].BootOrder = 1 }, "already used by sda"},
		{"floppy", func(s *virt.DomainSpec) { s.Disks[1].Device = "floppy" }, `device "floppy"`},
		{"bad MAC", func(s *virt.DomainSpec) { s.Interfaces[0].MAC = "52:54:00" }, "not a colon-separated 6-byte MAC"},
		{"multicast MAC", func(s *virt.DomainSpec) { s.Interfaces[0].MAC = "01:00:5e:00:00:01" }, "multicast"},
		{"same MAC twice", func(s *virt.DomainSpec) {
			s.Interfaces = append(s.Interfaces, virt.InterfaceSpec{Network: "n", MAC: strings.ToUpper(guestMAC)})
		}, "used twice"},
		{"no network", func(s *virt.DomainSpec) { s.Interfaces[0].Network = "" }, "network name is empty"},
		{"params without filter", func(s *virt.DomainSpec) { s.Interfaces[0].Filter = "" }, "without a filter"},
		{"unnamed param", func(s *virt.DomainSpec) { s.Interfaces[0].FilterParams[0].Name = "" }, "without a name"},
		{"relative serial log", func(s *virt.DomainSpec) { s.SerialLog = "serial.log" }, "absolute path"},
		{"licence without label", func(s *virt.DomainSpec) { s.Metadata.License.Label = "" }, "without a label"},
		{"long last group", func(s *virt.DomainSpec) { s.Metadata.License.LastGroup = "ABCDEF" }, "at most 5"},
		{"volume ref without pool", func(s *virt.DomainSpec) { s.Metadata.Volumes[0].Pool = "" }, "pool and name are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseDomain()
			tt.modify(&s)
			d, err := Domain(s)
			if err == nil {
				t.Fatalf("accepted, rendered %+v", d)
			}
			if d != nil {
				t.Error("a partial domain came back with the error")
			}
			if !strings.HasPrefix(err.Error(), `domain "`+s.Name+`": `) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want the domain named and %q", err, tt.want)
			}
		})
	}
}

func TestNetworkErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*virt.NetworkSpec)
		want   string
	}{
		{"no name", func(s *virt.NetworkSpec) { s.Name = "" }, "name is empty"},
		{"bad uuid", func(s *virt.NetworkSpec) { s.UUID = "x" }, "not a canonical UUID"},
		{"long bridge", func(s *virt.NetworkSpec) { s.Bridge = "legacyvm-bridge-01" }, "1 to 15 characters"},
		{"no bridge", func(s *virt.NetworkSpec) { s.Bridge = "" }, "1 to 15 characters"},
		{"no MAC", func(s *virt.NetworkSpec) { s.MAC = "" }, "bridge MAC"},
		{"multicast bridge MAC", func(s *virt.NetworkSpec) { s.MAC = "ff:ff:ff:ff:ff:ff" }, "multicast"},
		{"no metadata", func(s *virt.NetworkSpec) { s.Metadata = nil }, "metadata: missing"},
		{"ipv6", func(s *virt.NetworkSpec) {
			s.Subnet, s.HostAddress = netip.MustParsePrefix("fd00::/64"), netip.MustParseAddr("fd00::1")
		}, "only IPv4"},
		{"host bits in subnet", func(s *virt.NetworkSpec) { s.Subnet = netip.MustParsePrefix("10.77.0.1/24") }, "host bits"},
		{"host outside subnet", func(s *virt.NetworkSpec) { s.HostAddress = netip.MustParseAddr("10.78.0.1") }, "outside subnet"},
		{"host is network address", func(s *virt.NetworkSpec) { s.HostAddress = netip.MustParseAddr("10.77.0.0") }, "network or broadcast"},
		{"host without subnet", func(s *virt.NetworkSpec) { s.Subnet = netip.Prefix{} }, "without a subnet"},
		{"dhcp without host", func(s *virt.NetworkSpec) { s.HostAddress = netip.Addr{} }, "DHCP needs a host address"},
		{"dns without host", func(s *virt.NetworkSpec) {
			s.HostAddress, s.DHCP, s.DHCPStart, s.DHCPEnd, s.DHCPHosts, s.DNS = netip.Addr{}, false, netip.Addr{}, netip.Addr{}, nil, true
		}, "DNS needs a host address"},
		{"range without dhcp", func(s *virt.NetworkSpec) { s.DHCP = false }, "DHCP is off"},
		{"half a range", func(s *virt.NetworkSpec) { s.DHCPEnd = netip.Addr{} }, "both a start and an end"},
		{"reversed range", func(s *virt.NetworkSpec) { s.DHCPStart, s.DHCPEnd = s.DHCPEnd, s.DHCPStart }, "ends before it starts"},
		{"range outside", func(s *virt.NetworkSpec) { s.DHCPEnd = netip.MustParseAddr("10.77.1.10") }, "outside subnet"},
		{"range over host", func(s *virt.NetworkSpec) { s.DHCPStart = netip.MustParseAddr("10.77.0.1") }, "contains the host address"},
		{"dhcp with nothing to lease", func(s *virt.NetworkSpec) {
			s.DHCPStart, s.DHCPEnd, s.DHCPHosts = netip.Addr{}, netip.Addr{}, nil
		}, "a range or at least one host"},
		{"reservation outside", func(s *virt.NetworkSpec) { s.DHCPHosts[0].IP = netip.MustParseAddr("10.9.9.9") }, "outside subnet"},
		{"reservation of the host address", func(s *virt.NetworkSpec) { s.DHCPHosts[0].IP = s.HostAddress }, "is the host address"},
		{"reservation twice", func(s *virt.NetworkSpec) { s.DHCPHosts[1].IP = s.DHCPHosts[0].IP }, "reserved twice"},
		{"reservation bad name", func(s *virt.NetworkSpec) { s.DHCPHosts[0].Name = "acct_1" }, "not a valid host name"},
		{"reservation bad MAC", func(s *virt.NetworkSpec) { s.DHCPHosts[0].MAC = "nope" }, "not a colon-separated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sampleNetwork()
			tt.modify(&s)
			n, err := Network(s)
			if err == nil {
				t.Fatalf("accepted, rendered %+v", n)
			}
			if !strings.HasPrefix(err.Error(), `network "`+s.Name+`": `) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want the network named and %q", err, tt.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	allow := func(a virt.AllowSpec) func(*virt.FilterSpec) {
		return func(s *virt.FilterSpec) { s.Allows = append(s.Allows, a) }
	}
	tests := []struct {
		name   string
		modify func(*virt.FilterSpec)
		want   string
	}{
		{"bad name", func(s *virt.FilterSpec) { s.Name = "1 filter" }, "must start with a letter"},
		{"built-in name", func(s *virt.FilterSpec) { s.Name = "clean-traffic" }, "built-in"},
		{"bad uuid", func(s *virt.FilterSpec) { s.UUID = "" }, "not a canonical UUID"},
		{"no bridge MAC", func(s *virt.FilterSpec) { s.BridgeMAC = "" }, "bridge MAC"},
		{"broadcast bridge MAC", func(s *virt.FilterSpec) { s.BridgeMAC = "ff:ff:ff:ff:ff:ff" }, "multicast"},
		{"host outside subnet", func(s *virt.FilterSpec) { s.HostAddress = netip.MustParseAddr("10.1.1.1") }, "outside subnet"},
		{"dhcp without host", func(s *virt.FilterSpec) { s.HostAddress = netip.Addr{} }, "DHCP needs the host address"},
		{"dns without host", func(s *virt.FilterSpec) { s.HostAddress, s.DHCP, s.DNS = netip.Addr{}, false, true }, "DNS needs the host address"},
		{"peer guest", allow(virt.AllowSpec{Name: "a", Direction: "in", Peer: "guest", Protocol: "tcp", PortStart: 1}), `peer "guest"`},
		{"allow without host", func(s *virt.FilterSpec) {
			s.HostAddress, s.DHCP = netip.Addr{}, false
			s.Allows = []virt.AllowSpec{{Name: "a", Direction: "in", Peer: "host", Protocol: "icmp"}}
		}, "no host address"},
		{"bad direction", allow(virt.AllowSpec{Name: "a", Direction: "both", Peer: "host", Protocol: "tcp", PortStart: 1}), `direction "both"`},
		{"bad protocol", allow(virt.AllowSpec{Name: "a", Direction: "in", Peer: "host", Protocol: "sctp", PortStart: 1}), `protocol "sctp"`},
		{"icmp with port", allow(virt.AllowSpec{Name: "a", Direction: "in", Peer: "host", Protocol: "icmp", PortStart: 8}), "takes no ports"},
		{"reversed ports", allow(virt.AllowSpec{Name: "a", Direction: "in", Peer: "host", Protocol: "tcp", PortStart: 90, PortEnd: 80}), "ends before it starts"},
		{"end without start", allow(virt.AllowSpec{Name: "a", Direction: "in", Peer: "host", Protocol: "udp", PortEnd: 80}), "without a start"},
		{"same allow twice", func(s *virt.FilterSpec) {
			a := virt.AllowSpec{Name: "a", Direction: "in", Peer: "host", Protocol: "icmp"}
			s.Allows = []virt.AllowSpec{a, a}
		}, "given twice"},
		{"too many allows", func(s *virt.FilterSpec) {
			for i := range 200 {
				s.Allows = append(s.Allows, virt.AllowSpec{Direction: "in", Peer: "host", Protocol: "tcp", PortStart: uint16(1000 + i)})
			}
		}, "too many allow rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sampleFilter()
			tt.modify(&s)
			fs, err := Filters(s)
			if err == nil {
				t.Fatalf("accepted, rendered %d filters", len(fs))
			}
			if !strings.HasPrefix(err.Error(), `filter "`+s.Name+`": `) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want the filter named and %q", err, tt.want)
			}
		})
	}
}

func TestStorageAndSnapshotErrors(t *testing.T) {
	vol := func(f func(*virt.VolumeSpec)) func() error {
		return func() error {
			s := virt.VolumeSpec{Pool: "p", Name: "v.qcow2", CapacityBytes: 1 << 30, Format: "qcow2", BackingPath: "/img/g.qcow2"}
			f(&s)
			_, err := VolumeXML(s)
			return err
		}
	}
	tests := []struct {
		name string
		try  func() error
		want string
	}{
		{"volume without name", vol(func(s *virt.VolumeSpec) { s.Name = "" }), "name is empty"},
		{"volume name with slash", vol(func(s *virt.VolumeSpec) { s.Name = "../x" }), "no slash"},
		{"zero capacity", vol(func(s *virt.VolumeSpec) { s.CapacityBytes = 0 }), `volume "v.qcow2": capacity is zero`},
		{"vmdk", vol(func(s *virt.VolumeSpec) { s.Format = "vmdk" }), `format "vmdk"`},
		{"raw overlay", vol(func(s *virt.VolumeSpec) { s.Format = "raw" }), "cannot have a backing file"},
		{"relative backing", vol(func(s *virt.VolumeSpec) { s.BackingPath = "g.qcow2" }), "not absolute"},
		{"backing format alone", vol(func(s *virt.VolumeSpec) { s.BackingPath, s.BackingFormat = "", "qcow2" }), "without a backing path"},
		{"odd backing format", vol(func(s *virt.VolumeSpec) { s.BackingFormat = "vdi" }), `backing format "vdi"`},
		{"mode", vol(func(s *virt.VolumeSpec) { s.Mode = 0o17777 }), "not a file mode"},
		{"pool relative path", func() error { _, err := PoolXML("p", "images"); return err }, `pool "p": path "images"`},
		{"pool without name", func() error { _, err := PoolXML("", "/images"); return err }, "name is empty"},
		{"snapshot without name", func() error { _, err := SnapshotXML(virt.SnapshotSpec{}, false); return err }, "snapshot name is empty"},
		{"snapshot name with slash", func() error { _, err := SnapshotXML(virt.SnapshotSpec{Name: "a/b"}, false); return err }, "no slash"},
		{"metadata nil", func() error { _, err := MetadataXML(nil); return err }, "metadata: missing"},
		{"policy without name", func() error {
			_, err := MetadataXML(&virt.Metadata{Profile: "p", Policy: &virt.PolicyRef{}})
			return err
		}, "policy without a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.try()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
