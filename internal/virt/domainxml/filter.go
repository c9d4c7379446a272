package domainxml

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Host guard constants (see the package documentation for the design).
const (
	// GuardSuffix is appended to FilterSpec.Name to name the guard filter.
	GuardSuffix = "-guard"
	// FilterChain is the chain of both filters: the guard is referenced
	// from the root filter with chain root, so libvirt merges its rules
	// into the interface's root chain and creates no sub-chain (each
	// sub-chain costs about ten ebtables commands per NIC at every start).
	FilterChain = "root"
)

// Rule priorities in the root chain (lower runs first; libvirt sorts every
// rule of a chain by priority, whichever filter it comes from). The root
// filter holds the anti-spoofing rules libvirt's clean-traffic used to
// bring, the guard the host rules between them.
const (
	// Root filter: drop out-frames whose source MAC is not $MAC.
	prioMACSpoof = -950
	// Guard: DHCP requests from 0.0.0.0 (the only traffic a guest may
	// send from an address not its own), before the IP spoof drop.
	prioDHCPUnbound = -900
	// Root filter: drop out-IPv4 whose source is not $IP.
	prioIPSpoof = -850

	prioDHCP      = -800
	prioDNS       = -790
	prioAllowBase = -700
	prioAllowMax  = -401
	prioDrop      = -300
	// prioRogueDHCP drops DHCP replies a guest sends. Every return above
	// that a guest frame can match goes to the host (M/H) or is the DHCP
	// request (from port 68), so the drop can come after them, keeping
	// every return before every drop.
	prioRogueDHCP = prioDrop + 5

	// Root filter, after every guard rule (the guard's last is
	// prioDrop+40).
	prioIPv4Accept  = -200 // out and in (clean-traffic -650, allow-incoming-ipv4)
	prioARPSpoofMAC = -100
	prioARPSpoofIP  = -99
	prioARPAccept   = -90
	prioAnnounce    = 10 // qemu-announce-self (never 0: libvirt reads a missing priority as 500)
	prioAnnounceRev = 20 // qemu-announce-self-rarp
	prioDropRest    = 1000
)

// Door rules (see doorFlows) sit between the allow rules and the drops.
const (
	prioDoorBase = -400
	prioDoorMax  = -301
)

const (
	macBroadcast = "ff:ff:ff:ff:ff:ff"
	// IPv4 multicast frames use 01:00:5e:00:00:00-01:00:5e:7f:ff:ff.
	// libvirt only accepts MAC masks made of leading ones (so the group
	// bit alone cannot be matched): broadcast and the IPv4 multicast range
	// are matched by MAC, any other group MAC by the IP rules after them.
	macIPv4Multicast     = "01:00:5e:00:00:00"
	macIPv4MulticastMask = "ff:ff:ff:80:00:00"
	ipBroadcast          = "255.255.255.255"
	// guestMACs matches every MAC legacyvm gives a guest.
	guestMACs     = virt.GuestMACPrefix + ":00:00:00"
	guestMACsMask = "ff:ff:ff:00:00:00"
)

// guardUUIDSpace salts the guard's name-based UUID.
const guardUUIDSpace = "legacyvm host guard"

var ncName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// GuardName returns the name of the guard filter of the root filter name.
func GuardName(name string) string { return name + GuardSuffix }

// GuardUUID derives the guard filter's UUID from the root filter's UUID
// (SHA-1 name-based, so it is stable across runs and hosts).
func GuardUUID(rootUUID string) (string, error) {
	ns, err := uuid.Parse(rootUUID)
	if err != nil {
		return "", fmt.Errorf("root filter uuid %q: %w", rootUUID, err)
	}
	return uuid.NewSHA1(ns, []byte(guardUUIDSpace)).String(), nil
}

// Filters renders spec as two nwfilters in definition order: first the
// guard (spec.Name+"-guard"), then the root filter spec.Name that
// references it. Both have chain root: libvirt merges the guard's rules
// into the interface's root chain and sorts them with the root filter's by
// priority, so a NIC's whole filter is one ebtables chain per direction.
// Define them in that order: a filter that references a missing filter is
// refused. The root filter holds what libvirt's clean-traffic did
// (anti-spoofing by the interface parameters $MAC and $IP, IPv4, ARP and
// qemu's announce frames only), written out rather than referenced; see
// rootRules for the one way it is stricter. The guard uses literal
// addresses from spec. Filters returns an error naming the filter when
// spec is inconsistent.
func Filters(spec virt.FilterSpec) ([]*libvirtxml.NWFilter, error) {
	fs, err := buildFilters(spec)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", spec.Name, err)
	}
	return fs, nil
}

// FiltersXML is Filters marshalled, in the same order (guard, root).
func FiltersXML(spec virt.FilterSpec) ([]string, error) {
	fs, err := Filters(spec)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		s, err := f.Marshal()
		if err != nil {
			return nil, fmt.Errorf("filter %q: marshal: %w", f.Name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func buildFilters(spec virt.FilterSpec) ([]*libvirtxml.NWFilter, error) {
	if !ncName.MatchString(spec.Name) {
		return nil, errors.New("name must start with a letter or '_' and hold only letters, digits, '_', '.', '-'")
	}
	if builtinFilters[spec.Name] {
		return nil, errors.New("name clashes with libvirt's built-in filter")
	}
	if err := checkUUID("filter", spec.UUID); err != nil {
		return nil, err
	}
	guardUUID, err := GuardUUID(spec.UUID)
	if err != nil {
		return nil, err
	}
	rules, err := guardRules(spec)
	if err != nil {
		return nil, err
	}
	guard := &libvirtxml.NWFilter{
		Name:  GuardName(spec.Name),
		UUID:  guardUUID,
		Chain: FilterChain,
	}
	for _, r := range rules {
		guard.Entries = append(guard.Entries, libvirtxml.NWFilterEntry{Rule: r})
	}
	root := &libvirtxml.NWFilter{
		Name:  spec.Name,
		UUID:  strings.ToLower(spec.UUID),
		Chain: FilterChain,
	}
	for _, r := range rootRules() {
		root.Entries = append(root.Entries, libvirtxml.NWFilterEntry{Rule: r})
	}
	root.Entries = append(root.Entries, libvirtxml.NWFilterEntry{Ref: &libvirtxml.NWFilterRef{Filter: guard.Name}})
	return []*libvirtxml.NWFilter{guard, root}, nil
}

// builtinFilters are libvirt's shipped filters a legacyvm filter must not
// replace.
var builtinFilters = map[string]bool{
	"allow-arp": true, "allow-dhcp": true, "allow-dhcp-server": true, "allow-dhcpv6": true,
	"allow-dhcpv6-server": true, "allow-incoming-ipv4": true, "allow-incoming-ipv6": true,
	"allow-ipv4": true, "allow-ipv6": true, "clean-traffic": true, "clean-traffic-gateway": true,
	"no-arp-ip-spoofing": true, "no-arp-mac-spoofing": true, "no-arp-spoofing": true,
	"no-ip-multicast": true, "no-ip-spoofing": true, "no-ipv6-multicast": true,
	"no-ipv6-spoofing": true, "no-mac-broadcast": true, "no-mac-spoofing": true,
	"no-other-l2-traffic": true, "no-other-rarp-traffic": true, "qemu-announce-self": true,
	"qemu-announce-self-rarp": true,
}

// rootRules are the root filter's own rules: libvirt's clean-traffic
// (no-mac-spoofing, no-ip-spoofing, allow-incoming-ipv4, no-arp-spoofing,
// allow ARP, no-other-l2-traffic, qemu-announce-self) written into the
// root chain, with the priorities that put the guard's rules where they
// must run (see the package documentation for the whole chain):
//
//   - out: drop frames whose source MAC is not $MAC;
//   - (guard: DHCP requests from 0.0.0.0)
//   - out: drop IPv4 whose source is not $IP;
//   - (guard: every other rule, returns then drops)
//   - accept IPv4 out and in;
//   - out: drop ARP whose sender MAC is not $MAC or whose sender IP is not
//     $IP; accept ARP both ways;
//   - qemu-announce-self: accept 0x835 out and the Request_Reverse RARP
//     out and in;
//   - drop everything else, both ways (IPv6, other RARP, other
//     ethertypes).
//
// One difference with clean-traffic: no-ip-spoofing let every UDP packet
// from 0.0.0.0 through (to the guard, which then only stopped it where the
// host was concerned); here only the guard's DHCP requests from 0.0.0.0
// pass, since DHCP is the only reason to send from it, and a guest's UDP
// from 0.0.0.0 to another guest is dropped.
//
// The spoof drops are match='no' rules, so $IP must hold one address (the
// domain's filterref passes the reservation; without it libvirt learns the
// guest's first address), as legacyvm always gives.
func rootRules() []*libvirtxml.NWFilterRule {
	// Str carries the "$" form too: libvirtxml marshals a Var-only field
	// as a bare "$" (and unmarshals "$MAC" into both).
	v := func(name string) libvirtxml.NWFilterField {
		return libvirtxml.NWFilterField{Var: name, Str: "$" + name}
	}
	str := func(s string) libvirtxml.NWFilterField { return libvirtxml.NWFilterField{Str: s} }
	macRule := func(action, dir string, prio int, m *libvirtxml.NWFilterRuleMAC) *libvirtxml.NWFilterRule {
		return &libvirtxml.NWFilterRule{Action: action, Direction: dir, Priority: prio, MAC: m}
	}
	announceRARP := func(dir string) *libvirtxml.NWFilterRule {
		r := &libvirtxml.NWFilterRuleRARP{
			OpCode:        str("Request_Reverse"),
			ARPSrcMACAddr: v("MAC"), ARPDstMACAddr: v("MAC"),
			ARPSrcIPAddr: str("0.0.0.0"), ARPDstIPAddr: str("0.0.0.0"),
		}
		r.DstMACAddr = str(macBroadcast)
		if dir == "out" {
			r.SrcMACAddr = v("MAC")
		}
		return &libvirtxml.NWFilterRule{Action: "accept", Direction: dir, Priority: prioAnnounceRev, RARP: r}
	}
	return []*libvirtxml.NWFilterRule{
		macRule("drop", "out", prioMACSpoof, &libvirtxml.NWFilterRuleMAC{Match: "no", NWFilterRuleCommonMAC: libvirtxml.NWFilterRuleCommonMAC{SrcMACAddr: v("MAC")}}),
		{Action: "drop", Direction: "out", Priority: prioIPSpoof, IP: &libvirtxml.NWFilterRuleIP{Match: "no", SrcIPAddr: v("IP")}},
		macRule("accept", "out", prioIPv4Accept, &libvirtxml.NWFilterRuleMAC{ProtocolID: str("ipv4")}),
		macRule("accept", "in", prioIPv4Accept, &libvirtxml.NWFilterRuleMAC{ProtocolID: str("ipv4")}),
		{Action: "drop", Direction: "out", Priority: prioARPSpoofMAC, ARP: &libvirtxml.NWFilterRuleARP{Match: "no", ARPSrcMACAddr: v("MAC")}},
		{Action: "drop", Direction: "out", Priority: prioARPSpoofIP, ARP: &libvirtxml.NWFilterRuleARP{Match: "no", ARPSrcIPAddr: v("IP")}},
		macRule("accept", "inout", prioARPAccept, &libvirtxml.NWFilterRuleMAC{ProtocolID: str("arp")}),
		macRule("accept", "out", prioAnnounce, &libvirtxml.NWFilterRuleMAC{ProtocolID: str("0x835")}),
		announceRARP("out"),
		announceRARP("in"),
		{Action: "drop", Direction: "inout", Priority: prioDropRest},
	}
}

// flow is one side of a guard rule, built into an <ip> match.
type flow struct {
	action, direction string
	proto             string // "", "tcp", "udp", "icmp"
	srcMAC, dstMAC    string
	dstMACMask        string
	srcIP, dstIP      netip.Addr
	dstIPBits         int  // > 0: dstIP is a prefix of that length
	negate            bool // match='no': every attribute is negated
	dstIPBroadcast    bool // dstipaddr 255.255.255.255
	sport, dport      portRange
}

type portRange struct{ start, end uint16 }

var ephemeral = portRange{1024, 65535}

func (f flow) rule(prio int) *libvirtxml.NWFilterRule {
	ip := &libvirtxml.NWFilterRuleIP{}
	str := func(s string) libvirtxml.NWFilterField { return libvirtxml.NWFilterField{Str: s} }
	// Ports as decimal strings: libvirtxml writes its Uint fields in hex.
	num := func(n uint16) libvirtxml.NWFilterField { return libvirtxml.NWFilterField{Str: strconv.Itoa(int(n))} }
	if f.srcMAC != "" {
		ip.SrcMACAddr = str(f.srcMAC)
	}
	if f.dstMAC != "" {
		ip.DstMACAddr = str(f.dstMAC)
	}
	if f.dstMACMask != "" {
		ip.DstMACMask = str(f.dstMACMask)
	}
	if f.srcIP.IsValid() {
		ip.SrcIPAddr = str(f.srcIP.String())
	}
	if f.dstIP.IsValid() {
		ip.DstIPAddr = str(f.dstIP.String())
		if f.dstIPBits > 0 {
			ip.DstIPMask = str(strconv.Itoa(f.dstIPBits))
		}
	}
	if f.dstIPBroadcast {
		ip.DstIPAddr = str(ipBroadcast)
	}
	if f.proto != "" {
		ip.Protocol = str(f.proto)
	}
	if f.sport.start != 0 {
		ip.SrcPortStart = num(f.sport.start)
		if f.sport.end > f.sport.start {
			ip.SrcPortEnd = num(f.sport.end)
		}
	}
	if f.dport.start != 0 {
		ip.DstPortStart = num(f.dport.start)
		if f.dport.end > f.dport.start {
			ip.DstPortEnd = num(f.dport.end)
		}
	}
	if f.negate {
		ip.Match = "no"
	}
	return &libvirtxml.NWFilterRule{Action: f.action, Direction: f.direction, Priority: prio, IP: ip}
}

// guardRules builds the guard chain. Directions are seen from the guest:
// "out" frames leave the guest (ebtables I-<tap> chain), "in" frames go to
// it (O-<tap>). Each direction is written explicitly (never "inout", whose
// out side libvirt mirrors). Every frame to the host carries the bridge MAC
// M as destination, every frame from the host carries it as source.
func guardRules(spec virt.FilterSpec) ([]*libvirtxml.NWFilterRule, error) {
	m, err := unicastMAC("bridge", spec.BridgeMAC)
	if err != nil {
		return nil, err
	}
	h := spec.HostAddress
	if spec.Subnet.IsValid() && !spec.Subnet.Addr().Is4() {
		return nil, fmt.Errorf("subnet %s: only IPv4", spec.Subnet)
	}
	if h.IsValid() {
		if !spec.Subnet.IsValid() {
			return nil, fmt.Errorf("host address %s without a subnet", h)
		}
		if err := checkHostInSubnet("host address", h, spec.Subnet); err != nil {
			return nil, err
		}
	}
	if spec.DHCP && !h.IsValid() {
		return nil, errors.New("DHCP needs the host address")
	}
	if spec.DNS && !h.IsValid() {
		return nil, errors.New("DNS needs the host address")
	}

	var rules []*libvirtxml.NWFilterRule
	add := func(prio int, fs ...flow) {
		for i, f := range fs {
			rules = append(rules, f.rule(prio+i))
		}
	}
	toHost := func(proto string, sport, dport portRange) flow {
		return flow{action: "return", direction: "out", proto: proto, dstMAC: m, dstIP: h, sport: sport, dport: dport}
	}
	fromHost := func(proto string, sport, dport portRange) flow {
		return flow{action: "return", direction: "in", proto: proto, srcMAC: m, srcIP: h, sport: sport, dport: dport}
	}
	one := func(p uint16) portRange { return portRange{p, p} }

	if spec.DHCP {
		// A client without an address (DISCOVER, REQUEST after an OFFER,
		// INIT-REBOOT) broadcasts from 0.0.0.0: returned before the
		// root filter's IP spoof drop, which stops everything else from
		// an address not the guest's.
		add(prioDHCPUnbound,
			flow{action: "return", direction: "out", proto: "udp", dstMAC: macBroadcast, dstIPBroadcast: true,
				srcIP: netip.IPv4Unspecified(), sport: one(68), dport: one(67)})
		add(prioDHCP,
			// DISCOVER/REQUEST (and rebinding) go to the broadcast address.
			flow{action: "return", direction: "out", proto: "udp", dstMAC: macBroadcast, dstIPBroadcast: true, sport: one(68), dport: one(67)},
			// Renewals go to the server itself.
			toHost("udp", one(68), one(67)),
			// OFFER/ACK come from the server, unicast or broadcast.
			fromHost("udp", one(67), one(68)),
		)
	}
	if spec.DNS {
		add(prioDNS,
			toHost("udp", portRange{}, one(53)),
			toHost("tcp", portRange{}, one(53)),
			fromHost("udp", one(53), portRange{}),
			fromHost("tcp", one(53), portRange{}),
		)
	}

	prio := prioAllowBase
	names := map[string]bool{}
	for _, a := range spec.Allows {
		fs, err := allowFlows(a, h, toHost, fromHost)
		if err != nil {
			return nil, err
		}
		if a.Name != "" {
			if names[a.Name] {
				return nil, fmt.Errorf("allow %q is given twice", a.Name)
			}
			names[a.Name] = true
		}
		if prio+len(fs)-1 > prioAllowMax {
			return nil, fmt.Errorf("too many allow rules (at most %d guard rules)", prioAllowMax-prioAllowBase+1)
		}
		add(prio, fs...)
		prio += len(fs)
	}

	if err := addDoors(spec, h, toHost, fromHost, add); err != nil {
		return nil, err
	}

	// Drops: everything to or from the host that was not returned above.
	// Each kind keeps its priority whether or not the host address exists.
	add(prioDrop,
		// Any IPv4 frame to the bridge MAC is for the host, whatever
		// address it targets (Linux answers for all its addresses on every
		// interface).
		flow{action: "drop", direction: "out", dstMAC: m})
	// A guest never serves DHCP: its replies (from port 67) would hand
	// other guests a rogue router or DNS server, on guest_to_guest
	// networks by unicast, which nothing else stops.
	add(prioRogueDHCP, flow{action: "drop", direction: "out", proto: "udp", sport: one(67)})
	if h.IsValid() {
		// The host address behind another (or a forged) MAC.
		add(prioDrop+10, flow{action: "drop", direction: "out", dstIP: h})
	}
	add(prioDrop+20,
		// Broadcast and multicast frames reach the host's bridge
		// interface too: the host would accept broadcast/multicast IPv4
		// (and unicast IPv4 inside a group-addressed frame). Only DHCP,
		// returned above, may use them.
		flow{action: "drop", direction: "out", dstMAC: macBroadcast},
		flow{action: "drop", direction: "out", dstMAC: macIPv4Multicast, dstMACMask: macIPv4MulticastMask},
		flow{action: "drop", direction: "out", dstIP: netip.MustParseAddr("224.0.0.0"), dstIPBits: 4})
	if sn := spec.Subnet; sn.IsValid() {
		// The subnet's broadcast address, whatever the MAC: inside a group
		// frame it reaches every UDP socket the host binds to 0.0.0.0.
		add(prioDrop+23, flow{action: "drop", direction: "out", dstIP: subnetBroadcast(sn)})
	}
	// The limited broadcast outside DHCP (returned above), whatever the MAC.
	add(prioDrop+24, flow{action: "drop", direction: "out", dstIPBroadcast: true})
	if sn := spec.Subnet; sn.IsValid() {
		// Whatever is left is unicast IPv4 to another guest's MAC (or to
		// some other group MAC): only addresses inside the subnet have a
		// legitimate receiver; anything else could only be meant for the
		// host's stack or for routing, which isolated networks never do.
		add(prioDrop+25,
			flow{action: "drop", direction: "out", dstIP: sn.Masked().Addr(), dstIPBits: sn.Bits(), negate: true})
	}
	// And only to a guest's MAC: a group MAC (other than the DHCP
	// broadcast, returned above) also delivers the frame to the host's
	// stack. libvirt cannot match the group bit, but every guest MAC is in
	// legacyvm's range: anything outside it is dropped.
	add(prioDrop+26, flow{action: "drop", direction: "out", dstMAC: guestMACs, dstMACMask: guestMACsMask, negate: true})
	add(prioDrop+30,
		// Everything the host sends (or routes onto the bridge) that was
		// not returned above.
		flow{action: "drop", direction: "in", srcMAC: m})
	if h.IsValid() {
		add(prioDrop+40, flow{action: "drop", direction: "in", srcIP: h})
	}
	return rules, nil
}

// subnetBroadcast is the last address of sn.
func subnetBroadcast(sn netip.Prefix) netip.Addr {
	a := sn.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1<<(32-sn.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// addDoors adds the guard returns of spec's doors (priorities
// prioDoorBase..prioDoorMax).
func addDoors(spec virt.FilterSpec, h netip.Addr, toHost, fromHost func(string, portRange, portRange) flow, add func(int, ...flow)) error {
	prio := prioDoorBase
	for _, d := range spec.Doors {
		fs, err := doorFlows(d, h, toHost, fromHost)
		if err != nil {
			return err
		}
		if prio+len(fs)-1 > prioDoorMax {
			return fmt.Errorf("too many doors (at most %d guard rules)", prioDoorMax-prioDoorBase+1)
		}
		add(prio, fs...)
		prio += len(fs)
	}
	return nil
}

// doorFlows turns one door into guard returns, TCP only, stateless like
// allow rules:
//   - publish: host (the relay, from the bridge address) ephemeral ->
//     guest:Port, and the guest's replies from Port; the guest address is
//     matched so that other guests on the network gain nothing;
//   - egress: guest ephemeral -> host:Port (every guest when GuestIP is
//     invalid), and the relay's replies from Port.
func doorFlows(d virt.DoorSpec, h netip.Addr, toHost, fromHost func(string, portRange, portRange) flow) ([]flow, error) {
	what := fmt.Sprintf("door %q", d.Name)
	if !h.IsValid() {
		return nil, fmt.Errorf("%s: the network has no host address for the relay", what)
	}
	if d.Port == 0 {
		return nil, fmt.Errorf("%s: port 0", what)
	}
	if d.GuestIP.IsValid() && !d.GuestIP.Is4() {
		return nil, fmt.Errorf("%s: guest address %s is not IPv4", what, d.GuestIP)
	}
	p := portRange{d.Port, d.Port}
	switch d.Kind {
	case virt.DoorPublish:
		if !d.GuestIP.IsValid() {
			return nil, fmt.Errorf("%s: a publish door needs the guest's address", what)
		}
		in := fromHost("tcp", ephemeral, p)
		in.dstIP = d.GuestIP
		out := toHost("tcp", p, ephemeral)
		out.srcIP = d.GuestIP
		return []flow{in, out}, nil
	case virt.DoorEgress:
		out := toHost("tcp", ephemeral, p)
		in := fromHost("tcp", p, ephemeral)
		if d.GuestIP.IsValid() {
			out.srcIP = d.GuestIP
			in.dstIP = d.GuestIP
		}
		return []flow{out, in}, nil
	}
	return nil, fmt.Errorf("%s: kind %q: want publish or egress", what, d.Kind)
}

// allowFlows turns one allow rule into guard returns. Every flow is
// stateless: the reply side is matched by ports only.
func allowFlows(a virt.AllowSpec, h netip.Addr, toHost, fromHost func(string, portRange, portRange) flow) ([]flow, error) {
	what := fmt.Sprintf("allow %q", a.Name)
	if a.Peer != "host" {
		return nil, fmt.Errorf("%s: peer %q: only \"host\" is supported (guests reach each other unless ports are isolated)", what, a.Peer)
	}
	if !h.IsValid() {
		return nil, fmt.Errorf("%s: the network has no host address to allow", what)
	}
	if a.Direction != "in" && a.Direction != "out" {
		return nil, fmt.Errorf("%s: direction %q: want in or out", what, a.Direction)
	}
	switch a.Protocol {
	case "any", "icmp":
		if a.PortStart != 0 || a.PortEnd != 0 {
			return nil, fmt.Errorf("%s: protocol %s takes no ports", what, a.Protocol)
		}
		proto := ""
		if a.Protocol == "icmp" {
			proto = "icmp"
		}
		return []flow{toHost(proto, portRange{}, portRange{}), fromHost(proto, portRange{}, portRange{})}, nil
	case "tcp", "udp":
	default:
		return nil, fmt.Errorf("%s: protocol %q: want tcp, udp, icmp or any", what, a.Protocol)
	}
	ports := portRange{a.PortStart, a.PortEnd}
	if ports.end == 0 {
		ports.end = ports.start
	}
	if ports.start == 0 && a.PortEnd != 0 {
		return nil, fmt.Errorf("%s: port range end %d without a start", what, a.PortEnd)
	}
	if ports.end < ports.start {
		return nil, fmt.Errorf("%s: port range %d-%d ends before it starts", what, a.PortStart, a.PortEnd)
	}
	reply := ephemeral
	if ports.start == 0 {
		reply = portRange{} // any port: the protocol is open both ways
	}
	if a.Direction == "in" {
		// host:ephemeral -> guest:P, and the guest's replies.
		return []flow{fromHost(a.Protocol, portRange{}, ports), toHost(a.Protocol, ports, reply)}, nil
	}
	// guest:ephemeral -> host:P, and the host's replies.
	return []flow{toHost(a.Protocol, portRange{}, ports), fromHost(a.Protocol, ports, reply)}, nil
}

// ParseFilter reads an nwfilter definition: name, UUID, chain, the filters
// it references (in document order) and the XML itself.
func ParseFilter(xml string) (virt.Filter, error) {
	var f libvirtxml.NWFilter
	if err := f.Unmarshal(xml); err != nil {
		return virt.Filter{}, fmt.Errorf("parse nwfilter: %w", err)
	}
	out := virt.Filter{Name: f.Name, UUID: f.UUID, Chain: f.Chain, XML: xml}
	if out.Chain == "" {
		out.Chain = "root"
	}
	for _, e := range f.Entries {
		if e.Ref != nil {
			out.Refs = append(out.Refs, e.Ref.Filter)
		}
	}
	return out, nil
}

// ParseFilterBinding reads an nwfilter binding (virsh
// nwfilter-binding-dumpxml): the tap device, the interface MAC, the owning
// domain, the bound filter and its parameters (in document order; list
// parameters such as several IP values appear once per value).
func ParseFilterBinding(xml string) (virt.FilterBinding, error) {
	var b libvirtxml.NWFilterBinding
	if err := b.Unmarshal(xml); err != nil {
		return virt.FilterBinding{}, fmt.Errorf("parse nwfilter binding: %w", err)
	}
	var out virt.FilterBinding
	if b.PortDev != nil {
		out.PortDev = b.PortDev.Name
	}
	if b.MAC != nil {
		out.MAC = strings.ToLower(b.MAC.Address)
	}
	if b.Owner != nil {
		out.Owner = b.Owner.Name
	}
	if b.FilterRef != nil {
		out.Filter = b.FilterRef.Filter
		for _, p := range b.FilterRef.Parameters {
			out.Params = append(out.Params, virt.FilterParam{Name: p.Name, Value: p.Value})
		}
	}
	if out.PortDev == "" {
		return virt.FilterBinding{}, errors.New("parse nwfilter binding: no port device")
	}
	return out, nil
}
