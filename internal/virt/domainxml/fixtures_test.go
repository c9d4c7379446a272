package domainxml

import (
	"net/netip"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Test fixtures. The licence data is fake: fakeKey matches the product-key
// format and must never show up in any output; only its last group and a
// fingerprint may be stored.
const (
	fakeKey       = "BCDFG-HJKMP-QRTVW-XY234-6789B"
	fakeLastGroup = "6789B"
	fakeFP        = "hmac-sha256:7d1f0c5a9e2b4d6f8a0c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f"

	domUUID   = "6f1c1d4e-8a43-4b8e-9a57-3c2f0e4d5a61"
	netUUID   = "0b8e7c52-3d1a-4f69-b2e4-7a9c1d3e5f70"
	filtUUID  = "c3a5e7f9-1b2d-4c6e-8f0a-2b4d6e8f0a1c"
	bridgeMAC = "52:54:00:4c:56:01"
	guestMAC  = "52:54:00:4c:56:11"
	guest2MAC = "52:54:00:4c:56:12"
)

var created = time.Date(2026, 11, 25, 13, 11, 52, 0, time.UTC)

func sampleMetadata() *virt.Metadata {
	return &virt.Metadata{
		Profile:  "acct",
		VM:       "acct",
		Instance: "acct-1",
		SpecHash: "sha256:1f0e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
		Image:    "/var/lib/libvirt/images/win7-sp1-x64-golden.qcow2",
		Volumes: []virt.VolumeRef{
			{Pool: "legacyvm", Name: "acct-1.qcow2", Role: "system"},
			{Pool: "legacyvm", Name: "acct-1-answer.iso", Role: "answer"},
		},
		Filters: []string{"lvm-acct-lab", "lvm-acct-lab-guard"},
		License: &virt.LicenseRef{
			Label: "acct", Edition: "professional", Channel: "retail",
			Fingerprint: fakeFP, LastGroup: fakeLastGroup, Seats: 1,
		},
		Policy: &virt.PolicyRef{
			Name: "daily", Baseline: "clean", Schedule: "@daily", Keep: 7,
			MaxAge: "30d", Memory: true, OnShutdown: "revert",
		},
		Created:     created,
		Provisioned: true,
	}
}

func networkMetadata() *virt.Metadata {
	return &virt.Metadata{Profile: "acct", Network: "acct-lab", SpecHash: "sha256:00aa", Created: created}
}

// baseDomain is a provisioned x64 golden-image VM on pc with KVM.
func baseDomain() virt.DomainSpec {
	return virt.DomainSpec{
		Name:         "acct-1",
		UUID:         domUUID,
		Title:        "acct-1 (profile acct)",
		Accel:        virt.AccelKVM,
		Arch:         "x86_64",
		Machine:      "pc",
		VCPUs:        2,
		MemoryBytes:  4 << 30,
		SMBIOSSerial: "LVM-6F1C1D4E",
		OEMStrings:   []string{"legacyvm:instance=acct-1", "legacyvm:profile=acct"},
		Hyperv:       true,
		Disks: []virt.DiskSpec{
			{Device: virt.DeviceDisk, Bus: "sata", Target: "sda", Path: "/var/lib/libvirt/images/legacyvm/acct-1.qcow2", Format: "qcow2", BootOrder: 1},
			{Device: virt.DeviceCDROM, Bus: "sata", Target: "sdb", Path: "/var/lib/libvirt/images/legacyvm/acct-1-answer.iso", Format: "raw"},
		},
		Interfaces: []virt.InterfaceSpec{{
			Network: "lvm-acct-lab",
			MAC:     guestMAC,
			Model:   "e1000",
			Filter:  "lvm-acct-lab",
			FilterParams: []virt.FilterParam{
				{Name: "IP", Value: "10.77.0.11"},
			},
			PortIsolated: true,
		}},
		SerialLog: "/var/log/libvirt/qemu/acct-1-serial.log",
		Metadata:  sampleMetadata(),
	}
}

func sampleNetwork() virt.NetworkSpec {
	return virt.NetworkSpec{
		Name:        "lvm-acct-lab",
		UUID:        netUUID,
		Bridge:      "lvm-acct-lab",
		MAC:         bridgeMAC,
		Subnet:      netip.MustParsePrefix("10.77.0.0/24"),
		HostAddress: netip.MustParseAddr("10.77.0.1"),
		DHCP:        true,
		DHCPStart:   netip.MustParseAddr("10.77.0.100"),
		DHCPEnd:     netip.MustParseAddr("10.77.0.199"),
		DHCPHosts: []virt.DHCPHost{
			{MAC: guestMAC, Name: "acct-1", IP: netip.MustParseAddr("10.77.0.11")},
			{MAC: guest2MAC, Name: "acct-2", IP: netip.MustParseAddr("10.77.0.12")},
		},
		Metadata: networkMetadata(),
	}
}

func sampleFilter() virt.FilterSpec {
	return virt.FilterSpec{
		Name:        "lvm-acct-lab",
		UUID:        filtUUID,
		BridgeMAC:   bridgeMAC,
		Subnet:      netip.MustParsePrefix("10.77.0.0/24"),
		HostAddress: netip.MustParseAddr("10.77.0.1"),
		DHCP:        true,
	}
}
