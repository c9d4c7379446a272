package domainxml

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

func TestDomainRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*virt.DomainSpec)
	}{
		{"x64 pc kvm", func(*virt.DomainSpec) {}},
		{"q35", func(s *virt.DomainSpec) { s.Machine = "q35" }},
		{"pinned machine", func(s *virt.DomainSpec) { s.Machine = "pc-q35-7.2" }},
		{"tcg", func(s *virt.DomainSpec) { s.Accel = virt.AccelTCG }},
		{"ide on pc, empty cdrom", func(s *virt.DomainSpec) {
			s.Disks = []virt.DiskSpec{
				{Device: virt.DeviceDisk, Bus: "ide", Target: "hda", Path: "/img/a.qcow2", Format: "qcow2", BootOrder: 1},
				{Device: virt.DeviceCDROM, Bus: "ide", Target: "hdc", Format: "raw"},
			}
		}},
		{"two nics, no filter", func(s *virt.DomainSpec) {
			s.Interfaces = append(s.Interfaces, virt.InterfaceSpec{Network: "other", MAC: guest2MAC, Model: "e1000"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := baseDomain()
			tt.modify(&spec)
			doc, err := DomainXML(spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseDomain(doc)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != spec.Name || got.UUID != spec.UUID || got.Accel != spec.Accel ||
				got.Machine != spec.Machine || got.VCPUs != spec.VCPUs || got.MemoryBytes != spec.MemoryBytes {
				t.Errorf("identity: got %s %s %s %s %d vcpus %d bytes", got.Name, got.UUID, got.Accel, got.Machine, got.VCPUs, got.MemoryBytes)
			}
			if !reflect.DeepEqual(got.Disks, spec.Disks) {
				t.Errorf("disks:\n got  %+v\n want %+v", got.Disks, spec.Disks)
			}
			if !reflect.DeepEqual(got.Interfaces, spec.Interfaces) {
				t.Errorf("interfaces:\n got  %+v\n want %+v", got.Interfaces, spec.Interfaces)
			}
			if !reflect.DeepEqual(got.Metadata, spec.Metadata) {
				t.Errorf("metadata:\n got  %+v\n want %+v", got.Metadata, spec.Metadata)
			}
			if got.VNC != "" {
				t.Errorf("VNC = %q for a definition without an allocated port", got.VNC)
			}
			if got.XML != doc {
				t.Error("XML is not the parsed document")
			}
		})
	}
}

func TestDomainDefaults(t *testing.T) {
	spec := baseDomain()
	spec.Arch = ""
	spec.Disks = []virt.DiskSpec{
		{Target: "sda", Path: "/img/a.qcow2", BootOrder: 1},
		{Device: virt.DeviceCDROM, Target: "sdb"},
	}
	spec.Interfaces = []virt.InterfaceSpec{{Network: "n", MAC: "52:54:00:AA:BB:CC"}}
	d, err := Domain(spec)
	if err != nil {
		t.Fatal(err)
	}
	if d.OS.Type.Arch != "x86_64" {
		t.Errorf("arch = %q, want x86_64", d.OS.Type.Arch)
	}
	disk, cd := d.Devices.Disks[0], d.Devices.Disks[1]
	if disk.Device != "disk" || disk.Target.Bus != "sata" || disk.Driver.Type != "qcow2" || disk.Driver.Cache != "" {
		t.Errorf("disk defaults: %+v %+v %+v", disk, disk.Target, disk.Driver)
	}
	if cd.Source != nil || cd.ReadOnly == nil || cd.Snapshot != "no" || cd.Driver.Type != "raw" {
		t.Errorf("empty cdrom: source %+v readonly %v snapshot %q driver %q", cd.Source, cd.ReadOnly, cd.Snapshot, cd.Driver.Type)
	}
	nic := d.Devices.Interfaces[0]
	if nic.Model.Type != "e1000" || nic.MAC.Address != "52:54:00:aa:bb:cc" || nic.FilterRef != nil || nic.PortOptions != nil {
		t.Errorf("nic defaults: model %q mac %q filter %+v port %+v", nic.Model.Type, nic.MAC.Address, nic.FilterRef, nic.PortOptions)
	}
}

func TestDomainAccelDifferences(t *testing.T) {
	kvm := baseDomain()
	tcg := baseDomain()
	tcg.Accel = virt.AccelTCG
	noHV := baseDomain()
	noHV.Hyperv = false
	tcg32 := baseDomain()
	tcg32.Accel, tcg32.Arch = virt.AccelTCG, "i686"
	for _, tt := range []struct {
		name        string
		spec        virt.DomainSpec
		hyperv      bool
		cpuMode     string
		model       string
		hypervclock bool
	}{
		{"kvm", kvm, true, "host-model", "", true},
		{"tcg drops hyper-v", tcg, false, "custom", TCGCPUModel, false},
		{"kvm without hyper-v", noHV, false, "host-model", "", false},
		{"tcg i686", tcg32, false, "custom", TCGCPUModel32, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Domain(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if (d.Features.HyperV != nil) != tt.hyperv {
				t.Errorf("hyperv present = %v, want %v", d.Features.HyperV != nil, tt.hyperv)
			}
			if d.CPU.Mode != tt.cpuMode {
				t.Errorf("cpu mode %q, want %q", d.CPU.Mode, tt.cpuMode)
			}
			if (d.CPU.Model != nil && d.CPU.Model.Value == tt.model) != (tt.model != "") {
				t.Errorf("cpu model %+v, want %q", d.CPU.Model, tt.model)
			}
			top := d.CPU.Topology
			if top.Sockets != 1 || top.Cores != tt.spec.VCPUs || top.Threads != 1 {
				t.Errorf("topology %+v", top)
			}
			clock := false
			for _, tm := range d.Clock.Timer {
				if tm.Name == "hypervclock" {
					clock = true
				}
			}
			if clock != tt.hypervclock {
				t.Errorf("hypervclock = %v, want %v", clock, tt.hypervclock)
			}
			if d.OS.Loader != nil || d.OS.Firmware != "" || d.OS.NVRam != nil {
				t.Error("firmware must be SeaBIOS: no loader, no firmware attribute, no NVRAM")
			}
		})
	}
}

func TestNetworkRoundTrip(t *testing.T) {
	l2 := sampleNetwork()
	l2.Subnet, l2.HostAddress = netip.Prefix{}, netip.Addr{}
	l2.DHCP, l2.DHCPStart, l2.DHCPEnd, l2.DHCPHosts = false, netip.Addr{}, netip.Addr{}, nil
	dns := sampleNetwork()
	dns.DNS, dns.PortIsolated = true, true
	noDHCP := sampleNetwork()
	noDHCP.DHCP, noDHCP.DHCPStart, noDHCP.DHCPEnd, noDHCP.DHCPHosts = false, netip.Addr{}, netip.Addr{}, nil
	for name, spec := range map[string]virt.NetworkSpec{
		"dhcp": sampleNetwork(), "l2": l2, "dns isolated": dns, "address only": noDHCP,
	} {
		t.Run(name, func(t *testing.T) {
			doc, err := NetworkXML(spec)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(doc, "<forward") || strings.Contains(doc, "ipv6") {
				t.Errorf("an isolated network must have no <forward> and no IPv6:\n%s", doc)
			}
			got, err := ParseNetwork(doc)
			if err != nil {
				t.Fatal(err)
			}
			want := virt.Network{
				Name: spec.Name, UUID: spec.UUID, Bridge: spec.Bridge, MAC: spec.MAC,
				Subnet: spec.Subnet, HostAddress: spec.HostAddress, DHCP: spec.DHCP, DNS: spec.DNS,
				PortIsolated: spec.PortIsolated, Metadata: spec.Metadata, XML: doc,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got  %+v\n want %+v", got, want)
			}
		})
	}
}

func TestFiltersRoundTrip(t *testing.T) {
	spec := sampleFilter()
	spec.DNS = true
	spec.Allows = []virt.AllowSpec{{Name: "rdp", Direction: "in", Peer: "host", Protocol: "tcp", PortStart: 3389}}
	docs, err := FiltersXML(spec)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := ParseFilter(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	root, err := ParseFilter(docs[1])
	if err != nil {
		t.Fatal(err)
	}
	wantGuardUUID, _ := GuardUUID(spec.UUID)
	if guard.Name != spec.Name+"-guard" || guard.Chain != FilterChain || guard.UUID != wantGuardUUID || len(guard.Refs) != 0 {
		t.Errorf("guard = %+v", guard)
	}
	if root.Name != spec.Name || root.Chain != FilterChain || root.UUID != spec.UUID ||
		!reflect.DeepEqual(root.Refs, []string{spec.Name + "-guard"}) {
		t.Errorf("root = %+v", root)
	}
	// The names are FilterSpec.Names(), in definition order (guard first).
	if names := spec.Names(); names[0] != root.Name || names[1] != guard.Name {
		t.Errorf("FilterSpec.Names() = %v, rendered %s, %s", names, root.Name, guard.Name)
	}
	// The guard's UUID is derived, stable, and differs per root UUID.
	again, _ := GuardUUID(spec.UUID)
	other, _ := GuardUUID(netUUID)
	if again != wantGuardUUID || other == wantGuardUUID || wantGuardUUID == spec.UUID {
		t.Errorf("guard UUIDs: %s %s %s", wantGuardUUID, again, other)
	}
}

func TestVolumeRoundTrip(t *testing.T) {
	for name, spec := range map[string]virt.VolumeSpec{
		"overlay": {Pool: "p", Name: "a.qcow2", CapacityBytes: 40 << 30, Format: "qcow2", BackingPath: "/img/golden.qcow2"},
		"raw":     {Pool: "p", Name: "answer.iso", CapacityBytes: 1 << 20, Format: "raw"},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := Volume(spec)
			if err != nil {
				t.Fatal(err)
			}
			if v.Target.Permissions.Mode != "0600" {
				t.Errorf("mode = %q, want 0600", v.Target.Permissions.Mode)
			}
			if spec.BackingPath != "" && (v.BackingStore == nil || v.BackingStore.Format == nil || v.BackingStore.Format.Type != "qcow2") {
				t.Errorf("an overlay must name its backing format: %+v", v.BackingStore)
			}
			doc, err := VolumeXML(spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseVolume(doc)
			if err != nil {
				t.Fatal(err)
			}
			want := virt.Volume{Name: spec.Name, Format: spec.Format, CapacityBytes: spec.CapacityBytes, BackingPath: spec.BackingPath, Mode: 0o600}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestSnapshotRender(t *testing.T) {
	tests := []struct {
		name    string
		spec    virt.SnapshotSpec
		running bool
		memory  string
		err     error
	}{
		{"running with memory", virt.SnapshotSpec{Name: "s", Memory: true}, true, "internal", nil},
		{"running without memory", virt.SnapshotSpec{Name: "s"}, true, "", virt.ErrUnsupported},
		{"shut off", virt.SnapshotSpec{Name: "s"}, false, "no", nil},
		{"shut off, memory asked", virt.SnapshotSpec{Name: "s", Memory: true}, false, "no", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Snapshot(tt.spec, tt.running)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Memory == nil || s.Memory.Snapshot != tt.memory {
				t.Errorf("memory = %+v, want %q", s.Memory, tt.memory)
			}
			if s.Disks != nil {
				t.Error("no <disks>: libvirt aligns disks to internal snapshots")
			}
		})
	}
	doc, err := SnapshotXML(virt.SnapshotSpec{Name: "clean", Description: `{"a":1}`, Memory: true}, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSnapshot(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "clean" || got.Description != `{"a":1}` || !got.Memory {
		t.Errorf("round trip = %+v", got)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	for name, m := range map[string]*virt.Metadata{
		"full":    sampleMetadata(),
		"network": networkMetadata(),
		"minimal": {Profile: "p"},
		"image":   {Profile: "p", Instance: "acct-1", Image: "/pool/lvm-image-w7pro-v2.qcow2", ImageName: "w7pro", ImageVersion: 2},
		"build":   {Profile: "p", Instance: "lvm-build-w7pro", ImageBuild: "w7pro", Volumes: []virt.VolumeRef{{Pool: "default", Name: "lvm-build-w7pro-system.qcow2", Role: "system"}}},
		"doors": {Profile: "p", Instance: "app", Doors: []virt.DoorRef{
			{Kind: virt.DoorPublish, Name: "rdp", Scope: "vm", Listen: "0.0.0.0:13389", Port: 3389, Protocol: "tcp",
				From: []string{"192.0.2.0/24", "198.51.100.7/32"}, MaxConnections: 20},
			{Kind: virt.DoorEgress, Name: "db", Scope: "network", Port: 11433, To: "db.corp:1433"},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			doc, err := MetadataXML(m)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(doc, `<legacyvm:owner xmlns:legacyvm="`+Namespace+`">`) {
				t.Errorf("element is not in legacyvm's namespace:\n%s", doc)
			}
			got, err := ParseMetadata(doc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip:\n got  %+v\n want %+v", got, m)
			}
		})
	}
}

func TestMetadataCreatedIsUTCSeconds(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	m := &virt.Metadata{Profile: "p", Created: time.Date(2026, 1, 2, 3, 4, 5, 999, loc)}
	doc, err := MetadataXML(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc, "<legacyvm:created>2026-01-02T02:04:05Z</legacyvm:created>") {
		t.Errorf("created not in UTC RFC 3339 seconds:\n%s", doc)
	}
	got, err := ParseMetadata(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(m.Created.Truncate(time.Second)) || got.Created.Location() != time.UTC {
		t.Errorf("created = %v", got.Created)
	}
}

func TestParseMetadataAmongOthers(t *testing.T) {
	ours, err := MetadataXML(&virt.Metadata{Profile: "mine", Instance: "i"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		inner   string
		want    *virt.Metadata
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"whitespace", "\n  ", nil, false},
		{"only foreign", `<libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0"><libosinfo:os id="http://microsoft.com/win/7"/></libosinfo:libosinfo>`, nil, false},
		{"foreign element with our local name", `<x:owner xmlns:x="https://example.org/x"><x:profile>theirs</x:profile></x:owner>`, nil, false},
		{"ours after foreign", `<o:a xmlns:o="urn:o"><o:owner/></o:a>` + ours, &virt.Metadata{Profile: "mine", Instance: "i"}, false},
		{"default namespace form", `<owner xmlns="` + Namespace + `"><profile>mine</profile></owner>`, &virt.Metadata{Profile: "mine"}, false},
		{"other prefix, our namespace", `<lv:owner xmlns:lv="` + Namespace + `"><lv:profile>mine</lv:profile></lv:owner>`, &virt.Metadata{Profile: "mine"}, false},
		{"twice", ours + ours, nil, true},
		{"bad created", `<legacyvm:owner xmlns:legacyvm="` + Namespace + `"><legacyvm:profile>p</legacyvm:profile><legacyvm:created>yesterday</legacyvm:created></legacyvm:owner>`, nil, true},
		{"malformed", `<legacyvm:owner xmlns:legacyvm="` + Namespace + `">`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMetadata(tt.inner)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBytesOf(t *testing.T) {
	tests := []struct {
		v    uint64
		unit string
		want uint64
		err  bool
	}{
		{5, "", 5 << 10, false}, // default KiB
		{5, "b", 5, false},
		{5, "bytes", 5, false},
		{5, "KiB", 5 << 10, false},
		{5, "k", 5 << 10, false},
		{5, "KB", 5000, false},
		{5, "M", 5 << 20, false},
		{5, "MiB", 5 << 20, false},
		{5, "G", 5 << 30, false},
		{5, "GB", 5e9, false},
		{5, "TiB", 5 << 40, false},
		{1, "EiB", 1 << 60, false},
		{16, "EiB", 0, true},
		{1, "furlong", 0, true},
	}
	for _, tt := range tests {
		got, err := bytesOf(tt.v, tt.unit, "KiB")
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("bytesOf(%d, %q) = %d, %v; want %d, err %v", tt.v, tt.unit, got, err, tt.want, tt.err)
		}
	}
}

// TestMetadataFragment checks the virDomainSetMetadata/GetMetadata form: no
// namespace, no prefix, and it reads back to the same metadata.
func TestMetadataFragment(t *testing.T) {
	m := sampleMetadata()
	frag, err := MetadataFragment(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(frag, "xmlns") || strings.Contains(frag, MetadataPrefix+":") || !strings.HasPrefix(frag, "<"+MetadataElement+">") {
		t.Errorf("fragment is not naked:\n%s", frag)
	}
	got, err := ParseMetadata(frag)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("fragment round trip:\n got  %+v\n want %+v", got, m)
	}
	// What libvirt stores after SetMetadata(fragment, key, uri): the
	// fragment with the prefix applied, i.e. MetadataXML.
	full, err := MetadataXML(m)
	if err != nil {
		t.Fatal(err)
	}
	injected := strings.NewReplacer("</", "</"+MetadataPrefix+":", "<", "<"+MetadataPrefix+":").Replace(frag)
	injected = strings.Replace(injected, "<"+MetadataPrefix+":"+MetadataElement+">",
		"<"+MetadataPrefix+":"+MetadataElement+` xmlns:`+MetadataPrefix+`="`+Namespace+`">`, 1)
	if injected != full {
		t.Errorf("fragment + namespace differs from MetadataXML:\n%s\n---\n%s", injected, full)
	}
}
