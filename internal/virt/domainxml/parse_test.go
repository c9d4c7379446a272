package domainxml

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

func readLive(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "live", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestParseDomainLive parses the QEMU driver's live XML of a running TCG
// domain: added controllers, aliases, addresses, a backing chain, a pinned
// machine, an allocated VNC port, an upper-case MAC and foreign metadata.
func TestParseDomainLive(t *testing.T) {
	doc := readLive(t, "domain-qemu-running.xml")
	got, err := ParseDomain(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := virt.Domain{
		Name:        "acct-2",
		UUID:        "9a2b7c4d-1e3f-4a5b-8c6d-7e8f9a0b1c2d",
		Accel:       virt.AccelTCG,
		Machine:     "pc-i440fx-7.2",
		VCPUs:       2,
		MemoryBytes: 2 << 30,
		Disks: []virt.DiskSpec{
			{Device: virt.DeviceDisk, Bus: "sata", Target: "sda", Path: "/var/lib/libvirt/images/legacyvm/acct-2.qcow2", Format: "qcow2", BootOrder: 1},
			{Device: virt.DeviceCDROM, Bus: "sata", Target: "sdb"},
		},
		Interfaces: []virt.InterfaceSpec{{
			Network: "lvm-acct-lab", MAC: "52:54:00:4c:56:12", Model: "e1000", Filter: "lvm-acct-lab",
			FilterParams: []virt.FilterParam{{Name: "IP", Value: "10.77.0.12"}}, PortIsolated: true,
		}},
		VNC: "127.0.0.1:5901",
		Metadata: &virt.Metadata{
			Profile: "acct", VM: "acct", Instance: "acct-2", SpecHash: "sha256:77",
			Volumes:     []virt.VolumeRef{{Pool: "legacyvm", Name: "acct-2.qcow2", Role: "system"}},
			License:     &virt.LicenseRef{Label: "acct", Channel: "retail", Fingerprint: "hmac-sha256:00ff", LastGroup: "6789B"},
			Created:     time.Date(2026, 11, 25, 13, 11, 52, 0, time.UTC),
			Provisioned: true,
		},
		XML: doc,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDomain:\n got  %+v\n want %+v", got, want)
	}
}

// TestParseDomainTestDriver parses libvirt's own formatting of
// domain-install-q35.xml (test driver): the facts survive libvirt.
func TestParseDomainTestDriver(t *testing.T) {
	doc := readLive(t, "domain-test-driver.xml")
	got, err := ParseDomain(doc)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := os.ReadFile(filepath.Join("testdata", "domain-install-q35.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseDomain(string(rendered))
	if err != nil {
		t.Fatal(err)
	}
	got.XML, want.XML = "", ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("libvirt's formatting changed the facts:\n got  %+v\n want %+v", got, want)
	}
	if got.Metadata == nil || got.Metadata.Instance != "acct-1" {
		t.Errorf("metadata lost: %+v", got.Metadata)
	}
}

func TestParseNetworkLive(t *testing.T) {
	doc := readLive(t, "network-test-driver.xml")
	got, err := ParseNetwork(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := virt.Network{
		Name: "lvm-acct-lab", UUID: netUUID, Bridge: "lvm-acct-lab", MAC: bridgeMAC,
		Subnet: netip.MustParsePrefix("10.77.0.0/24"), HostAddress: netip.MustParseAddr("10.77.0.1"),
		DHCP: true, DNS: true, PortIsolated: true, Metadata: networkMetadata(), XML: doc,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseNetwork:\n got  %+v\n want %+v", got, want)
	}
}

// TestParseNetworkForeign covers networks legacyvm did not make: NAT
// forwarding, netmask notation, IPv6, no metadata.
func TestParseNetworkForeign(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want virt.Network
	}{
		{"default nat", `<network connections='2'>
  <name>default</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:0A:0B:0C'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
  </ip>
</network>`, virt.Network{
			Name: "default", UUID: "11111111-2222-3333-4444-555555555555", Bridge: "virbr0", MAC: "52:54:00:0a:0b:0c",
			ForwardMode: "nat", Subnet: netip.MustParsePrefix("192.168.122.0/24"), HostAddress: netip.MustParseAddr("192.168.122.1"),
			DHCP: true, DNS: true,
		}},
		{"bare forward, ipv6", `<network ipv6='yes'>
  <name>v6</name>
  <forward/>
  <ip family='ipv6' address='fd00::1' prefix='64'/>
  <ip address='10.1.0.1' prefix='16'/>
  <dns enable='no'/>
</network>`, virt.Network{
			Name: "v6", ForwardMode: "nat", IPv6: true,
			Subnet: netip.MustParsePrefix("10.1.0.0/16"), HostAddress: netip.MustParseAddr("10.1.0.1"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetwork(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.XML = tt.doc
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseVolumeLive(t *testing.T) {
	got, err := ParseVolume(readLive(t, "volume-test-driver.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := virt.Volume{
		Name: "acct-1.qcow2", Path: "/default-pool/acct-1.qcow2", Format: "qcow2",
		CapacityBytes: 60 << 30, AllocationBytes: 60 << 30,
		BackingPath: "/var/lib/libvirt/images/win7-sp1-x64-golden.qcow2", Mode: 0o600,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// Units other than bytes, as older libvirt or other tools write them.
	got, err = ParseVolume(`<volume><name>x</name><capacity unit='G'>2</capacity><allocation unit='KiB'>4</allocation><target><path>/p/x</path><format type='raw'/></target></volume>`)
	if err != nil {
		t.Fatal(err)
	}
	if got.CapacityBytes != 2<<30 || got.AllocationBytes != 4096 || got.Format != "raw" {
		t.Errorf("units: %+v", got)
	}
	// Read-only volumes (registered images) report their mode; a mode that
	// is not octal is an error, not a silent 0.
	got, err = ParseVolume(`<volume><name>x</name><capacity>1</capacity><target><path>/p/x</path><permissions><mode>0444</mode></permissions></target></volume>`)
	if err != nil || got.Mode != 0o444 {
		t.Errorf("mode 0444: %+v, %v", got, err)
	}
	if _, err := ParseVolume(`<volume><name>x</name><capacity>1</capacity><target><permissions><mode>rw</mode></permissions></target></volume>`); err == nil {
		t.Error("mode rw: no error")
	}
}

func TestParseSnapshotLive(t *testing.T) {
	got, err := ParseSnapshot(readLive(t, "snapshot-test-driver.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "second" || got.Description != "manual" || got.Parent != "auto-daily-20261125T131152Z" ||
		got.State != virt.StateRunning || !got.Memory || got.Current {
		t.Errorf("got %+v", got)
	}
	if got.Created.IsZero() || got.Created.Location() != time.UTC {
		t.Errorf("created = %v", got.Created)
	}
	tests := []struct {
		doc    string
		state  virt.DomainState
		memory bool
		err    bool
	}{
		{`<domainsnapshot><name>a</name><state>shutoff</state><creationTime>1700000000</creationTime><memory snapshot='no'/></domainsnapshot>`, virt.StateShutoff, false, false},
		{`<domainsnapshot><name>a</name><state>paused</state><memory snapshot='internal'/></domainsnapshot>`, virt.StatePaused, true, false},
		{`<domainsnapshot><name>a</name><state>disk-snapshot</state><memory snapshot='no'/></domainsnapshot>`, virt.StateOther, false, false},
		{`<domainsnapshot><name>a</name><state>running</state></domainsnapshot>`, virt.StateRunning, true, false},
		{`<domainsnapshot><name>a</name><creationTime>soon</creationTime></domainsnapshot>`, "", false, true},
	}
	for _, tt := range tests {
		got, err := ParseSnapshot(tt.doc)
		if (err != nil) != tt.err {
			t.Errorf("%s: err = %v", tt.doc, err)
			continue
		}
		if err == nil && (got.State != tt.state || got.Memory != tt.memory) {
			t.Errorf("%s: state %q memory %v", tt.doc, got.State, got.Memory)
		}
	}
}

func TestParseFilterLive(t *testing.T) {
	ct, err := ParseFilter(readLive(t, "nwfilter-clean-traffic.xml"))
	if err != nil {
		t.Fatal(err)
	}
	wantRefs := []string{"no-mac-spoofing", "no-ip-spoofing", "allow-incoming-ipv4", "no-arp-spoofing", "no-other-l2-traffic", "qemu-announce-self"}
	if ct.Name != "clean-traffic" || ct.Chain != "root" || !reflect.DeepEqual(ct.Refs, wantRefs) {
		t.Errorf("clean-traffic = %+v", ct)
	}
	g, err := ParseFilter(readLive(t, "nwfilter-guard-dumped.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "lvm-acct-lab-guard" || g.Chain != "ipv4-lvguard" || len(g.Refs) != 0 {
		t.Errorf("guard = %+v", g)
	}
	if _, err := ParseFilter("<filter"); err == nil {
		t.Error("malformed filter parsed")
	}
}

func TestParseFilterBindingLive(t *testing.T) {
	got, err := ParseFilterBinding(readLive(t, "filterbinding-vnet3.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := virt.FilterBinding{
		PortDev: "vnet3", MAC: "52:54:00:4c:56:12", Owner: "acct-2", Filter: "lvm-acct-lab",
		Params: []virt.FilterParam{{Name: "IP", Value: "10.77.0.12"}, {Name: "MAC", Value: "52:54:00:4c:56:12"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if _, err := ParseFilterBinding("<filterbinding/>"); err == nil {
		t.Error("a binding without a port device parsed")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for name, parse := range map[string]func(string) error{
		"domain":   func(s string) error { _, err := ParseDomain(s); return err },
		"network":  func(s string) error { _, err := ParseNetwork(s); return err },
		"volume":   func(s string) error { _, err := ParseVolume(s); return err },
		"snapshot": func(s string) error { _, err := ParseSnapshot(s); return err },
	} {
		if err := parse("<unclosed"); err == nil {
			t.Errorf("%s: malformed XML parsed", name)
		}
	}
	if _, err := ParseDomain(`<domain><name>x</name><memory unit='parsec'>1</memory></domain>`); err == nil {
		t.Error("unknown memory unit accepted")
	}
	if _, err := ParseNetwork(`<network><name>x</name><ip address='10.0.0.1' netmask='255.0.255.0'/></network>`); err == nil {
		t.Error("non-contiguous netmask accepted")
	}
}
