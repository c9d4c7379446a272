package libvirt

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

func (h *Hypervisor) lookupNetwork(ctx context.Context, op, name string) (*libvirt.Network, error) {
	if err := alive(ctx, op, name); err != nil {
		return nil, err
	}
	n, err := h.conn.LookupNetworkByName(name)
	if err != nil {
		return nil, wrap(op, name, err)
	}
	return n, nil
}

// parseNetwork is domainxml.ParseNetwork plus the DHCP range and
// reservations of the first IPv4 <ip>.
func parseNetwork(doc string) (virt.Network, error) {
	out, err := domainxml.ParseNetwork(doc)
	if err != nil {
		return virt.Network{}, err
	}
	if !out.DHCP || out.DHCPStart.IsValid() || len(out.DHCPHosts) > 0 {
		return out, nil // nothing to add (or the parser already did)
	}
	var n libvirtxml.Network
	if err := n.Unmarshal(doc); err != nil {
		return virt.Network{}, fmt.Errorf("parse network: %w", err)
	}
	for _, ip := range n.IPs {
		if ip.Address != out.HostAddress.String() || ip.DHCP == nil {
			continue
		}
		if len(ip.DHCP.Ranges) > 0 {
			out.DHCPStart, _ = netip.ParseAddr(ip.DHCP.Ranges[0].Start)
			out.DHCPEnd, _ = netip.ParseAddr(ip.DHCP.Ranges[0].End)
		}
		for _, host := range ip.DHCP.Hosts {
			a, err := netip.ParseAddr(host.IP)
			if err != nil {
				return virt.Network{}, fmt.Errorf("parse network %q: DHCP host %q: %w", n.Name, host.IP, err)
			}
			out.DHCPHosts = append(out.DHCPHosts, virt.DHCPHost{MAC: strings.ToLower(host.MAC), Name: host.Name, IP: a})
		}
		break
	}
	return out, nil
}

// networkShape is what decides how a running network behaves: two
// definitions with the same shape need no restart (metadata does not count).
func networkShape(n virt.Network) virt.Network {
	return virt.Network{
		Bridge: n.Bridge, MAC: n.MAC, ForwardMode: n.ForwardMode, Subnet: n.Subnet, HostAddress: n.HostAddress,
		DHCP: n.DHCP, DHCPStart: n.DHCPStart, DHCPEnd: n.DHCPEnd, DHCPHosts: n.DHCPHosts,
		DNS: n.DNS, IPv6: n.IPv6, PortIsolated: n.PortIsolated,
	}
}

// observeNetwork reads a network: its persistent definition, run state,
// autostart and whether the running network differs from the definition.
func (h *Hypervisor) observeNetwork(ctx context.Context, op, name string, n *libvirt.Network) (virt.Network, error) {
	if err := alive(ctx, op, name); err != nil {
		return virt.Network{}, err
	}
	doc, err := n.GetXMLDesc(libvirt.NETWORK_XML_INACTIVE)
	if err != nil {
		return virt.Network{}, wrap(op, name, err)
	}
	out, err := parseNetwork(doc)
	if err != nil {
		return virt.Network{}, fmt.Errorf("%s %q: %w", op, name, err)
	}
	if out.Active, err = n.IsActive(); err != nil {
		return virt.Network{}, wrap(op, name, err)
	}
	if out.Autostart, err = n.GetAutostart(); err != nil {
		return virt.Network{}, wrap(op, name, err)
	}
	if out.Active {
		if err := alive(ctx, op, name); err != nil {
			return virt.Network{}, err
		}
		live, err := n.GetXMLDesc(0)
		if err != nil {
			return virt.Network{}, wrap(op, name, err)
		}
		l, err := parseNetwork(live)
		if err != nil {
			return virt.Network{}, fmt.Errorf("%s %q: live definition: %w", op, name, err)
		}
		out.Stale = !reflect.DeepEqual(networkShape(l), networkShape(out))
		if out.Stale {
			out.Running = &l
		}
	}
	return out, nil
}

// ports counts the network's active ports (NICs of running domains).
func ports(op, name string, n *libvirt.Network) (int, error) {
	ps, err := n.ListAllPorts(0)
	if err != nil {
		return 0, wrap(op, name, err)
	}
	for i := range ps {
		ps[i].Free()
	}
	return len(ps), nil
}

// ListNetworks implements virt.Hypervisor; networks are sorted by name.
func (h *Hypervisor) ListNetworks(ctx context.Context) ([]virt.Network, error) {
	const op = "list networks"
	if err := alive(ctx, op, ""); err != nil {
		return nil, err
	}
	nets, err := h.conn.ListAllNetworks(0)
	if err != nil {
		return nil, wrap(op, "", err)
	}
	return observeAll(op, nets, func(name string, n *libvirt.Network) (virt.Network, error) {
		return h.observeNetwork(ctx, "read network", name, n)
	}, func(n virt.Network) string { return n.Name })
}

// GetNetwork implements virt.Hypervisor.
func (h *Hypervisor) GetNetwork(ctx context.Context, name string) (virt.Network, error) {
	const op = "get network"
	n, err := h.lookupNetwork(ctx, op, name)
	if err != nil {
		return virt.Network{}, err
	}
	defer n.Free()
	return h.observeNetwork(ctx, op, name, n)
}

// DefineNetwork implements virt.Hypervisor. The metadata is part of the
// XML defined (libvirt 9.0 has no network metadata API). A running network
// whose behaviour changes is restarted when no NIC is plugged into it;
// otherwise DHCP reservations are changed live (virNetworkUpdate) when they
// are all that changed, and any other change waits for the next restart
// (Stale).
func (h *Hypervisor) DefineNetwork(ctx context.Context, spec virt.NetworkSpec) (virt.Network, error) {
	const op = "define network"
	if err := alive(ctx, op, spec.Name); err != nil {
		return virt.Network{}, err
	}
	doc, err := domainxml.NetworkXML(spec)
	if err != nil {
		return virt.Network{}, invalid(op, spec.Name, err)
	}
	r := newRevert()
	defer r.fail()
	old, err := h.conn.LookupNetworkByName(spec.Name)
	switch {
	case err == nil:
		prev, err := old.GetXMLDesc(libvirt.NETWORK_XML_INACTIVE)
		old.Free()
		if err != nil {
			return virt.Network{}, wrap(op, spec.Name, err)
		}
		r.add(func() { // put the previous definition back
			if n, err := h.conn.NetworkDefineXML(prev); err == nil {
				n.Free()
			}
		})
	case isNotFound(err):
		r.add(func() { h.forgetNetwork(spec.Name) })
	default:
		return virt.Network{}, wrap(op, spec.Name, err)
	}
	if err := alive(ctx, op, spec.Name); err != nil {
		return virt.Network{}, err
	}
	n, err := h.conn.NetworkDefineXMLFlags(doc, libvirt.NETWORK_DEFINE_VALIDATE)
	if err != nil {
		return virt.Network{}, wrap(op, spec.Name, err)
	}
	defer n.Free()
	cur, err := h.observeNetwork(ctx, op, spec.Name, n)
	if err != nil {
		return virt.Network{}, err
	}
	switch {
	case !cur.Active:
		if err := alive(ctx, op, spec.Name); err != nil {
			return virt.Network{}, err
		}
		if err := n.Create(); err != nil {
			return virt.Network{}, wrap("start network", spec.Name, err)
		}
	case cur.Stale:
		used, err := ports(op, spec.Name, n)
		if err != nil {
			return virt.Network{}, err
		}
		if used > 0 && onlyHostsDiffer(*cur.Running, cur) {
			// VMs added to (or removed from) a network in use: their
			// reservations change live, so a new VM gets the address its
			// traffic filter expects without a restart.
			if err := updateHostsLive(op, spec.Name, n, cur.Running.DHCPHosts, cur.DHCPHosts); err != nil {
				return virt.Network{}, err
			}
			used = -1 // nothing left to restart for
		}
		if used == 0 {
			if err := n.Destroy(); err != nil {
				return virt.Network{}, wrap("stop network", spec.Name, err)
			}
			if err := n.Create(); err != nil {
				return virt.Network{}, wrap("restart network", spec.Name, err)
			}
		}
	}
	if err := n.SetAutostart(true); err != nil {
		return virt.Network{}, wrap("autostart network", spec.Name, err)
	}
	out, err := h.observeNetwork(ctx, op, spec.Name, n)
	if err != nil {
		return virt.Network{}, err
	}
	r.success()
	return out, nil
}

// onlyHostsDiffer reports whether two observations of a network differ in
// their DHCP reservations only.
func onlyHostsDiffer(a, b virt.Network) bool {
	a, b = networkShape(a), networkShape(b)
	a.DHCPHosts, b.DHCPHosts = nil, nil
	return reflect.DeepEqual(a, b)
}

// updateHostsLive makes the running network's DHCP reservations want
// instead of have (virNetworkUpdate on the live network; dnsmasq reloads
// its host file).
func updateHostsLive(op, name string, n *libvirt.Network, have, want []virt.DHCPHost) error {
	key := func(h virt.DHCPHost) string { return strings.ToLower(h.MAC) + "|" + h.Name + "|" + h.IP.String() }
	in := func(list []virt.DHCPHost, h virt.DHCPHost) bool {
		for _, x := range list {
			if key(x) == key(h) {
				return true
			}
		}
		return false
	}
	update := func(cmd libvirt.NetworkUpdateCommand, h virt.DHCPHost) error {
		doc, err := (&libvirtxml.NetworkDHCPHost{MAC: h.MAC, Name: h.Name, IP: h.IP.String()}).Marshal()
		if err != nil {
			return fmt.Errorf("%s %q: DHCP host %s: %w", op, name, h.MAC, err)
		}
		return wrap(op, name, n.Update(cmd, libvirt.NETWORK_SECTION_IP_DHCP_HOST, -1, doc, libvirt.NETWORK_UPDATE_AFFECT_LIVE))
	}
	for _, h := range have {
		if !in(want, h) {
			if err := update(libvirt.NETWORK_UPDATE_COMMAND_DELETE, h); err != nil {
				return err
			}
		}
	}
	for _, h := range want {
		if !in(have, h) {
			if err := update(libvirt.NETWORK_UPDATE_COMMAND_ADD_LAST, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// forgetNetwork stops and undefines a network this call created (revert).
func (h *Hypervisor) forgetNetwork(name string) {
	n, err := h.conn.LookupNetworkByName(name)
	if err != nil {
		return
	}
	defer n.Free()
	if active, _ := n.IsActive(); active {
		_ = n.Destroy()
	}
	_ = n.Undefine()
}

// DeleteNetwork implements virt.Hypervisor. A network with NICs plugged in
// is refused (ErrInUse) rather than cut from under running domains.
func (h *Hypervisor) DeleteNetwork(ctx context.Context, name string) error {
	const op = "delete network"
	n, err := h.lookupNetwork(ctx, op, name)
	if err != nil {
		return err
	}
	defer n.Free()
	active, err := n.IsActive()
	if err != nil {
		return wrap(op, name, err)
	}
	if active {
		used, err := ports(op, name, n)
		if err != nil {
			return err
		}
		if used > 0 {
			return failf(op, name, virt.ErrInUse, "%d interfaces of running domains are plugged into it", used)
		}
		if err := alive(ctx, op, name); err != nil {
			return err
		}
		if err := n.Destroy(); err != nil {
			return wrap(op, name, err)
		}
	}
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	return wrap(op, name, n.Undefine())
}

// Leases implements virt.Hypervisor; leases are sorted by address.
func (h *Hypervisor) Leases(ctx context.Context, name string) ([]virt.Lease, error) {
	const op = "get DHCP leases of network"
	n, err := h.lookupNetwork(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer n.Free()
	active, err := n.IsActive()
	if err != nil {
		return nil, wrap(op, name, err)
	}
	if !active {
		return nil, failf(op, name, virt.ErrInvalidState, "network is not active")
	}
	ls, err := n.GetDHCPLeases()
	if err != nil {
		return nil, wrap(op, name, err)
	}
	out := make([]virt.Lease, 0, len(ls))
	for _, l := range ls {
		ip, err := netip.ParseAddr(l.IPaddr)
		if err != nil {
			continue
		}
		out = append(out, virt.Lease{MAC: strings.ToLower(l.Mac), IP: ip, Hostname: l.Hostname, Expiry: l.ExpiryTime.UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out, nil
}

// BridgePorts implements virt.Hypervisor through libvirt's interface
// driver, which reads the bridge's members on the libvirt host (udev
// backend); sorted by name.
func (h *Hypervisor) BridgePorts(ctx context.Context, bridge string) ([]virt.BridgePort, error) {
	const op = "list ports of bridge"
	if err := alive(ctx, op, bridge); err != nil {
		return nil, err
	}
	iface, err := h.conn.LookupInterfaceByName(bridge)
	if err != nil {
		return nil, wrap(op, bridge, err)
	}
	defer iface.Free()
	doc, err := iface.GetXMLDesc(0)
	if err != nil {
		return nil, wrap(op, bridge, err)
	}
	var def libvirtxml.Interface
	if err := def.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("%s %q: parse: %w", op, bridge, err)
	}
	if def.Bridge == nil {
		return nil, failf(op, bridge, virt.ErrNotFound, "interface %s is not a bridge", bridge)
	}
	out := []virt.BridgePort{}
	for _, m := range def.Bridge.Interfaces {
		p := virt.BridgePort{Name: m.Name}
		if m.MAC != nil {
			p.MAC = strings.ToLower(m.MAC.Address)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
