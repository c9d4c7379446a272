package fake

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// network is one defined network.
type network struct {
	uuid string
	def  virt.NetworkSpec
	// live is the definition the network runs with; nil when inactive.
	live      *virt.NetworkSpec
	autostart bool
	// leases remembers addresses handed out from the DHCP range, by MAC.
	leases map[string]netip.Addr
}

// leaseTime is dnsmasq's default lease time on libvirt networks.
const leaseTime = time.Hour

func cloneNetSpec(s virt.NetworkSpec) virt.NetworkSpec {
	s.DHCPHosts = append([]virt.DHCPHost(nil), s.DHCPHosts...)
	s.Metadata = cloneMetadata(s.Metadata)
	return s
}

// observeNetwork builds the virt.Network view: the persistent definition,
// the run state and whether the running network differs from it.
func (h *Hypervisor) observeNetwork(n *network) virt.Network {
	def := cloneNetSpec(n.def)
	def.UUID = n.uuid
	out := virt.Network{
		Name:         def.Name,
		UUID:         n.uuid,
		Bridge:       def.Bridge,
		MAC:          def.MAC,
		Subnet:       def.Subnet,
		HostAddress:  def.HostAddress,
		DHCP:         def.DHCP,
		DNS:          def.DNS,
		PortIsolated: def.PortIsolated,
		Metadata:     def.Metadata,
	}
	if doc, err := domainxml.NetworkXML(def); err == nil {
		if parsed, err := domainxml.ParseNetwork(doc); err == nil {
			out = parsed
		}
	}
	out.Active, out.Autostart = n.live != nil, n.autostart
	out.Stale = n.live != nil && !reflect.DeepEqual(stripMeta(*n.live), stripMeta(def))
	if def.DHCP {
		out.DHCPStart, out.DHCPEnd, out.DHCPHosts = def.DHCPStart, def.DHCPEnd, def.DHCPHosts
	}
	if out.Stale {
		live := h.observeNetwork(&network{uuid: n.uuid, def: *n.live})
		live.Active, live.Autostart = false, false
		out.Running = &live
	}
	return out
}

// onlyHostsDiffer reports whether two definitions differ in their DHCP
// reservations (and metadata) only.
func onlyHostsDiffer(a, b virt.NetworkSpec) bool {
	a, b = stripMeta(a), stripMeta(b)
	a.DHCPHosts, b.DHCPHosts = nil, nil
	return reflect.DeepEqual(a, b)
}

// stripMeta drops what does not change a running network (its metadata).
func stripMeta(s virt.NetworkSpec) virt.NetworkSpec {
	s.Metadata = nil
	if len(s.DHCPHosts) == 0 {
		s.DHCPHosts = nil
	}
	return s
}

func (h *Hypervisor) lookupNetwork(op, name string) (*network, error) {
	n, ok := h.networks[name]
	if !ok {
		return nil, errf(op, name, virt.ErrNotFound, "no network with matching name '%s'", name)
	}
	return n, nil
}

// networkInUse reports whether a running domain has a NIC on the network.
func (h *Hypervisor) networkInUse(name string) bool {
	for _, d := range h.domains {
		if d.live == nil {
			continue
		}
		for _, nic := range d.live.Interfaces {
			if nic.Network == name {
				return true
			}
		}
	}
	return false
}

// ListNetworks implements virt.Hypervisor; networks are sorted by name.
func (h *Hypervisor) ListNetworks(ctx context.Context) ([]virt.Network, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin(ctx, "ListNetworks", "list networks", ""); err != nil {
		return nil, err
	}
	out := make([]virt.Network, 0, len(h.networks))
	for _, name := range sortedKeys(h.networks) {
		out = append(out, h.observeNetwork(h.networks[name]))
	}
	return out, nil
}

// GetNetwork implements virt.Hypervisor.
func (h *Hypervisor) GetNetwork(ctx context.Context, name string) (virt.Network, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "get network"
	if err := h.begin(ctx, "GetNetwork", op, name); err != nil {
		return virt.Network{}, err
	}
	n, err := h.lookupNetwork(op, name)
	if err != nil {
		return virt.Network{}, err
	}
	return h.observeNetwork(n), nil
}

// DefineNetwork implements virt.Hypervisor.
func (h *Hypervisor) DefineNetwork(ctx context.Context, spec virt.NetworkSpec) (virt.Network, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "define network"
	if err := h.begin(ctx, "DefineNetwork", op, spec.Name); err != nil {
		return virt.Network{}, err
	}
	if _, err := domainxml.Network(spec); err != nil {
		return virt.Network{}, opErr(op, spec.Name, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	spec = cloneNetSpec(spec)
	spec.UUID = strings.ToLower(spec.UUID)
	if spec.MAC != "" {
		hw, _ := net.ParseMAC(spec.MAC)
		spec.MAC = hw.String()
	}
	for i := range spec.DHCPHosts {
		hw, _ := net.ParseMAC(spec.DHCPHosts[i].MAC)
		spec.DHCPHosts[i].MAC = hw.String()
	}
	for name, other := range h.networks {
		if name == spec.Name {
			continue
		}
		if other.uuid == spec.UUID {
			return virt.Network{}, errf(op, spec.Name, virt.ErrExists, "network '%s' is already defined with uuid %s", name, spec.UUID)
		}
		if other.def.Bridge == spec.Bridge {
			return virt.Network{}, errf(op, spec.Name, virt.ErrExists, "bridge name '%s' already in use by network '%s'", spec.Bridge, name)
		}
	}
	n := h.networks[spec.Name]
	if n != nil && spec.UUID != n.uuid {
		return virt.Network{}, errf(op, spec.Name, virt.ErrExists, "network '%s' already exists with uuid %s", spec.Name, n.uuid)
	}
	if n == nil {
		n = &network{uuid: spec.UUID, leases: map[string]netip.Addr{}}
		h.networks[spec.Name] = n
	}
	n.def = spec
	n.autostart = true
	switch {
	case n.live == nil:
		live := cloneNetSpec(spec)
		n.live = &live
	case reflect.DeepEqual(stripMeta(*n.live), stripMeta(spec)):
	case !h.networkInUse(spec.Name):
		live := cloneNetSpec(spec) // restart with the new definition
		n.live = &live
		n.leases = map[string]netip.Addr{}
	case onlyHostsDiffer(*n.live, spec):
		n.live.DHCPHosts = cloneNetSpec(spec).DHCPHosts // reservations change live
	}
	return h.observeNetwork(n), nil
}

// DeleteNetwork implements virt.Hypervisor. It refuses (ErrInUse) while a
// running domain has a NIC on the network.
func (h *Hypervisor) DeleteNetwork(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "delete network"
	if err := h.begin(ctx, "DeleteNetwork", op, name); err != nil {
		return err
	}
	if _, err := h.lookupNetwork(op, name); err != nil {
		return err
	}
	if h.networkInUse(name) {
		return errf(op, name, virt.ErrInUse, "network '%s' still has active interfaces", name)
	}
	delete(h.networks, name)
	return nil
}

// Leases implements virt.Hypervisor: every running domain's NIC on the
// network holds a lease, its reservation or else the next free address
// of the range. Leases are sorted by address.
func (h *Hypervisor) Leases(ctx context.Context, name string) ([]virt.Lease, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "get DHCP leases of network"
	if err := h.begin(ctx, "Leases", op, name); err != nil {
		return nil, err
	}
	n, err := h.lookupNetwork(op, name)
	if err != nil {
		return nil, err
	}
	if n.live == nil {
		return nil, errf(op, name, virt.ErrInvalidState, "network '%s' is not active", name)
	}
	if !n.live.DHCP {
		return nil, nil
	}
	var out []virt.Lease
	for _, dn := range sortedKeys(h.domains) {
		d := h.domains[dn]
		if d.live == nil {
			continue
		}
		for _, nic := range d.live.Interfaces {
			if nic.Network != name {
				continue
			}
			l := virt.Lease{MAC: nic.MAC, Expiry: h.now().Add(leaseTime).Truncate(time.Second)}
			for _, host := range n.live.DHCPHosts {
				if host.MAC == nic.MAC {
					l.IP, l.Hostname = host.IP, host.Name
				}
			}
			if !l.IP.IsValid() {
				l.IP = h.rangeLease(n, nic.MAC)
			}
			if l.IP.IsValid() {
				out = append(out, l)
			}
		}
	}
	sortLeases(out)
	return out, nil
}

// rangeLease hands out (and remembers) an address from the DHCP range.
func (h *Hypervisor) rangeLease(n *network, mac string) netip.Addr {
	if a, ok := n.leases[mac]; ok {
		return a
	}
	taken := map[netip.Addr]bool{}
	for _, a := range n.leases {
		taken[a] = true
	}
	for _, host := range n.live.DHCPHosts {
		taken[host.IP] = true
	}
	for a := n.live.DHCPStart; a.IsValid() && !n.live.DHCPEnd.Less(a); a = a.Next() {
		if !taken[a] {
			n.leases[mac] = a
			return a
		}
	}
	return netip.Addr{}
}

func sortLeases(ls []virt.Lease) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].IP.Less(ls[j-1].IP); j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// BridgePorts implements virt.Hypervisor: the interfaces AttachToBridge
// enslaved to the bridge of a running network (domain NICs' taps are left
// out, as libvirt does).
func (h *Hypervisor) BridgePorts(ctx context.Context, bridge string) ([]virt.BridgePort, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "list ports of bridge"
	if err := h.begin(ctx, "BridgePorts", op, bridge); err != nil {
		return nil, err
	}
	found := false
	for _, n := range h.networks {
		found = found || n.live != nil && n.live.Bridge == bridge
	}
	if !found {
		return nil, errf(op, bridge, virt.ErrNotFound, "couldn't find interface named '%s'", bridge)
	}
	out := append([]virt.BridgePort{}, h.extraPorts[bridge]...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// AttachToBridge simulates someone enslaving another interface (an
// uplink) to bridge; BridgePorts lists it while the bridge exists.
func (h *Hypervisor) AttachToBridge(bridge, name, mac string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.extraPorts == nil {
		h.extraPorts = map[string][]virt.BridgePort{}
	}
	h.extraPorts[bridge] = append(h.extraPorts[bridge], virt.BridgePort{Name: name, MAC: strings.ToLower(mac)})
}
