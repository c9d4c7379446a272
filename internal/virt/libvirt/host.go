package libvirt

import (
	"context"
	"fmt"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// hostArch is the guest architecture legacyvm runs (32-bit Windows 7 also
// runs on x86_64 emulators).
const hostArch = "x86_64"

func (h *Hypervisor) hostInfo(ctx context.Context) (virt.HostInfo, error) {
	const op = "host info of"
	info := virt.HostInfo{URI: h.uri, Machines: map[string]string{}}
	var err error
	if info.LibVersion, err = libvirt.GetVersion(); err != nil {
		return virt.HostInfo{}, wrap(op, h.uri, err)
	}
	if err := alive(ctx, op, h.uri); err != nil {
		return virt.HostInfo{}, err
	}
	if info.DaemonVersion, err = h.conn.GetLibVersion(); err != nil {
		return virt.HostInfo{}, wrap(op, h.uri, err)
	}
	if err := alive(ctx, op, h.uri); err != nil {
		return virt.HostInfo{}, err
	}
	if info.Hostname, err = h.conn.GetHostname(); err != nil {
		return virt.HostInfo{}, wrap(op, h.uri, err)
	}

	// Is KVM offered? Domain capabilities for virttype kvm fail when not.
	if err := alive(ctx, op, h.uri); err != nil {
		return virt.HostInfo{}, err
	}
	virttype := string(virt.AccelTCG)
	if doc, err := h.conn.GetDomainCapabilities("", hostArch, "", string(virt.AccelKVM), 0); err == nil {
		var dc libvirtxml.DomainCaps
		if dc.Unmarshal(doc) == nil && dc.Domain == string(virt.AccelKVM) {
			info.KVM = true
			virttype = string(virt.AccelKVM)
		}
	}

	// Machine aliases: the capabilities list them with their canonical
	// (versioned) type for the accelerator in use.
	if err := alive(ctx, op, h.uri); err != nil {
		return virt.HostInfo{}, err
	}
	doc, err := h.conn.GetCapabilities()
	if err != nil {
		return virt.HostInfo{}, wrap(op, h.uri, err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(doc); err != nil {
		return virt.HostInfo{}, fmt.Errorf("%s %q: parse capabilities: %w", op, h.uri, err)
	}
	for _, g := range caps.Guests {
		if g.OSType != "hvm" || g.Arch.Name != hostArch {
			continue
		}
		info.Emulator = g.Arch.Emulator
		machines := g.Arch.Machines
		for _, d := range g.Arch.Domains {
			if d.Type == virttype {
				if d.Emulator != "" {
					info.Emulator = d.Emulator
				}
				if len(d.Machines) > 0 {
					machines = d.Machines
				}
			}
		}
		for _, m := range machines {
			if m.Canonical != "" {
				info.Machines[m.Name] = m.Canonical
			}
		}
	}
	return info, nil
}
