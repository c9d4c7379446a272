package domainxml

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// SMBIOS system strings every legacyvm domain carries.
const (
	SMBIOSManufacturer = "legacyvm"
	SMBIOSProduct      = "Windows 7 VM"
)

// TCGCPUModel is the CPU model of TCG (type='qemu') x86_64 domains; i686
// domains get TCGCPUModel32. See Domain.
const (
	TCGCPUModel   = "qemu64"
	TCGCPUModel32 = "qemu32"
)

// DefaultNICModel is the NIC model used when InterfaceSpec.Model is empty:
// the Intel 82540EM, whose driver ships with Windows 7.
const DefaultNICModel = "e1000"

// VNCListen is the only address VNC ever listens on.
const VNCListen = "127.0.0.1"

// Domain renders spec with the Windows 7 hardware preset:
//
//   - type = spec.Accel; SeaBIOS (no <loader>, never UEFI); machine and arch
//     pass through (a pinned versioned machine type is kept);
//   - <metadata>: libosinfo's win7 annotation and legacyvm's element;
//   - memory and currentMemory in KiB; <vcpu placement='static'>;
//   - <cpu>: one socket, spec.VCPUs cores, one thread. KVM uses host-model.
//     TCG uses mode='custom' model qemu64 with check='none': libvirt 9.0
//     offers host-model for TCG, but it expands QEMU's "max" TCG CPU (an
//     EPYC with la57, pks, mpx... that changes with every QEMU release),
//     which makes golden images and snapshots depend on the QEMU version and
//     shows Windows 7 a CPU that never existed; qemu64 is always usable
//     under TCG and stays the same;
//   - SMBIOS (<os><smbios mode='sysinfo'/>): manufacturer "legacyvm",
//     product "Windows 7 VM", spec.SMBIOSSerial, uuid = domain UUID, and
//     spec.OEMStrings as type 11 strings;
//   - features acpi, apic, vmport off, and for KVM with spec.Hyperv the
//     Hyper-V list relaxed, vapic, spinlocks (8191), vpindex, runtime,
//     synic, stimer (TCG cannot provide them and they are left out);
//   - clock localtime: rtc catchup, pit delay, no hpet, and hypervclock
//     when the Hyper-V list is present (stimer needs it);
//   - on_poweroff destroy, on_reboot restart, on_crash destroy; no S3/S4;
//   - devices: spec.Disks (CD-ROMs read-only with snapshot='no' so that
//     internal snapshots work), USB2 (ich9-ehci1 + ich9-uhci1..3, never
//     xHCI) with a tablet, PS/2 keyboard and mouse, e1000 NICs on libvirt
//     networks (filterref + parameters, <port isolated>), VNC on 127.0.0.1
//     only, VGA, no balloon, no sound, a pty serial port (logged to
//     spec.SerialLog when set) and its console; with spec.GuestAgent a
//     virtio-serial channel org.qemu.guest_agent.0 (unix socket chosen by
//     libvirt; libvirt adds the virtio-serial controller).
//
// SATA disks on a "pc" machine get their AHCI controller from libvirt.
// Domain returns an error (naming the domain) when spec is incomplete or
// inconsistent; it never returns a partial domain.
func Domain(spec virt.DomainSpec) (*libvirtxml.Domain, error) {
	d, err := buildDomain(spec)
	if err != nil {
		return nil, fmt.Errorf("domain %q: %w", spec.Name, err)
	}
	return d, nil
}

// DomainXML is Domain marshalled to a string.
func DomainXML(spec virt.DomainSpec) (string, error) {
	d, err := Domain(spec)
	if err != nil {
		return "", err
	}
	s, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("domain %q: marshal: %w", spec.Name, err)
	}
	return s, nil
}

func buildDomain(spec virt.DomainSpec) (*libvirtxml.Domain, error) {
	if err := checkName("domain", spec.Name); err != nil {
		return nil, err
	}
	if err := checkUUID("domain", spec.UUID); err != nil {
		return nil, err
	}
	if strings.ContainsAny(spec.Title, "\r\n") {
		return nil, errors.New("title must be a single line")
	}
	if err := checkNoKey("title", spec.Title); err != nil {
		return nil, err
	}
	kvm := false
	switch spec.Accel {
	case virt.AccelKVM:
		kvm = true
	case virt.AccelTCG:
	default:
		return nil, fmt.Errorf("accelerator %q: want %q or %q", spec.Accel, virt.AccelKVM, virt.AccelTCG)
	}
	arch := spec.Arch
	if arch == "" {
		arch = "x86_64"
	}
	if arch != "x86_64" && arch != "i686" {
		return nil, fmt.Errorf("arch %q: want x86_64 (also for 32-bit Windows) or i686", arch)
	}
	family, err := machineFamily(spec.Machine)
	if err != nil {
		return nil, err
	}
	if spec.VCPUs < 1 {
		return nil, fmt.Errorf("vcpus %d: at least one is needed", spec.VCPUs)
	}
	if spec.MemoryBytes == 0 || spec.MemoryBytes%1024 != 0 {
		return nil, fmt.Errorf("memory %d bytes: want a positive multiple of 1024", spec.MemoryBytes)
	}
	if strings.ContainsAny(spec.SMBIOSSerial, "\r\n") {
		return nil, errors.New("SMBIOS serial must be a single line")
	}
	if err := checkNoKey("SMBIOS serial", spec.SMBIOSSerial); err != nil {
		return nil, err
	}
	for i, s := range spec.OEMStrings {
		if err := checkNoKey(fmt.Sprintf("OEM string %d", i+1), s); err != nil {
			return nil, err
		}
	}
	meta, err := domainMetadataInner(spec.Metadata)
	if err != nil {
		return nil, err
	}
	disks, err := domainDisks(spec.Disks, family)
	if err != nil {
		return nil, err
	}
	nics, err := domainInterfaces(spec.Interfaces)
	if err != nil {
		return nil, err
	}

	hyperv := kvm && spec.Hyperv
	memKiB := uint(spec.MemoryBytes / 1024)
	zero := uint(0)

	smbios := &libvirtxml.DomainSysInfoSMBIOS{
		System: &libvirtxml.DomainSysInfoSystem{Entry: []libvirtxml.DomainSysInfoEntry{
			{Name: "manufacturer", Value: SMBIOSManufacturer},
			{Name: "product", Value: SMBIOSProduct},
		}},
	}
	if spec.SMBIOSSerial != "" {
		smbios.System.Entry = append(smbios.System.Entry, libvirtxml.DomainSysInfoEntry{Name: "serial", Value: spec.SMBIOSSerial})
	}
	smbios.System.Entry = append(smbios.System.Entry, libvirtxml.DomainSysInfoEntry{Name: "uuid", Value: strings.ToLower(spec.UUID)})
	if len(spec.OEMStrings) > 0 {
		smbios.OEMStrings = &libvirtxml.DomainSysInfoOEMStrings{Entry: append([]string(nil), spec.OEMStrings...)}
	}

	cpu := &libvirtxml.DomainCPU{
		Topology: &libvirtxml.DomainCPUTopology{Sockets: 1, Cores: spec.VCPUs, Threads: 1},
	}
	if kvm {
		cpu.Mode = "host-model"
	} else {
		cpu.Mode = "custom"
		cpu.Match = "exact"
		cpu.Check = "none"
		model := TCGCPUModel
		if arch == "i686" {
			model = TCGCPUModel32
		}
		cpu.Model = &libvirtxml.DomainCPUModel{Fallback: "forbid", Value: model}
	}

	features := &libvirtxml.DomainFeatureList{
		ACPI:   &libvirtxml.DomainFeature{},
		APIC:   &libvirtxml.DomainFeatureAPIC{},
		VMPort: &libvirtxml.DomainFeatureState{State: "off"},
	}
	on := func() *libvirtxml.DomainFeatureState { return &libvirtxml.DomainFeatureState{State: "on"} }
	if hyperv {
		features.HyperV = &libvirtxml.DomainFeatureHyperV{
			Mode:      "custom",
			Relaxed:   on(),
			VAPIC:     on(),
			Spinlocks: &libvirtxml.DomainFeatureHyperVSpinlocks{DomainFeatureState: *on(), Retries: 8191},
			VPIndex:   on(),
			Runtime:   on(),
			Synic:     on(),
			STimer:    &libvirtxml.DomainFeatureHyperVSTimer{DomainFeatureState: *on()},
		}
	}

	clock := &libvirtxml.DomainClock{
		Offset: "localtime",
		Timer: []libvirtxml.DomainTimer{
			{Name: "rtc", TickPolicy: "catchup"},
			{Name: "pit", TickPolicy: "delay"},
			{Name: "hpet", Present: "no"},
		},
	}
	if hyperv {
		clock.Timer = append(clock.Timer, libvirtxml.DomainTimer{Name: "hypervclock", Present: "yes"})
	}

	usb := []libvirtxml.DomainController{
		{Type: "usb", Index: &zero, Model: "ich9-ehci1"},
		usbCompanion("ich9-uhci1", 0),
		usbCompanion("ich9-uhci2", 2),
		usbCompanion("ich9-uhci3", 4),
	}

	serial := libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainSerialTarget{Port: &zero},
	}
	if spec.SerialLog != "" {
		if !strings.HasPrefix(spec.SerialLog, "/") {
			return nil, fmt.Errorf("serial log %q: want an absolute path", spec.SerialLog)
		}
		serial.Log = &libvirtxml.DomainChardevLog{File: spec.SerialLog, Append: "off"}
	}
	consolePort := uint(0)
	var channels []libvirtxml.DomainChannel
	if spec.GuestAgent {
		// The socket path is left to libvirt (it picks one under its own
		// run directory and connects to it for QemuAgentCommand).
		channels = append(channels, libvirtxml.DomainChannel{
			Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: virt.AgentOrgName}},
		})
	}

	d := &libvirtxml.Domain{
		Type:          string(spec.Accel),
		Name:          spec.Name,
		UUID:          strings.ToLower(spec.UUID),
		Title:         spec.Title,
		Metadata:      &libvirtxml.DomainMetadata{XML: meta},
		Memory:        &libvirtxml.DomainMemory{Value: memKiB, Unit: "KiB"},
		CurrentMemory: &libvirtxml.DomainCurrentMemory{Value: memKiB, Unit: "KiB"},
		VCPU:          &libvirtxml.DomainVCPU{Placement: "static", Value: uint(spec.VCPUs)},
		SysInfo:       []libvirtxml.DomainSysInfo{{SMBIOS: smbios}},
		OS: &libvirtxml.DomainOS{
			Type:   &libvirtxml.DomainOSType{Arch: arch, Machine: spec.Machine, Type: "hvm"},
			SMBios: &libvirtxml.DomainSMBios{Mode: "sysinfo"},
		},
		Features:   features,
		CPU:        cpu,
		Clock:      clock,
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		PM: &libvirtxml.DomainPM{
			SuspendToMem:  &libvirtxml.DomainPMPolicy{Enabled: "no"},
			SuspendToDisk: &libvirtxml.DomainPMPolicy{Enabled: "no"},
		},
		Devices: &libvirtxml.DomainDeviceList{
			Disks:       disks,
			Controllers: usb,
			Interfaces:  nics,
			Serials:     []libvirtxml.DomainSerial{serial},
			Channels:    channels,
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &consolePort},
			}},
			Inputs: []libvirtxml.DomainInput{
				{Type: "tablet", Bus: "usb"},
				{Type: "keyboard", Bus: "ps2"},
				{Type: "mouse", Bus: "ps2"},
			},
			Graphics: []libvirtxml.DomainGraphic{{VNC: &libvirtxml.DomainGraphicVNC{
				AutoPort: "yes",
				Listen:   VNCListen,
				Listeners: []libvirtxml.DomainGraphicListener{{
					Address: &libvirtxml.DomainGraphicListenerAddress{Address: VNCListen},
				}},
			}}},
			Videos: []libvirtxml.DomainVideo{{
				Model: libvirtxml.DomainVideoModel{Type: "vga", Heads: 1, Primary: "yes"},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	return d, nil
}

func usbCompanion(model string, startPort uint) libvirtxml.DomainController {
	zero := uint(0)
	return libvirtxml.DomainController{
		Type:  "usb",
		Index: &zero,
		Model: model,
		USB:   &libvirtxml.DomainControllerUSB{Master: &libvirtxml.DomainControllerUSBMaster{StartPort: startPort}},
	}
}

// machineFamily returns "pc" or "q35" for a machine alias or a versioned
// type (pc-q35-7.2 and pc-q35-rhel9.2.0 are q35; pc-i440fx-7.2 and the old
// pc-1.0 are pc).
func machineFamily(machine string) (string, error) {
	switch {
	case machine == "q35" || strings.HasPrefix(machine, "pc-q35-"):
		return "q35", nil
	case machine == "pc" || strings.HasPrefix(machine, "pc-"):
		return "pc", nil
	case machine == "":
		return "", errors.New("machine is empty: want pc or q35 (or a pinned versioned type)")
	default:
		return "", fmt.Errorf("machine %q: want pc or q35 (or a pinned pc-i440fx-* or pc-q35-* type)", machine)
	}
}

func domainDisks(specs []virt.DiskSpec, family string) ([]libvirtxml.DomainDisk, error) {
	targets := map[string]bool{}
	boots := map[int]string{}
	var out []libvirtxml.DomainDisk
	for _, s := range specs {
		dev := s.Device
		if dev == "" {
			dev = virt.DeviceDisk
		}
		bus := s.Bus
		if bus == "" {
			bus = "sata"
		}
		if s.Target == "" {
			return nil, fmt.Errorf("%s with path %q has no target device name", dev, s.Path)
		}
		what := fmt.Sprintf("%s %s", dev, s.Target)
		if targets[s.Target] {
			return nil, fmt.Errorf("%s: target used twice", what)
		}
		targets[s.Target] = true
		switch bus {
		case "sata":
		case "ide":
			if family == "q35" {
				return nil, fmt.Errorf("%s: q35 machines have no IDE bus; use sata", what)
			}
		default:
			return nil, fmt.Errorf("%s: bus %q: want sata or ide (Windows 7 has no inbox driver for others)", what, bus)
		}
		if s.Path != "" && !strings.HasPrefix(s.Path, "/") {
			return nil, fmt.Errorf("%s: path %q is not absolute", what, s.Path)
		}
		if s.BootOrder < 0 {
			return nil, fmt.Errorf("%s: boot order %d is negative", what, s.BootOrder)
		}
		if s.BootOrder > 0 {
			if other, ok := boots[s.BootOrder]; ok {
				return nil, fmt.Errorf("%s: boot order %d is already used by %s", what, s.BootOrder, other)
			}
			boots[s.BootOrder] = s.Target
		}
		format := s.Format
		disk := libvirtxml.DomainDisk{
			Device: string(dev),
			Target: &libvirtxml.DomainDiskTarget{Dev: s.Target, Bus: bus},
		}
		switch dev {
		case virt.DeviceDisk:
			if s.Path == "" {
				return nil, fmt.Errorf("%s: a disk needs a path", what)
			}
			if format == "" {
				format = "qcow2"
			}
			if format != "qcow2" {
				// A writable non-qcow2 disk forbids internal snapshots.
				return nil, fmt.Errorf("%s: format %q: system disks are qcow2 (internal snapshots need it)", what, format)
			}
		case virt.DeviceCDROM:
			if format == "" {
				format = "raw"
			}
			if format != "raw" && format != "qcow2" {
				return nil, fmt.Errorf("%s: format %q: want raw or qcow2", what, format)
			}
			disk.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
			// Read-only media stay out of internal snapshots; without
			// this libvirt refuses to snapshot a domain with a CD.
			disk.Snapshot = "no"
		default:
			return nil, fmt.Errorf("%s: device %q: want disk or cdrom", what, dev)
		}
		disk.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format}
		if s.Path != "" {
			disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.Path}}
		}
		if s.BootOrder > 0 {
			disk.Boot = &libvirtxml.DomainDeviceBoot{Order: uint(s.BootOrder)}
		}
		out = append(out, disk)
	}
	return out, nil
}

func domainInterfaces(specs []virt.InterfaceSpec) ([]libvirtxml.DomainInterface, error) {
	macs := map[string]bool{}
	var out []libvirtxml.DomainInterface
	for i, s := range specs {
		what := fmt.Sprintf("interface %d", i+1)
		if err := checkName(what+" network", s.Network); err != nil {
			return nil, err
		}
		mac, err := unicastMAC(what, s.MAC)
		if err != nil {
			return nil, err
		}
		if macs[mac] {
			return nil, fmt.Errorf("%s: MAC %s used twice", what, mac)
		}
		macs[mac] = true
		model := s.Model
		if model == "" {
			model = DefaultNICModel
		}
		nic := libvirtxml.DomainInterface{
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: s.Network}},
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: mac},
			Model:  &libvirtxml.DomainInterfaceModel{Type: model},
		}
		if s.Filter != "" {
			ref := &libvirtxml.DomainInterfaceFilterRef{Filter: s.Filter}
			for _, p := range s.FilterParams {
				if p.Name == "" {
					return nil, fmt.Errorf("%s: filter parameter without a name", what)
				}
				if err := checkNoKey(fmt.Sprintf("%s filter parameter %s", what, p.Name), p.Value); err != nil {
					return nil, err
				}
				ref.Parameters = append(ref.Parameters, libvirtxml.DomainInterfaceFilterParam{Name: p.Name, Value: p.Value})
			}
			nic.FilterRef = ref
		} else if len(s.FilterParams) > 0 {
			return nil, fmt.Errorf("%s: filter parameters without a filter", what)
		}
		if s.PortIsolated {
			nic.PortOptions = &libvirtxml.DomainInterfacePortOptions{Isolated: "yes"}
		}
		out = append(out, nic)
	}
	return out, nil
}

// ParseDomain reads a domain definition (persistent or live, as libvirt
// returns it: with addresses, aliases, added controllers and a pinned
// machine type) into everything the XML holds: name, UUID, accelerator,
// machine, vCPUs, maximum memory, disks and CD-ROMs, NICs with their
// filter references, the active VNC address and legacyvm's metadata
// (nil when absent). State, Persistent and Autostart are not in the XML
// and are left for the caller; XML is set to xml.
func ParseDomain(xml string) (virt.Domain, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(xml); err != nil {
		return virt.Domain{}, fmt.Errorf("parse domain: %w", err)
	}
	out := virt.Domain{Name: d.Name, UUID: d.UUID, Accel: virt.Accel(d.Type), XML: xml}
	fail := func(err error) (virt.Domain, error) {
		return virt.Domain{}, fmt.Errorf("parse domain %q: %w", d.Name, err)
	}
	if d.OS != nil && d.OS.Type != nil {
		out.Machine = d.OS.Type.Machine
	}
	if d.VCPU != nil {
		out.VCPUs = int(d.VCPU.Value)
	}
	if d.Memory != nil {
		b, err := bytesOf(uint64(d.Memory.Value), d.Memory.Unit, "KiB")
		if err != nil {
			return fail(fmt.Errorf("memory: %w", err))
		}
		out.MemoryBytes = b
	}
	if d.Metadata != nil {
		m, err := ParseMetadata(d.Metadata.XML)
		if err != nil {
			return fail(err)
		}
		out.Metadata = m
	}
	if d.Devices == nil {
		return out, nil
	}
	for _, disk := range d.Devices.Disks {
		if disk.Device != "" && disk.Device != string(virt.DeviceDisk) && disk.Device != string(virt.DeviceCDROM) {
			continue
		}
		ds := virt.DiskSpec{Device: virt.DiskDevice(disk.Device)}
		if ds.Device == "" {
			ds.Device = virt.DeviceDisk
		}
		if disk.Target != nil {
			ds.Target, ds.Bus = disk.Target.Dev, disk.Target.Bus
		}
		if disk.Driver != nil {
			ds.Format = disk.Driver.Type
		}
		if src := disk.Source; src != nil {
			switch {
			case src.File != nil:
				ds.Path = src.File.File
			case src.Block != nil:
				ds.Path = src.Block.Dev
			}
		}
		if disk.Boot != nil {
			ds.BootOrder = int(disk.Boot.Order)
		}
		out.Disks = append(out.Disks, ds)
	}
	for _, nic := range d.Devices.Interfaces {
		is := virt.InterfaceSpec{}
		if nic.Source != nil && nic.Source.Network != nil {
			is.Network = nic.Source.Network.Network
		}
		if nic.MAC != nil {
			is.MAC = strings.ToLower(nic.MAC.Address)
		}
		if nic.Model != nil {
			is.Model = nic.Model.Type
		}
		if nic.FilterRef != nil {
			is.Filter = nic.FilterRef.Filter
			for _, p := range nic.FilterRef.Parameters {
				is.FilterParams = append(is.FilterParams, virt.FilterParam{Name: p.Name, Value: p.Value})
			}
		}
		if nic.PortOptions != nil && nic.PortOptions.Isolated == "yes" {
			is.PortIsolated = true
		}
		out.Interfaces = append(out.Interfaces, is)
	}
	for _, c := range d.Devices.Channels {
		if c.Target != nil && c.Target.VirtIO != nil && c.Target.VirtIO.Name == virt.AgentOrgName {
			out.GuestAgent = true
		}
	}
	for _, g := range d.Devices.Graphics {
		if g.VNC == nil || g.VNC.Port <= 0 {
			continue
		}
		host := g.VNC.Listen
		for _, l := range g.VNC.Listeners {
			if l.Address != nil && l.Address.Address != "" {
				host = l.Address.Address
				break
			}
		}
		if host == "" {
			host = VNCListen
		}
		out.VNC = net.JoinHostPort(host, strconv.Itoa(g.VNC.Port))
		break
	}
	return out, nil
}

// InterfacePortIsolated returns the isolated attribute of the <port>
// element of the NIC with mac (any case) in a domain definition: "yes",
// "no", or "" when the NIC has none, is absent or the XML does not parse.
// virt.InterfaceSpec only says whether a NIC is isolated; an explicit
// isolated='no' overrides the network's port isolation.
func InterfacePortIsolated(domainXML, mac string) string {
	var d libvirtxml.Domain
	if domainXML == "" || d.Unmarshal(domainXML) != nil || d.Devices == nil {
		return ""
	}
	for _, i := range d.Devices.Interfaces {
		if i.MAC != nil && strings.EqualFold(i.MAC.Address, mac) && i.PortOptions != nil {
			return i.PortOptions.Isolated
		}
	}
	return ""
}
