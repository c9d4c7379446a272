package orchestrator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/winguest"
	"github.com/legacyvm/legacyvm/profiles"
)

// hostTarget is what planning needs to know about the host a profile is
// applied to, beyond what the profile says. It is observed, never guessed.
type hostTarget struct {
	URI   string
	Accel virt.Accel
	// Pool is the storage pool that holds system disks and answer media.
	Pool virt.Pool
	// SerialLogDir is where each domain's serial console is logged on the
	// host ("" = /var/log/libvirt/qemu).
	SerialLogDir string
	// ImageUpdates names images whose VMs move to the newest version.
	ImageUpdates []string
	// Images maps a golden image path of the profile to where it is on
	// this host when that differs (uploaded to a remote host); absent:
	// the path itself.
	Images map[string]imageOnHost
	// Uploads are the golden images apply uploads to this host first.
	Uploads []imageUpload
}

// desiredState is everything one profile wants on one host.
type desiredState struct {
	Profile  string
	Target   hostTarget
	Networks []*desiredNetwork
	VMs      []*desiredVM
}

// desiredNetwork is a network and the traffic filter of its interfaces.
type desiredNetwork struct {
	Decl   *profiles.Network
	Spec   virt.NetworkSpec
	Filter virt.FilterSpec
	Hash   string
}

// desiredVM is an instance: its domain and the volumes it owns.
type desiredVM struct {
	Instance *profiles.Instance
	Spec     virt.DomainSpec
	// System is the system disk volume. For a linked clone it is an overlay
	// of Image; for a full clone a copy of Image; for an install an empty
	// qcow2 of the disk size.
	System virt.VolumeSpec
	// Image is the golden image (clones) or the Windows ISO (installs), as
	// the profile names it.
	Image string
	// ImageName and ImageVersion are the registered image version the
	// disk clones (image = image.NAME); NewerImage is the newest version
	// when the VM stays pinned to an older one (0 otherwise).
	ImageName    string
	ImageVersion int
	NewerImage   int
	// HostImage is the golden image's path on the host (Image, unless it
	// was uploaded there under another name).
	HostImage string
	Clone     profiles.CloneMode
	// Answer says whether provisioning needs answer media (and so the
	// licence key): installs and golden images prepared by specialize.
	Answer bool
	// Install is set for installation from media.
	Install *profiles.Install
	Policy  *profiles.SnapshotPolicy
	License *profiles.License
	// IP is the reserved address on its network (invalid without DHCP).
	IP   netip.Addr
	Hash string
}

// desiredFor builds the desired state of p on one target. observed supplies
// the existing DHCP reservations so that addresses stay put when VMs are
// added or removed; it may be nil.
func desiredFor(p *profiles.Profile, t hostTarget, observed *observation) (*desiredState, error) {
	ds := &desiredState{Profile: p.Name, Target: t}
	netByName := map[string]*desiredNetwork{}
	for _, n := range p.Networks {
		dn := newDesiredNetwork(p, n)
		ds.Networks = append(ds.Networks, dn)
		netByName[n.Name] = dn
	}
	// Reserve addresses per network, keeping observed reservations.
	ips := map[string]netip.Addr{}
	for _, dn := range ds.Networks {
		if !dn.Decl.DHCP || !dn.Decl.Subnet.IsValid() {
			continue
		}
		var members []*profiles.Instance
		for _, in := range p.Instances {
			if in.VM.Network == dn.Decl {
				members = append(members, in)
			}
		}
		var prev []virt.DHCPHost
		if observed != nil {
			if on, ok := observed.Networks[dn.Spec.Name]; ok {
				prev = on.DHCPHosts
			}
		}
		got, err := reserveAddresses(p.Name, dn.Decl.Subnet, members, prev)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", dn.Decl.Name, err)
		}
		for _, in := range members {
			ip := got[in.Name]
			ips[in.Name] = ip
			id := instanceIdentity(p.Name, in.Name)
			dn.Spec.DHCPHosts = append(dn.Spec.DHCPHosts, virt.DHCPHost{MAC: id.MAC, Name: in.Name, IP: ip})
		}
		dn.Hash = hashOf(dn.Spec, dn.Filter)
	}
	for _, in := range p.Instances {
		dv, err := newDesiredVM(p, t, in, netByName, ips[in.Name], observed)
		if err != nil {
			return nil, err
		}
		ds.VMs = append(ds.VMs, dv)
	}
	addFilterDoors(ds)
	return ds, nil
}

func newDesiredNetwork(p *profiles.Profile, n *profiles.Network) *desiredNetwork {
	id, mac := networkIdentity(p.Name, n.Name)
	spec := virt.NetworkSpec{
		Name:         networkName(n.Name),
		UUID:         id,
		Bridge:       networkName(n.Name),
		MAC:          mac,
		Subnet:       n.Subnet,
		HostAddress:  n.HostAddress,
		DHCP:         n.DHCP,
		DNS:          n.DNS,
		PortIsolated: !n.GuestToGuest,
	}
	if n.DHCP && n.Subnet.IsValid() {
		spec.DHCPStart, spec.DHCPEnd, _ = dhcpPool(n.Subnet)
	}
	f := virt.FilterSpec{
		Name:        filterName(n.Name),
		UUID:        filterUUID(p.Name, n.Name),
		BridgeMAC:   mac,
		Subnet:      n.Subnet,
		HostAddress: n.HostAddress,
		DHCP:        n.DHCP,
		DNS:         n.DNS,
	}
	for _, a := range n.Allows {
		f.Allows = append(f.Allows, virt.AllowSpec{
			Name:      a.Name,
			Direction: string(a.Direction),
			Peer:      string(a.Peer),
			Protocol:  string(a.Protocol),
			PortStart: a.Ports.Start,
			PortEnd:   a.Ports.End,
		})
	}
	dn := &desiredNetwork{Decl: n, Spec: spec, Filter: f}
	dn.Hash = hashOf(dn.Spec, dn.Filter)
	return dn
}

// reserveAddresses gives each instance a stable address below the dynamic
// DHCP pool: the one it already has when that is still valid, else the first
// free address from a per-instance hashed starting point.
func reserveAddresses(profile string, subnet netip.Prefix, members []*profiles.Instance, prev []virt.DHCPHost) (map[string]netip.Addr, error) {
	_, _, n := dhcpPool(subnet)
	if len(members) > n {
		return nil, fmt.Errorf("%d VMs do not fit in %s (room for %d reserved addresses); use a larger subnet", len(members), subnet, n)
	}
	taken := map[netip.Addr]bool{}
	out := map[string]netip.Addr{}
	inRange := func(a netip.Addr) bool {
		for i := 0; i < n; i++ {
			if addrAt(subnet, hostAddrOffset+i) == a {
				return true
			}
		}
		return false
	}
	byMAC := map[string]netip.Addr{}
	for _, h := range prev {
		byMAC[strings.ToLower(h.MAC)] = h.IP
	}
	// First pass: keep what exists.
	for _, in := range members {
		mac := instanceIdentity(profile, in.Name).MAC
		if a, ok := byMAC[mac]; ok && a.IsValid() && inRange(a) && !taken[a] {
			out[in.Name] = a
			taken[a] = true
		}
	}
	for _, in := range members {
		if _, ok := out[in.Name]; ok {
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(in.Name))
		start := int(h.Sum32() % uint32(n))
		for i := 0; i < n; i++ {
			a := addrAt(subnet, hostAddrOffset+(start+i)%n)
			if !taken[a] {
				out[in.Name] = a
				taken[a] = true
				break
			}
		}
	}
	return out, nil
}

func newDesiredVM(p *profiles.Profile, t hostTarget, in *profiles.Instance, nets map[string]*desiredNetwork, ip netip.Addr, observed *observation) (*desiredVM, error) {
	vm := in.VM
	preset, ok := winguest.PresetFor(string(vm.OS))
	if !ok {
		panic(fmt.Sprintf("profiles accepted unknown os %q", vm.OS))
	}
	id := instanceIdentity(p.Name, in.Name)
	dv := &desiredVM{Instance: in, Policy: vm.SnapshotPolicy, License: in.License, IP: ip}

	cpus := vm.CPUs
	if cpus == 0 {
		cpus = preset.DefaultCPUs
	}
	mem := vm.MemoryBytes
	if mem == 0 {
		mem = preset.DefaultMemory
	}
	machine := vm.Machine
	if machine == "" {
		machine = preset.Machine
	}
	logDir := t.SerialLogDir
	if logDir == "" {
		logDir = "/var/log/libvirt/qemu"
	}
	spec := virt.DomainSpec{
		Name:         in.Name,
		UUID:         id.UUID,
		Title:        fmt.Sprintf("%s (legacyvm profile %s)", in.Name, p.Name),
		Accel:        t.Accel,
		Arch:         preset.Arch,
		Machine:      machine,
		VCPUs:        cpus,
		MemoryBytes:  mem,
		SMBIOSSerial: id.Serial,
		OEMStrings:   vm.OEMStrings,
		Hyperv:       true,
		SerialLog:    filepath.Join(logDir, in.Name+".serial.log"),
		GuestAgent:   vm.GuestAgent,
	}

	d := vm.Disk
	sys := virt.VolumeSpec{Pool: t.Pool.Name, Name: systemVolumeName(in.Name), Format: "qcow2", CapacityBytes: d.SizeBytes, Mode: 0o600}
	dv.Clone = d.Clone
	switch {
	case d.Install != nil:
		dv.Install = d.Install
		dv.Image = d.Install.ISO
		dv.Answer = true
		if sys.CapacityBytes == 0 {
			sys.CapacityBytes = preset.DefaultDiskBytes
		}
	default:
		dv.Image = d.Image
		if d.ImageRef != nil {
			resolveImageVersion(dv, in, t, observed)
		}
		dv.Answer = d.Prepare == profiles.PrepareSpecialize
		// A registered image version (image = image.NAME) resolved dv.Image.
		hostImage := imageOnHost{Path: dv.Image}
		if hi, ok := t.Images[dv.Image]; ok {
			hostImage = hi
		}
		dv.HostImage = hostImage.Path
		if d.Clone == profiles.CloneLinked || d.Clone == "" {
			sys.BackingPath = hostImage.Path
			// Always name the backing format (QEMU no longer probes it);
			// libvirt knows it when the image is in a pool, and apply looks
			// again once the image's pool exists.
			sys.BackingFormat = "qcow2"
			if hostImage.Format != "" {
				sys.BackingFormat = hostImage.Format
			}
			if observed != nil {
				if img, ok := observed.image(t, dv.Image); ok && img.Format != "" {
					sys.BackingFormat = img.Format
				}
			}
		}
	}
	dv.System = sys
	sysPath := filepath.Join(t.Pool.Path, sys.Name)
	bus := preset.DiskBus
	spec.Disks = []virt.DiskSpec{
		{Device: virt.DeviceDisk, Bus: bus, Target: systemTarget, Path: sysPath, Format: "qcow2", BootOrder: 1},
		// Answer media goes here during provisioning; empty afterwards, for
		// the user's own media.
		{Device: virt.DeviceCDROM, Bus: bus, Target: "sdb", Format: "raw"},
	}
	if dv.Install != nil {
		// The Windows ISO goes here during installation: the empty system
		// disk falls through to it at the first boot.
		spec.Disks = append(spec.Disks, virt.DiskSpec{Device: virt.DeviceCDROM, Bus: bus, Target: "sdc", Format: "raw", BootOrder: 2})
	}
	if vm.Network != nil {
		dn := nets[vm.Network.Name]
		iface := virt.InterfaceSpec{
			Network: dn.Spec.Name,
			MAC:     id.MAC,
			Model:   preset.NIC,
			Filter:  dn.Filter.Name,
		}
		if ip.IsValid() {
			iface.FilterParams = []virt.FilterParam{{Name: "IP", Value: ip.String()}}
		}
		spec.Interfaces = []virt.InterfaceSpec{iface}
	}
	if sys.CapacityBytes == 0 && observed != nil {
		// Overlays and copies default to the golden image's size.
		if img, ok := observed.image(t, dv.Image); ok {
			sys.CapacityBytes = img.CapacityBytes
			dv.System.CapacityBytes = img.CapacityBytes
		}
	}
	// The hash covers what the profile declares, not what was resolved
	// from the host (the image size), so it is stable across applies.
	dv.Hash = hashOf(spec, dv.Image, dv.Clone, dv.Answer, d.SizeBytes, policyRef(dv.Policy), licenseLabel(dv.License))
	spec.Metadata = &virt.Metadata{
		Profile:      p.Name,
		VM:           vm.Name,
		Instance:     in.Name,
		SpecHash:     dv.Hash,
		Image:        dv.Image,
		ImageName:    dv.ImageName,
		ImageVersion: dv.ImageVersion,
		Volumes:      []virt.VolumeRef{{Pool: sys.Pool, Name: sys.Name, Role: "system"}},
		Policy:       policyRef(dv.Policy),
	}
	if dv.Answer {
		spec.Metadata.Volumes = append(spec.Metadata.Volumes, virt.VolumeRef{Pool: sys.Pool, Name: answerVolumeName(in.Name), Role: "answer"})
	}
	if dv.Policy != nil && dv.Policy.Memory {
		spec.Metadata.Volumes = append(spec.Metadata.Volumes, virt.VolumeRef{Pool: sys.Pool, Name: memoryImageVolumeName(in.Name), Role: volumeRoleMemory},
			virt.VolumeRef{Pool: sys.Pool, Name: layerVolumeName(in.Name), Role: volumeRoleLayer})
	}
	if vm.Network != nil {
		spec.Metadata.Filters = nets[vm.Network.Name].Filter.Names()
	}
	spec.Metadata.Doors = doorRefs(vm)
	if l := dv.License; l != nil {
		spec.Metadata.License = &virt.LicenseRef{Label: l.Name, Edition: string(l.Edition), Channel: string(l.Channel), Seats: l.Seats}
	}
	dv.Spec = spec
	return dv, nil
}

// image is the volume libvirt knows for a golden image or ISO of the
// profile: at its path, or (on a remote host) as the copy uploaded there
// earlier.
func (o *observation) image(t hostTarget, path string) (virt.Volume, bool) {
	if v, ok := o.Images[path]; ok {
		return v, true
	}
	if _, uploaded := t.Images[path]; uploaded {
		v, ok := o.Volumes[UploadedImageName(path)]
		return v, ok
	}
	return virt.Volume{}, false
}

func policyRef(p *profiles.SnapshotPolicy) *virt.PolicyRef {
	if p == nil {
		return nil
	}
	r := &virt.PolicyRef{Name: p.Name, Baseline: p.Baseline, Schedule: p.Schedule, Keep: p.Keep, Memory: p.Memory, OnShutdown: string(p.OnShutdown), Window: p.Window}
	if p.MaxAge > 0 {
		r.MaxAge = p.MaxAge.String()
	}
	return r
}

func licenseLabel(l *profiles.License) string {
	if l == nil {
		return ""
	}
	return l.Name + "/" + string(l.Channel)
}

// hashOf is a short, stable digest of values (JSON-encoded).
func hashOf(vs ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			panic(fmt.Sprintf("hash %T: %v", v, err))
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
