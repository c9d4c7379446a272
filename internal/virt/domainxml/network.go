package domainxml

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// DNSDomainSuffix is appended to a network's name to form the local DNS
// domain of networks with DNS enabled ("<network>.internal"; ".internal" is
// reserved for private use).
const DNSDomainSuffix = ".internal"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Network renders an isolated network:
//
//   - never a <forward> element (libvirt: isolated, no routing off the
//     bridge) and never IPv6 (no ipv6='yes', no v6 addresses; libvirt then
//     disables IPv6 on the bridge);
//   - <bridge name stp='on' delay='0'/> and <mac address=spec.MAC/> (the
//     host guard filter recognises frames to the host by that MAC);
//   - DNS off (<dns enable='no'/>) unless spec.DNS; with DNS, dnsmasq
//     answers only local names: <domain name='<name>.internal'
//     localOnly='yes'/>, forwardPlainNames='no', no forwarders, and the
//     dnsmasq option no-resolv so that it has no upstream server at all
//     (otherwise unknown names would be forwarded to the host's resolvers:
//     a way out for DNS tunnels);
//   - <ip address=HostAddress prefix> only when HostAddress is valid, with
//     <dhcp> (range and <host mac name ip> reservations) when spec.DHCP;
//   - <port isolated='yes'/> when spec.PortIsolated;
//   - legacyvm's metadata element.
//
// Network returns an error naming the network when spec is inconsistent
// (for example DHCP or DNS without a host address, addresses outside the
// subnet, IPv6).
func Network(spec virt.NetworkSpec) (*libvirtxml.Network, error) {
	n, err := buildNetwork(spec)
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", spec.Name, err)
	}
	return n, nil
}

// NetworkXML is Network marshalled to a string.
func NetworkXML(spec virt.NetworkSpec) (string, error) {
	n, err := Network(spec)
	if err != nil {
		return "", err
	}
	s, err := n.Marshal()
	if err != nil {
		return "", fmt.Errorf("network %q: marshal: %w", spec.Name, err)
	}
	return s, nil
}

func buildNetwork(spec virt.NetworkSpec) (*libvirtxml.Network, error) {
	if err := checkName("network", spec.Name); err != nil {
		return nil, err
	}
	if err := checkUUID("network", spec.UUID); err != nil {
		return nil, err
	}
	if spec.Bridge == "" || len(spec.Bridge) > 15 || strings.ContainsAny(spec.Bridge, "/: \t\n") {
		return nil, fmt.Errorf("bridge name %q: want 1 to 15 characters without '/', ':' or spaces", spec.Bridge)
	}
	mac, err := unicastMAC("bridge", spec.MAC)
	if err != nil {
		return nil, err
	}
	meta, err := MetadataXML(spec.Metadata)
	if err != nil {
		return nil, err
	}
	n := &libvirtxml.Network{
		Name:     spec.Name,
		UUID:     strings.ToLower(spec.UUID),
		Metadata: &libvirtxml.NetworkMetadata{XML: meta},
		Bridge:   &libvirtxml.NetworkBridge{Name: spec.Bridge, STP: "on", Delay: "0"},
		MAC:      &libvirtxml.NetworkMAC{Address: mac},
	}
	if spec.PortIsolated {
		n.PortOptions = &libvirtxml.NetworkPortOptions{Isolated: "yes"}
	}

	host := spec.HostAddress
	if spec.Subnet.IsValid() {
		if !spec.Subnet.Addr().Is4() {
			return nil, fmt.Errorf("subnet %s: only IPv4 (IPv6 stays off on legacyvm networks)", spec.Subnet)
		}
		if spec.Subnet.Masked() != spec.Subnet {
			return nil, fmt.Errorf("subnet %s has host bits set (want %s)", spec.Subnet, spec.Subnet.Masked())
		}
	}
	if host.IsValid() {
		if !spec.Subnet.IsValid() {
			return nil, fmt.Errorf("host address %s without a subnet", host)
		}
		if err := checkHostInSubnet("host address", host, spec.Subnet); err != nil {
			return nil, err
		}
	}
	if spec.DHCP && !host.IsValid() {
		return nil, errors.New("DHCP needs a host address (dnsmasq listens on it)")
	}
	if spec.DNS && !host.IsValid() {
		return nil, errors.New("DNS needs a host address (dnsmasq listens on it)")
	}
	if !spec.DHCP && (spec.DHCPStart.IsValid() || spec.DHCPEnd.IsValid() || len(spec.DHCPHosts) > 0) {
		return nil, errors.New("DHCP range or hosts given but DHCP is off")
	}

	if spec.DNS {
		n.DNS = &libvirtxml.NetworkDNS{ForwardPlainNames: "no"}
		n.Domain = &libvirtxml.NetworkDomain{Name: dnsDomain(spec.Name), LocalOnly: "yes"}
		n.DnsmasqOptions = &libvirtxml.NetworkDnsmasqOptions{
			Option: []libvirtxml.NetworkDnsmasqOption{{Value: "no-resolv"}},
		}
	} else {
		n.DNS = &libvirtxml.NetworkDNS{Enable: "no"}
	}

	if host.IsValid() {
		ip := libvirtxml.NetworkIP{Address: host.String(), Prefix: uint(spec.Subnet.Bits())}
		if spec.DHCP {
			dhcp, err := networkDHCP(spec, host)
			if err != nil {
				return nil, err
			}
			ip.DHCP = dhcp
		}
		n.IPs = []libvirtxml.NetworkIP{ip}
	}
	return n, nil
}

func networkDHCP(spec virt.NetworkSpec, host netip.Addr) (*libvirtxml.NetworkDHCP, error) {
	dhcp := &libvirtxml.NetworkDHCP{}
	if spec.DHCPStart.IsValid() != spec.DHCPEnd.IsValid() {
		return nil, errors.New("DHCP range needs both a start and an end")
	}
	if spec.DHCPStart.IsValid() {
		if err := checkHostInSubnet("DHCP range start", spec.DHCPStart, spec.Subnet); err != nil {
			return nil, err
		}
		if err := checkHostInSubnet("DHCP range end", spec.DHCPEnd, spec.Subnet); err != nil {
			return nil, err
		}
		if spec.DHCPEnd.Less(spec.DHCPStart) {
			return nil, fmt.Errorf("DHCP range %s-%s ends before it starts", spec.DHCPStart, spec.DHCPEnd)
		}
		if !host.Less(spec.DHCPStart) && !spec.DHCPEnd.Less(host) {
			return nil, fmt.Errorf("DHCP range %s-%s contains the host address %s", spec.DHCPStart, spec.DHCPEnd, host)
		}
		dhcp.Ranges = []libvirtxml.NetworkDHCPRange{{Start: spec.DHCPStart.String(), End: spec.DHCPEnd.String()}}
	}
	if len(dhcp.Ranges) == 0 && len(spec.DHCPHosts) == 0 {
		return nil, errors.New("DHCP needs a range or at least one host reservation")
	}
	macs, ips := map[string]bool{}, map[netip.Addr]bool{}
	for _, h := range spec.DHCPHosts {
		what := fmt.Sprintf("DHCP host %q", h.Name)
		mac, err := unicastMAC(what, h.MAC)
		if err != nil {
			return nil, err
		}
		if err := checkHostInSubnet(what+" address", h.IP, spec.Subnet); err != nil {
			return nil, err
		}
		if h.IP == host {
			return nil, fmt.Errorf("%s: address %s is the host address", what, h.IP)
		}
		if macs[mac] || ips[h.IP] {
			return nil, fmt.Errorf("%s: MAC %s or address %s is reserved twice", what, mac, h.IP)
		}
		macs[mac], ips[h.IP] = true, true
		if h.Name != "" && !dnsLabel.MatchString(strings.ToLower(h.Name)) {
			return nil, fmt.Errorf("%s: not a valid host name (letters, digits, hyphens)", what)
		}
		dhcp.Hosts = append(dhcp.Hosts, libvirtxml.NetworkDHCPHost{MAC: mac, Name: h.Name, IP: h.IP.String()})
	}
	return dhcp, nil
}

// checkHostInSubnet checks that a is an IPv4 host address of subnet (not
// its network or broadcast address).
func checkHostInSubnet(what string, a netip.Addr, subnet netip.Prefix) error {
	if !a.IsValid() || !a.Is4() {
		return fmt.Errorf("%s %v is not an IPv4 address", what, a)
	}
	if !subnet.Contains(a) {
		return fmt.Errorf("%s %s is outside subnet %s", what, a, subnet)
	}
	if subnet.Bits() <= 30 && (a == subnet.Addr() || a == broadcastOf(subnet)) {
		return fmt.Errorf("%s %s is the network or broadcast address of %s", what, a, subnet)
	}
	return nil
}

// broadcastOf returns the last address of an IPv4 prefix.
func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// dnsDomain is the local DNS domain of a network: "<name>.internal" when
// the name is a DNS label, else "internal".
func dnsDomain(name string) string {
	if l := strings.ToLower(name); dnsLabel.MatchString(l) {
		return l + DNSDomainSuffix
	}
	return strings.TrimPrefix(DNSDomainSuffix, ".")
}

// ParseNetwork reads a network definition as libvirt returns it. Active,
// Autostart and Stale are not in the XML and are left for the caller.
// ForwardMode is "" without a <forward> element ("nat" for a bare
// <forward/>, libvirt's default). Subnet and HostAddress come from the
// first IPv4 <ip>; DHCP is true when that <ip> has a <dhcp> element; DNS is
// true when dnsmasq serves DNS (an IPv4 address and no <dns enable='no'>);
// IPv6 is true with ipv6='yes' or any IPv6 <ip>.
func ParseNetwork(xml string) (virt.Network, error) {
	var n libvirtxml.Network
	if err := n.Unmarshal(xml); err != nil {
		return virt.Network{}, fmt.Errorf("parse network: %w", err)
	}
	out := virt.Network{Name: n.Name, UUID: n.UUID, XML: xml}
	fail := func(err error) (virt.Network, error) {
		return virt.Network{}, fmt.Errorf("parse network %q: %w", n.Name, err)
	}
	if n.Bridge != nil {
		out.Bridge = n.Bridge.Name
	}
	if n.MAC != nil {
		out.MAC = strings.ToLower(n.MAC.Address)
	}
	if n.Forward != nil {
		out.ForwardMode = n.Forward.Mode
		if out.ForwardMode == "" {
			out.ForwardMode = "nat"
		}
	}
	out.IPv6 = n.IPv6 == "yes"
	if n.PortOptions != nil && n.PortOptions.Isolated == "yes" {
		out.PortIsolated = true
	}
	for _, ip := range n.IPs {
		addr, err := netip.ParseAddr(ip.Address)
		if err != nil {
			return fail(fmt.Errorf("ip address %q: %w", ip.Address, err))
		}
		if ip.Family == "ipv6" || addr.Is6() {
			out.IPv6 = true
			continue
		}
		if out.HostAddress.IsValid() {
			continue
		}
		bits := int(ip.Prefix)
		if ip.Netmask != "" {
			mask, err := netip.ParseAddr(ip.Netmask)
			if err != nil || !mask.Is4() {
				return fail(fmt.Errorf("netmask %q is not an IPv4 mask", ip.Netmask))
			}
			bits, err = maskBits(mask)
			if err != nil {
				return fail(err)
			}
		} else if ip.Prefix == 0 {
			bits = classfulBits(addr)
		}
		p, err := addr.Prefix(bits)
		if err != nil {
			return fail(err)
		}
		out.HostAddress, out.Subnet = addr, p
		out.DHCP = ip.DHCP != nil
	}
	out.DNS = out.HostAddress.IsValid() && (n.DNS == nil || n.DNS.Enable != "no")
	if n.Metadata != nil {
		m, err := ParseMetadata(n.Metadata.XML)
		if err != nil {
			return fail(err)
		}
		out.Metadata = m
	}
	return out, nil
}

func maskBits(mask netip.Addr) (int, error) {
	b := mask.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for v&(1<<31) != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return 0, fmt.Errorf("netmask %s is not contiguous", mask)
	}
	return bits, nil
}

// classfulBits is libvirt's default prefix for an <ip> with neither prefix
// nor netmask.
func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}
