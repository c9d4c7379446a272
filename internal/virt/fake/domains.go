package fake

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// domain is one defined domain.
type domain struct {
	uuid string
	// def is the persistent definition, normalised (machine pinned, MACs
	// assigned, defaults filled in).
	def virt.DomainSpec
	// live is the definition the running domain was started with; nil when
	// the domain is shut off.
	live  *virt.DomainSpec
	state virt.DomainState
	// stopReason is why the domain last stopped ("" reads as unknown).
	stopReason virt.StopReason
	autostart  bool
	vncPort    int
	snaps      map[string]*snapshot
	current    string
	// shutdownRequests counts ShutdownDomain calls.
	shutdownRequests int
	// guest is what the guest agent sees of the running guest (nil when
	// shut off); see agent.go.
	guest *guest
	// diskWrites counts GuestDiskWrite bytes since the QEMU process (a
	// start, a revert) began.
	diskWrites int64
}

// machineFamily is "i440fx" for pc and its versioned types, "q35" for q35
// and its versioned types, else the type itself.
func machineFamily(m string) string {
	switch {
	case m == "q35" || strings.HasPrefix(m, "pc-q35-"):
		return "q35"
	case m == "" || m == "pc" || strings.HasPrefix(m, "pc-"):
		return "i440fx"
	}
	return m
}

// pinMachine expands a machine alias to the versioned type the host offers.
func (h *Hypervisor) pinMachine(m string) string {
	if m == "" {
		m = "pc"
	}
	if v, ok := h.info.Machines[m]; ok && v != "" {
		return v
	}
	if v, ok := defaultMachines[m]; ok {
		return v
	}
	return m
}

// normalise fills in the defaults libvirt fills in and copies every
// slice. spec has passed domainxml's checks.
func normalise(spec virt.DomainSpec) virt.DomainSpec {
	spec = cloneSpec(spec)
	if spec.Arch == "" {
		spec.Arch = "x86_64"
	}
	for i := range spec.Disks {
		d := &spec.Disks[i]
		if d.Bus == "" {
			d.Bus = "sata"
		}
		if d.Format == "" && d.Device == virt.DeviceDisk {
			d.Format = "qcow2"
		} else if d.Format == "" {
			d.Format = "raw"
		}
	}
	for i := range spec.Interfaces {
		n := &spec.Interfaces[i]
		hw, _ := net.ParseMAC(n.MAC)
		n.MAC = hw.String()
		if n.Model == "" {
			n.Model = domainxml.DefaultNICModel
		}
	}
	return spec
}

func cloneSpec(s virt.DomainSpec) virt.DomainSpec {
	s.OEMStrings = append([]string(nil), s.OEMStrings...)
	s.Disks = append([]virt.DiskSpec(nil), s.Disks...)
	s.Interfaces = append([]virt.InterfaceSpec(nil), s.Interfaces...)
	for i := range s.Interfaces {
		s.Interfaces[i].FilterParams = append([]virt.FilterParam(nil), s.Interfaces[i].FilterParams...)
	}
	s.Metadata = cloneMetadata(s.Metadata)
	return s
}

// observe builds the virt.Domain view of d the way the libvirt adapter
// does: the persistent definition rendered and parsed back by domainxml,
// plus state, autostart and the VNC display. Callers hold h.mu.
func (h *Hypervisor) observe(d *domain) virt.Domain {
	def := cloneSpec(d.def)
	def.UUID = d.uuid
	out := virt.Domain{
		Name:        def.Name,
		UUID:        d.uuid,
		Accel:       def.Accel,
		Machine:     def.Machine,
		VCPUs:       def.VCPUs,
		MemoryBytes: def.MemoryBytes,
		Disks:       def.Disks,
		Interfaces:  def.Interfaces,
		Metadata:    def.Metadata,
	}
	if doc, err := domainxml.DomainXML(def); err == nil {
		if parsed, err := domainxml.ParseDomain(doc); err == nil {
			out = parsed
		}
	}
	out.State, out.Persistent, out.Autostart = d.state, true, d.autostart
	if d.state == virt.StateShutoff {
		out.StopReason = d.stopReason
		if out.StopReason == "" {
			out.StopReason = virt.StopUnknown
		}
	}
	if d.state == virt.StateRunning || d.state == virt.StatePaused {
		out.VNC = fmt.Sprintf("127.0.0.1:%d", d.vncPort)
	}
	return out
}

func (h *Hypervisor) lookupDomain(op, name string) (*domain, error) {
	d, ok := h.domains[name]
	if !ok {
		return nil, errf(op, name, virt.ErrNotFound, "no domain with matching name '%s'", name)
	}
	return d, nil
}

// ListDomains implements virt.Hypervisor; domains are sorted by name.
func (h *Hypervisor) ListDomains(ctx context.Context) ([]virt.Domain, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin(ctx, "ListDomains", "list domains", ""); err != nil {
		return nil, err
	}
	out := make([]virt.Domain, 0, len(h.domains))
	for _, name := range sortedKeys(h.domains) {
		out = append(out, h.observe(h.domains[name]))
	}
	return out, nil
}

// GetDomain implements virt.Hypervisor.
func (h *Hypervisor) GetDomain(ctx context.Context, name string) (virt.Domain, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "get domain"
	if err := h.begin(ctx, "GetDomain", op, name); err != nil {
		return virt.Domain{}, err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return virt.Domain{}, err
	}
	return h.observe(d), nil
}

// DefineDomain implements virt.Hypervisor.
func (h *Hypervisor) DefineDomain(ctx context.Context, spec virt.DomainSpec) (virt.Domain, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "define domain"
	if err := h.begin(ctx, "DefineDomain", op, spec.Name); err != nil {
		return virt.Domain{}, err
	}
	if _, err := domainxml.Domain(spec); err != nil {
		return virt.Domain{}, opErr(op, spec.Name, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	spec.UUID = strings.ToLower(spec.UUID)
	for name, other := range h.domains {
		if name != spec.Name && other.uuid == spec.UUID {
			return virt.Domain{}, errf(op, spec.Name, virt.ErrExists, "domain '%s' is already defined with uuid %s", name, spec.UUID)
		}
	}
	existing := h.domains[spec.Name]
	if existing != nil && spec.UUID != existing.uuid {
		return virt.Domain{}, errf(op, spec.Name, virt.ErrExists, "domain '%s' already exists with uuid %s", spec.Name, existing.uuid)
	}
	norm := normalise(spec)
	norm.Machine = h.pinMachine(spec.Machine)
	if existing != nil {
		if machineFamily(existing.def.Machine) == machineFamily(spec.Machine) {
			norm.Machine = existing.def.Machine
		}
		existing.def = norm
		h.emit(spec.Name, virt.EventDefined, "updated")
		return h.observe(existing), nil
	}
	d := &domain{uuid: spec.UUID, def: norm, state: virt.StateShutoff, snaps: map[string]*snapshot{}}
	h.domains[spec.Name] = d
	h.emit(spec.Name, virt.EventDefined, "added")
	return h.observe(d), nil
}

// UndefineDomain implements virt.Hypervisor. Snapshot metadata goes with
// the domain; internal snapshots stay inside the disk files, as on libvirt.
func (h *Hypervisor) UndefineDomain(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "undefine domain"
	if err := h.begin(ctx, "UndefineDomain", op, name); err != nil {
		return err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	if d.state != virt.StateShutoff {
		return errf(op, name, virt.ErrInvalidState, "domain is %s; it must be shut off", d.state)
	}
	delete(h.domains, name)
	h.emit(name, virt.EventUndefined, "removed")
	return nil
}

// StartDomain implements virt.Hypervisor. Like libvirt it refuses to start
// a domain whose disks, networks or nwfilters are missing.
func (h *Hypervisor) StartDomain(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "start domain"
	if err := h.begin(ctx, "StartDomain", op, name); err != nil {
		return err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	if d.state != virt.StateShutoff {
		return errf(op, name, virt.ErrInvalidState, "domain is already running")
	}
	if err := h.startable(d.def); err != nil {
		return opErr(op, name, err)
	}
	live := cloneSpec(d.def)
	d.live = &live
	d.state = virt.StateRunning
	d.vncPort = h.freeVNCPort()
	d.diskWrites = 0 // a new QEMU process
	d.guest = h.bootGuest(live)
	// libvirt 9.0 reports the CPUs starting before the domain itself.
	h.emit(name, virt.EventResumed, "unpaused")
	h.emit(name, virt.EventStarted, "booted")
	return nil
}

// startable checks what QEMU needs to start def: its disk files (and their
// backing chains), its networks (active) and the nwfilters its NICs use.
func (h *Hypervisor) startable(def virt.DomainSpec) error {
	for _, disk := range def.Disks {
		if disk.Path == "" {
			continue
		}
		if err := h.checkChain(disk.Path); err != nil {
			return err
		}
	}
	for _, nic := range def.Interfaces {
		n, ok := h.networks[nic.Network]
		if !ok {
			return fmt.Errorf("%w: no network with matching name '%s'", virt.ErrNotFound, nic.Network)
		}
		if n.live == nil {
			return fmt.Errorf("%w: network '%s' is not active", virt.ErrInvalidState, nic.Network)
		}
		if nic.Filter != "" {
			if missing := h.missingFilter(nic.Filter); missing != "" {
				return fmt.Errorf("%w: referenced filter '%s' is missing", virt.ErrNotFound, missing)
			}
		}
	}
	return nil
}

// checkChain checks that path and its backing files exist.
func (h *Hypervisor) checkChain(path string) error {
	for depth := 0; path != "" && depth < 16; depth++ {
		f, ok := h.files[path]
		if !ok {
			return fmt.Errorf("%w: cannot access storage file '%s': No such file or directory", virt.ErrNotFound, path)
		}
		path = f.backing
	}
	return nil
}

func (h *Hypervisor) freeVNCPort() int {
	used := map[int]bool{}
	for _, d := range h.domains {
		if d.live != nil {
			used[d.vncPort] = true
		}
	}
	p := 5900
	for used[p] {
		p++
	}
	return p
}

// ShutdownDomain implements virt.Hypervisor: the guest powers off at once
// (emitting shutdown/guest and stopped/shutdown) unless IgnoreACPI is set.
func (h *Hypervisor) ShutdownDomain(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "shut down domain"
	if err := h.begin(ctx, "ShutdownDomain", op, name); err != nil {
		return err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	if d.live == nil {
		return errf(op, name, virt.ErrInvalidState, "domain is not running")
	}
	d.shutdownRequests++
	if !h.ignoreACPI && d.state == virt.StateRunning {
		h.powerOff(name, d)
	}
	return nil
}

// powerOff stops d the way a guest powering itself off does.
func (h *Hypervisor) powerOff(name string, d *domain) {
	h.emit(name, virt.EventShutdown, "guest")
	h.stop(d, virt.StopShutdown)
	h.emit(name, virt.EventStopped, "shutdown")
}

// stop moves d to shut off for reason; the persistent definition applies
// from now on.
func (h *Hypervisor) stop(d *domain, reason virt.StopReason) {
	d.live = nil
	d.state = virt.StateShutoff
	d.stopReason = reason
	d.vncPort = 0
	d.guest = nil
}

// DestroyDomain implements virt.Hypervisor.
func (h *Hypervisor) DestroyDomain(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "destroy domain"
	if err := h.begin(ctx, "DestroyDomain", op, name); err != nil {
		return err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	if d.live == nil {
		return errf(op, name, virt.ErrInvalidState, "domain is not running")
	}
	// QEMU reports the SIGTERM as a host-initiated shutdown first.
	h.emit(name, virt.EventShutdown, "host")
	h.stop(d, virt.StopDestroyed)
	h.emit(name, virt.EventStopped, "destroyed")
	return nil
}

// SetAutostart implements virt.Hypervisor.
func (h *Hypervisor) SetAutostart(ctx context.Context, name string, on bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "set autostart of domain"
	if err := h.begin(ctx, "SetAutostart", op, name); err != nil {
		return err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	d.autostart = on
	return nil
}

// SetMetadata implements virt.Hypervisor: the persistent definition and,
// when the domain runs, the live one get the new metadata.
func (h *Hypervisor) SetMetadata(ctx context.Context, name string, m *virt.Metadata) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "set metadata of domain"
	if err := h.begin(ctx, "SetMetadata", op, name); err != nil {
		return err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	if _, err := domainxml.MetadataFragment(m); err != nil {
		return opErr(op, name, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	d.def.Metadata = cloneMetadata(m)
	if d.live != nil {
		d.live.Metadata = cloneMetadata(m)
	}
	return nil
}

// ChangeMedia implements virt.Hypervisor.
func (h *Hypervisor) ChangeMedia(ctx context.Context, domainName, target, path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "change media of domain"
	if err := h.begin(ctx, "ChangeMedia", op, domainName); err != nil {
		return err
	}
	d, err := h.lookupDomain(op, domainName)
	if err != nil {
		return err
	}
	idx := -1
	for i, disk := range d.def.Disks {
		if disk.Target == target {
			idx = i
		}
	}
	if idx < 0 {
		return errf(op, domainName, virt.ErrNotFound, "no disk with target %q", target)
	}
	if d.def.Disks[idx].Device != virt.DeviceCDROM {
		return errf(op, domainName, virt.ErrInvalid, "disk %s is not a CD-ROM drive", target)
	}
	if path != "" {
		if _, ok := h.files[path]; !ok {
			return errf(op, domainName, virt.ErrNotFound, "cannot access file '%s': No such file or directory", path)
		}
	}
	d.def.Disks[idx].Path = path
	if d.live != nil {
		for i := range d.live.Disks {
			if d.live.Disks[i].Target == target {
				d.live.Disks[i].Path = path
			}
		}
	}
	return nil
}

// GuestPowerOff simulates the guest of a running domain powering itself
// off (as Windows does at the end of setup): the domain shuts off and
// Events sees shutdown/guest then stopped/shutdown.
func (h *Hypervisor) GuestPowerOff(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "power off guest of domain"
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	if d.live == nil {
		return errf(op, name, virt.ErrInvalidState, "domain is not running")
	}
	h.powerOff(name, d)
	return nil
}

// ShutdownRequests reports how many times ShutdownDomain was called for the
// domain (0 for an unknown domain).
func (h *Hypervisor) ShutdownRequests(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.domains[name]; ok {
		return d.shutdownRequests
	}
	return 0
}

// WriteDisk simulates the guest writing to its disks: the content
// generation of every writable disk of the domain (its live definition
// when it runs) goes up by one.
func (h *Hypervisor) WriteDisk(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "write disks of domain"
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	def := d.def
	if d.live != nil {
		def = *d.live
	}
	for _, disk := range def.Disks {
		if disk.Device != virt.DeviceDisk {
			continue
		}
		f, ok := h.files[disk.Path]
		if !ok {
			return errf(op, name, virt.ErrNotFound, "disk %s: no file %s", disk.Target, disk.Path)
		}
		f.gen++
	}
	return nil
}

// SetInterfaceFilter implements virt.Hypervisor: the NIC of the persistent
// definition and, when the domain runs, of the live one (whose binding
// FilterBindings then reports) gets the new filter reference.
func (h *Hypervisor) SetInterfaceFilter(ctx context.Context, name, mac, filter string, params []virt.FilterParam) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "set traffic filter of domain"
	if err := h.begin(ctx, "SetInterfaceFilter", op, name); err != nil {
		return err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return err
	}
	if filter != "" {
		if _, ok := h.filters[filter]; !ok {
			return errf(op, name, virt.ErrNotFound, "referenced filter '%s' is missing", filter)
		}
	}
	set := func(spec *virt.DomainSpec) bool {
		for i := range spec.Interfaces {
			n := &spec.Interfaces[i]
			if strings.EqualFold(n.MAC, mac) {
				n.Filter = filter
				n.FilterParams = nil
				if filter != "" {
					n.FilterParams = append([]virt.FilterParam(nil), params...)
				}
				return true
			}
		}
		return false
	}
	if !set(&d.def) {
		return errf(op, name, virt.ErrNotFound, "no interface with MAC %s", mac)
	}
	if d.live != nil {
		set(d.live)
	}
	return nil
}

// RemoveLiveFilter removes the filter reference of a running domain's NIC
// from its live definition only, as `virsh update-device --live` does:
// the persistent definition still references the filter.
func (h *Hypervisor) RemoveLiveFilter(name, mac string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.lookupDomain("remove live filter of domain", name)
	if err != nil {
		return err
	}
	if d.live == nil {
		return errf("remove live filter of domain", name, virt.ErrInvalidState, "domain is not running")
	}
	for i := range d.live.Interfaces {
		if strings.EqualFold(d.live.Interfaces[i].MAC, mac) {
			d.live.Interfaces[i].Filter, d.live.Interfaces[i].FilterParams = "", nil
			return nil
		}
	}
	return errf("remove live filter of domain", name, virt.ErrNotFound, "no interface with MAC %s", mac)
}
