package fake

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/legacyvm/legacyvm/internal/virt"
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

func validateNetwork(spec virt.NetworkSpec) error {
	var problems []string
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/\n") {
		problems = append(problems, fmt.Sprintf("invalid network name %q", spec.Name))
	}
	if spec.UUID != "" {
		if _, err := uuid.Parse(spec.UUID); err != nil {
			problems = append(problems, fmt.Sprintf("malformed uuid %q", spec.UUID))
		}
	}
	if len(spec.Bridge) > 15 {
		problems = append(problems, fmt.Sprintf("bridge name '%s' is too long", spec.Bridge))
	}
	if spec.MAC != "" {
		if hw, err := net.ParseMAC(spec.MAC); err != nil || len(hw) != 6 || hw[0]&1 == 1 {
			problems = append(problems, fmt.Sprintf("invalid MAC address %q", spec.MAC))
		}
	}
	if spec.HostAddress.IsValid() && (!spec.Subnet.IsValid() || !spec.Subnet.Contains(spec.HostAddress)) {
		problems = append(problems, fmt.Sprintf("host address %s is not in subnet %s", spec.HostAddress, spec.Subnet))
	}
	if spec.DHCP {
		if !spec.HostAddress.IsValid() {
			problems = append(problems, "DHCP needs a host address")
		}
		for _, a := range []netip.Addr{spec.DHCPStart, spec.DHCPEnd} {
			if !a.IsValid() || !spec.Subnet.Contains(a) {
				problems = append(problems, fmt.Sprintf("DHCP range address %s is not in subnet %s", a, spec.Subnet))
			}
		}
		if spec.DHCPStart.IsValid() && spec.DHCPEnd.IsValid() && spec.DHCPEnd.Less(spec.DHCPStart) {
			problems = append(problems, "DHCP range ends before it starts")
		}
		for _, host := range spec.DHCPHosts {
			if _, err := net.ParseMAC(host.MAC); err != nil {
				problems = append(problems, fmt.Sprintf("invalid MAC address %q in DHCP host", host.MAC))
			}
			if !spec.Subnet.Contains(host.IP) {
				problems = append(problems, fmt.Sprintf("DHCP host address %s is not in subnet %s", host.IP, spec.Subnet))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", virt.ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// observeNetwork builds the virt.Network view: the persistent definition,
// the run state and whether the running network differs from it.
func (h *Hypervisor) observeNetwork(n *network) virt.Network {
	def := cloneNetSpec(n.def)
	out := virt.Network{
		Name:         def.Name,
		UUID:         n.uuid,
		Bridge:       def.Bridge,
		MAC:          def.MAC,
		Active:       n.live != nil,
		Autostart:    n.autostart,
		Subnet:       def.Subnet,
		HostAddress:  def.HostAddress,
		DHCP:         def.DHCP,
		DNS:          def.DNS,
		PortIsolated: def.PortIsolated,
		Stale:        n.live != nil && !reflect.DeepEqual(stripMeta(*n.live), stripMeta(def)),
		Metadata:     def.Metadata,
		XML:          networkXML(def, n.uuid),
	}
	if def.DHCP {
		out.DHCPStart, out.DHCPEnd, out.DHCPHosts = def.DHCPStart, def.DHCPEnd, def.DHCPHosts
	}
	return out
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
	if err := validateNetwork(spec); err != nil {
		return virt.Network{}, opErr(op, spec.Name, err)
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
		if spec.UUID != "" && other.uuid == spec.UUID {
			return virt.Network{}, errf(op, spec.Name, virt.ErrExists, "network '%s' is already defined with uuid %s", name, spec.UUID)
		}
		if spec.Bridge != "" && other.def.Bridge == spec.Bridge {
			return virt.Network{}, errf(op, spec.Name, virt.ErrExists, "bridge name '%s' already in use by network '%s'", spec.Bridge, name)
		}
	}
	n := h.networks[spec.Name]
	if n != nil && spec.UUID != "" && spec.UUID != n.uuid {
		return virt.Network{}, errf(op, spec.Name, virt.ErrExists, "network '%s' already exists with uuid %s", spec.Name, n.uuid)
	}
	if n == nil {
		id := spec.UUID
		if id == "" {
			id = h.newUUID("network", spec.Name)
		}
		n = &network{uuid: id, leases: map[string]netip.Addr{}}
		h.networks[spec.Name] = n
	}
	if spec.Bridge == "" {
		spec.Bridge = n.def.Bridge
	}
	if spec.Bridge == "" {
		spec.Bridge = h.freeBridge()
	}
	if spec.MAC == "" && n.def.MAC != "" {
		spec.MAC = n.def.MAC
	}
	if spec.MAC == "" {
		h.seq++
		spec.MAC = fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(h.seq>>16), byte(h.seq>>8), byte(h.seq))
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
	}
	return h.observeNetwork(n), nil
}

func (h *Hypervisor) freeBridge() string {
	used := map[string]bool{}
	for _, n := range h.networks {
		used[n.def.Bridge] = true
	}
	for i := 0; ; i++ {
		if b := fmt.Sprintf("virbr%d", i); !used[b] {
			return b
		}
	}
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
