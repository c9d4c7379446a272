package libvirt

import (
	"context"
	"fmt"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// undefineFlags removes everything libvirt keeps beside the definition.
// (Internal snapshots stay inside the qcow2 images: callers delete
// snapshots first.)
const undefineFlags = libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE |
	libvirt.DOMAIN_UNDEFINE_NVRAM | libvirt.DOMAIN_UNDEFINE_CHECKPOINTS_METADATA

// lookupDomain finds a domain by name; the caller frees it.
func (h *Hypervisor) lookupDomain(ctx context.Context, op, name string) (*libvirt.Domain, error) {
	if err := alive(ctx, op, name); err != nil {
		return nil, err
	}
	d, err := h.conn.LookupDomainByName(name)
	if err != nil {
		return nil, wrap(op, name, err)
	}
	return d, nil
}

// domainState maps libvirt's state.
func domainState(s libvirt.DomainState) virt.DomainState {
	switch s {
	case libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_BLOCKED:
		return virt.StateRunning
	case libvirt.DOMAIN_PAUSED, libvirt.DOMAIN_PMSUSPENDED:
		return virt.StatePaused
	case libvirt.DOMAIN_SHUTOFF:
		return virt.StateShutoff
	case libvirt.DOMAIN_SHUTDOWN:
		return virt.StateShutdown
	case libvirt.DOMAIN_CRASHED:
		return virt.StateCrashed
	}
	return virt.StateOther
}

// stopReason maps libvirt's shutoff reason.
func stopReason(r libvirt.DomainShutoffReason) virt.StopReason {
	switch r {
	case libvirt.DOMAIN_SHUTOFF_SHUTDOWN:
		return virt.StopShutdown
	case libvirt.DOMAIN_SHUTOFF_DESTROYED:
		return virt.StopDestroyed
	case libvirt.DOMAIN_SHUTOFF_CRASHED:
		return virt.StopCrashed
	case libvirt.DOMAIN_SHUTOFF_FROM_SNAPSHOT:
		return virt.StopFromSnapshot
	case libvirt.DOMAIN_SHUTOFF_UNKNOWN:
		return virt.StopUnknown
	}
	return virt.StopOther
}

// observe reads a domain: its persistent definition parsed by domainxml,
// state, persistence, autostart and, when it runs, its VNC display from the
// live definition.
func (h *Hypervisor) observe(ctx context.Context, op, name string, d *libvirt.Domain) (virt.Domain, error) {
	if err := alive(ctx, op, name); err != nil {
		return virt.Domain{}, err
	}
	doc, err := d.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
	if err != nil {
		return virt.Domain{}, wrap(op, name, err)
	}
	out, err := domainxml.ParseDomain(doc)
	if err != nil {
		return virt.Domain{}, fmt.Errorf("%s %q: %w", op, name, err)
	}
	if err := alive(ctx, op, name); err != nil {
		return virt.Domain{}, err
	}
	state, reason, err := d.GetState()
	if err != nil {
		return virt.Domain{}, wrap(op, name, err)
	}
	out.State = domainState(state)
	if state == libvirt.DOMAIN_SHUTOFF {
		out.StopReason = stopReason(libvirt.DomainShutoffReason(reason))
	}
	if out.Persistent, err = d.IsPersistent(); err != nil {
		return virt.Domain{}, wrap(op, name, err)
	}
	if out.Autostart, err = d.GetAutostart(); err != nil {
		return virt.Domain{}, wrap(op, name, err)
	}
	out.VNC = ""
	if state != libvirt.DOMAIN_SHUTOFF {
		if err := alive(ctx, op, name); err != nil {
			return virt.Domain{}, err
		}
		live, err := d.GetXMLDesc(0)
		if err != nil {
			return virt.Domain{}, wrap(op, name, err)
		}
		if l, err := domainxml.ParseDomain(live); err == nil {
			out.VNC = l.VNC
		}
	}
	return out, nil
}

// ListDomains implements virt.Hypervisor; domains are sorted by name.
// Domains that vanish while being read are left out.
func (h *Hypervisor) ListDomains(ctx context.Context) ([]virt.Domain, error) {
	const op = "list domains"
	if err := alive(ctx, op, ""); err != nil {
		return nil, err
	}
	doms, err := h.conn.ListAllDomains(0)
	if err != nil {
		return nil, wrap(op, "", err)
	}
	return observeAll(op, doms, func(name string, d *libvirt.Domain) (virt.Domain, error) {
		return h.observe(ctx, "read domain", name, d)
	}, func(d virt.Domain) string { return d.Name })
}

// GetDomain implements virt.Hypervisor.
func (h *Hypervisor) GetDomain(ctx context.Context, name string) (virt.Domain, error) {
	const op = "get domain"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return virt.Domain{}, err
	}
	defer d.Free()
	return h.observe(ctx, op, name, d)
}

// machineFamily is "i440fx" or "q35" for an alias or a versioned type.
func machineFamily(m string) string {
	switch {
	case m == "q35" || strings.HasPrefix(m, "pc-q35-"):
		return "q35"
	case m == "" || m == "pc" || strings.HasPrefix(m, "pc-"):
		return "i440fx"
	}
	return m
}

// DefineDomain implements virt.Hypervisor. The metadata element is part of
// the XML defined (no separate SetMetadata call); libvirt expands a machine
// alias to the versioned type, and an existing domain's versioned type is
// kept when the family matches, so a redefinition never changes the
// hardware Windows was installed on.
func (h *Hypervisor) DefineDomain(ctx context.Context, spec virt.DomainSpec) (virt.Domain, error) {
	const op = "define domain"
	if err := alive(ctx, op, spec.Name); err != nil {
		return virt.Domain{}, err
	}
	if _, err := domainxml.Domain(spec); err != nil {
		return virt.Domain{}, invalid(op, spec.Name, err)
	}
	old, err := h.conn.LookupDomainByName(spec.Name)
	switch {
	case err == nil:
		defer old.Free()
		doc, err := old.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
		if err != nil {
			return virt.Domain{}, wrap(op, spec.Name, err)
		}
		cur, err := domainxml.ParseDomain(doc)
		if err != nil {
			return virt.Domain{}, fmt.Errorf("%s %q: read the existing definition: %w", op, spec.Name, err)
		}
		if machineFamily(cur.Machine) == machineFamily(spec.Machine) {
			spec.Machine = cur.Machine
		}
		if cur.UUID != strings.ToLower(spec.UUID) {
			return virt.Domain{}, failf(op, spec.Name, virt.ErrExists, "domain '%s' already exists with uuid %s", spec.Name, cur.UUID)
		}
	case !isNotFound(err):
		return virt.Domain{}, wrap(op, spec.Name, err)
	}
	doc, err := domainxml.DomainXML(spec)
	if err != nil {
		return virt.Domain{}, invalid(op, spec.Name, err)
	}
	if err := alive(ctx, op, spec.Name); err != nil {
		return virt.Domain{}, err
	}
	d, err := h.conn.DomainDefineXMLFlags(doc, libvirt.DOMAIN_DEFINE_VALIDATE)
	if err != nil {
		return virt.Domain{}, wrap(op, spec.Name, err)
	}
	defer d.Free()
	return h.observe(ctx, op, spec.Name, d)
}

// UndefineDomain implements virt.Hypervisor. A domain that is not shut off
// is refused (libvirt would make a running domain transient instead).
func (h *Hypervisor) UndefineDomain(ctx context.Context, name string) error {
	const op = "undefine domain"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return err
	}
	defer d.Free()
	state, _, err := d.GetState()
	if err != nil {
		return wrap(op, name, err)
	}
	if state != libvirt.DOMAIN_SHUTOFF {
		return failf(op, name, virt.ErrInvalidState, "domain is %s; it must be shut off", domainState(state))
	}
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	return wrap(op, name, d.UndefineFlags(undefineFlags))
}

// StartDomain implements virt.Hypervisor.
// The start runs on a connection of its own (longcall.go): it takes
// seconds (nwfilter instantiation, QEMU launch) and would hold up every
// other call on the shared connection.
func (h *Hypervisor) StartDomain(ctx context.Context, name string) error {
	const op = "start domain"
	return h.longDomainCall(ctx, op, name, func(d *libvirt.Domain) error {
		return wrap(op, name, d.Create())
	})
}

// ShutdownDomain implements virt.Hypervisor: an ACPI power button press.
func (h *Hypervisor) ShutdownDomain(ctx context.Context, name string) error {
	const op = "shut down domain"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return err
	}
	defer d.Free()
	return wrap(op, name, d.ShutdownFlags(libvirt.DOMAIN_SHUTDOWN_ACPI_POWER_BTN))
}

// DestroyDomain implements virt.Hypervisor.
func (h *Hypervisor) DestroyDomain(ctx context.Context, name string) error {
	const op = "destroy domain"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return err
	}
	defer d.Free()
	return wrap(op, name, d.Destroy())
}

// SetAutostart implements virt.Hypervisor.
func (h *Hypervisor) SetAutostart(ctx context.Context, name string, on bool) error {
	const op = "set autostart of domain"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return err
	}
	defer d.Free()
	return wrap(op, name, d.SetAutostart(on))
}

// SetMetadata implements virt.Hypervisor with virDomainSetMetadata on the
// persistent definition and, when the domain runs, the live one.
func (h *Hypervisor) SetMetadata(ctx context.Context, name string, m *virt.Metadata) error {
	const op = "set metadata of domain"
	frag, err := domainxml.MetadataFragment(m)
	if err != nil {
		return failf(op, name, virt.ErrInvalid, "%v", err)
	}
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return err
	}
	defer d.Free()
	flags := libvirt.DOMAIN_AFFECT_CONFIG
	if active, err := d.IsActive(); err == nil && active {
		flags |= libvirt.DOMAIN_AFFECT_LIVE
	}
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	return wrap(op, name, d.SetMetadata(libvirt.DOMAIN_METADATA_ELEMENT, frag, domainxml.MetadataPrefix, domainxml.Namespace, flags))
}

// ChangeMedia implements virt.Hypervisor: the drive's own XML with a new
// (or no) source, applied to the persistent definition and, when the
// domain runs, live (forced, so that a tray the guest locked still opens).
func (h *Hypervisor) ChangeMedia(ctx context.Context, name, target, path string) error {
	const op = "change media of domain"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return err
	}
	defer d.Free()
	def, err := domainDefinition(d, libvirt.DOMAIN_XML_INACTIVE, op, name)
	if err != nil {
		return err
	}
	var disk *libvirtxml.DomainDisk
	if def.Devices != nil {
		for i := range def.Devices.Disks {
			if t := def.Devices.Disks[i].Target; t != nil && t.Dev == target {
				disk = &def.Devices.Disks[i]
			}
		}
	}
	if disk == nil {
		return failf(op, name, virt.ErrNotFound, "no drive with target %s", target)
	}
	if disk.Device != string(virt.DeviceCDROM) {
		return failf(op, name, virt.ErrInvalid, "drive %s is a %s, not a CD-ROM drive", target, disk.Device)
	}
	disk.Source = nil
	if path != "" {
		disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}
	}
	diskXML, err := disk.Marshal()
	if err != nil {
		return fmt.Errorf("%s %q: marshal drive %s: %w", op, name, target, err)
	}
	active, err := d.IsActive()
	if err != nil {
		return wrap(op, name, err)
	}
	flags := libvirt.DOMAIN_DEVICE_MODIFY_CONFIG
	if active {
		flags |= libvirt.DOMAIN_DEVICE_MODIFY_LIVE | libvirt.DOMAIN_DEVICE_MODIFY_FORCE
	}
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	return wrap(op, name, d.UpdateDeviceFlags(diskXML, flags))
}

// SetInterfaceFilter implements virt.Hypervisor: the NIC's own XML (from
// the persistent definition, and from the live one when the domain runs,
// which carries the tap device and alias) with a new filter reference,
// applied with virDomainUpdateDeviceFlags to each. libvirt re-binds the
// filter of the running interface without a restart.
func (h *Hypervisor) SetInterfaceFilter(ctx context.Context, name, mac, filter string, params []virt.FilterParam) error {
	const op = "set traffic filter of domain"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return err
	}
	defer d.Free()
	active, err := d.IsActive()
	if err != nil {
		return wrap(op, name, err)
	}
	type pass struct {
		xmlFlags libvirt.DomainXMLFlags
		flags    libvirt.DomainDeviceModifyFlags
	}
	passes := []pass{{libvirt.DOMAIN_XML_INACTIVE, libvirt.DOMAIN_DEVICE_MODIFY_CONFIG}}
	if active {
		passes = append(passes, pass{0, libvirt.DOMAIN_DEVICE_MODIFY_LIVE})
	}
	for _, p := range passes {
		if err := alive(ctx, op, name); err != nil {
			return err
		}
		def, err := domainDefinition(d, p.xmlFlags, op, name)
		if err != nil {
			return err
		}
		var nic *libvirtxml.DomainInterface
		if def.Devices != nil {
			for i := range def.Devices.Interfaces {
				if m := def.Devices.Interfaces[i].MAC; m != nil && strings.EqualFold(m.Address, mac) {
					nic = &def.Devices.Interfaces[i]
				}
			}
		}
		if nic == nil {
			return failf(op, name, virt.ErrNotFound, "no interface with MAC %s", mac)
		}
		nic.FilterRef = nil
		if filter != "" {
			ref := &libvirtxml.DomainInterfaceFilterRef{Filter: filter}
			for _, fp := range params {
				ref.Parameters = append(ref.Parameters, libvirtxml.DomainInterfaceFilterParam{Name: fp.Name, Value: fp.Value})
			}
			nic.FilterRef = ref
		}
		nicXML, err := nic.Marshal()
		if err != nil {
			return fmt.Errorf("%s %q: marshal interface %s: %w", op, name, mac, err)
		}
		if err := d.UpdateDeviceFlags(nicXML, p.flags); err != nil {
			return wrap(op, name, err)
		}
	}
	return nil
}

// domainDefinition reads and parses d's XML (flags: inactive or live);
// errors name op and the domain.
func domainDefinition(d *libvirt.Domain, flags libvirt.DomainXMLFlags, op, name string) (libvirtxml.Domain, error) {
	var def libvirtxml.Domain
	doc, err := d.GetXMLDesc(flags)
	if err != nil {
		return def, wrap(op, name, err)
	}
	if err := def.Unmarshal(doc); err != nil {
		return def, fmt.Errorf("%s %q: parse definition: %w", op, name, err)
	}
	return def, nil
}
