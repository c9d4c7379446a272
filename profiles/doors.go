package profiles

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Doors are the narrow openings in a network's seal: publish (a LAN
// client reaches one guest port) and egress (guests reach one outside
// service). Both go through a user-space relay run by legacyvm daemon; the
// host never forwards packets. See docs/doors.md.

// reservedGuestPorts are host ports on the bridge that legacyvm's own
// services use: an egress port cannot take them.
var reservedGuestPorts = map[uint16]string{53: "DNS", 67: "DHCP", 68: "DHCP"}

func (l *loader) decodePublish(b *publishBlock, sc scope) *Publish {
	l.checkName("publish", b.Name, b.NameRange, MaxNameLen, "")
	ctx := l.vmCtx
	p := &Publish{Name: b.Name, Protocol: ProtoTCP, MaxConnections: DefaultMaxConnections, DeclRange: b.DefRange, ListenRange: b.Listen.Range()}
	ok := true
	if l.required(b.Listen, b.DefRange, "publish", "listen", `listen = "0.0.0.0:13389"`) {
		if s, set := l.str(b.Listen, ctx, sc, "listen"); set {
			ap, err := netip.ParseAddrPort(s)
			switch {
			case err != nil:
				l.errorf(b.Listen.Range(), "Invalid listen address", "listen is the host address and port clients connect to, like \"0.0.0.0:13389\" (every address) or \"192.0.2.5:13389\" (one interface's address); %q is not: %s.", s, err)
				ok = false
			case ap.Port() == 0:
				l.errorf(b.Listen.Range(), "Invalid listen address", "listen needs a port between 1 and 65535, like \"0.0.0.0:13389\".")
				ok = false
			default:
				p.Listen = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			}
		} else {
			ok = false
		}
	} else {
		ok = false
	}
	if l.required(b.Port, b.DefRange, "publish", "port", "port = 3389") {
		if n, set := l.integer(b.Port, ctx, sc, "port", "port = 3389"); set {
			if n < 1 || n > 65535 {
				l.errorf(b.Port.Range(), "Invalid port", "port is the guest's port and must be between 1 and 65535, not %d.", n)
				ok = false
			} else {
				p.Port = uint16(n)
			}
		} else {
			ok = false
		}
	} else {
		ok = false
	}
	if s, set := l.enum(b.Protocol, ctx, sc, "protocol", []string{"tcp", "udp"}); set {
		if s == "udp" {
			l.errorf(b.Protocol.Range(), "UDP doors are not supported", "The relay carries TCP connections only; protocol = \"udp\" is not supported yet. Use protocol = \"tcp\" (the default).")
			ok = false
		}
	}
	if n, set := l.integer(b.MaxConnections, ctx, sc, "max_connections", "max_connections = 20"); set {
		if n < 1 || n > 10000 {
			l.errorf(b.MaxConnections.Range(), "Invalid max_connections", "max_connections bounds the connections the relay carries at once; it must be between 1 and 10000, not %d.", n)
			ok = false
		} else {
			p.MaxConnections = n
		}
	}
	if !present(b.From) {
		l.errorf(b.DefRange, "Missing required argument", "A publish door needs from, the client networks allowed to connect, for example from = [\"192.0.2.0/24\"]. There is no implicit \"everyone\": write from = [\"0.0.0.0/0\"] only if that is really what you want.")
		return nil
	}
	strs := l.stringList(b.From, ctx, sc, "from")
	if strs == nil {
		if v, vok := l.value(b.From, ctx, sc); vok && !v.IsNull() && v.LengthInt() == 0 {
			l.errorf(b.From.Range(), "Empty from", "from lists the client networks allowed to connect; an empty list lets nobody in. Add at least one, like \"192.0.2.0/24\".")
		}
		return nil
	}
	var elems []hclsyntax.Expression
	if tc, isTuple := b.From.(*hclsyntax.TupleConsExpr); isTuple && len(tc.Exprs) == len(strs) {
		elems = tc.Exprs
	}
	for i, s := range strs {
		rng := b.From.Range()
		if elems != nil {
			rng = elems[i].Range()
		}
		pfx, err := parseClientNet(s)
		if err != nil {
			l.errorf(rng, "Invalid client network", "Each from entry is a network in CIDR notation, like \"192.0.2.0/24\", or one address, like \"192.0.2.10\"; %q is not: %s.", s, err)
			ok = false
			continue
		}
		p.From = append(p.From, pfx)
	}
	if !ok {
		return nil
	}
	return p
}

// parseClientNet parses a from entry: a CIDR (host bits must be zero) or a
// single address.
func parseClientNet(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an address or network")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a network in CIDR notation")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("bits are set after the first %d; the network is %s", p.Bits(), p.Masked())
	}
	return p, nil
}

func (l *loader) decodeEgress(b *egressBlock, ctx *hcl.EvalContext, sc scope) *Egress {
	l.checkName("egress", b.Name, b.NameRange, MaxNameLen, "")
	e := &Egress{Name: b.Name, DeclRange: b.DefRange, PortRange: b.Port.Range()}
	ok := true
	if l.required(b.To, b.DefRange, "egress", "to", `to = "db.corp:1433"`) {
		if s, set := l.str(b.To, ctx, sc, "to"); set {
			if err := checkServiceAddr(s); err != nil {
				l.errorf(b.To.Range(), "Invalid egress target", "to is the outside service the relay connects to, a host name or address and a port, like \"db.corp:1433\" or \"192.0.2.20:1433\"; %q is not: %s.", s, err)
				ok = false
			} else {
				e.To = s
			}
		} else {
			ok = false
		}
	} else {
		ok = false
	}
	if l.required(b.Port, b.DefRange, "egress", "port", "port = 11433") {
		if n, set := l.integer(b.Port, ctx, sc, "port", "port = 11433"); set {
			switch {
			case n < 1 || n > 65535:
				l.errorf(b.Port.Range(), "Invalid port", "port is where guests reach the service on the network's host address; it must be between 1 and 65535, not %d.", n)
				ok = false
			case reservedGuestPorts[uint16(n)] != "":
				l.errorf(b.Port.Range(), "Egress port is reserved", "Port %d on the host address is %s, which legacyvm's network uses. Pick another port, like 11433.", n, reservedGuestPorts[uint16(n)])
				ok = false
			default:
				e.Port = uint16(n)
			}
		} else {
			ok = false
		}
	} else {
		ok = false
	}
	if !ok {
		return nil
	}
	return e
}

// checkServiceAddr checks "host:port" with a numeric port.
func checkServiceAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("write it as host:port")
	}
	if host == "" || strings.ContainsAny(host, " /\t") {
		return fmt.Errorf("%q is not a host name or address", host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not between 1 and 65535", port)
	}
	return nil
}

// decodeVMDoors decodes a vm's publish and egress blocks (after its
// network reference).
func (l *loader) decodeVMDoors(d *vmDecl, sc scope) {
	vm, b := d.vm, d.block
	seen := map[string]hcl.Range{}
	dup := func(kind, name string, rng, def hcl.Range) bool {
		if first, ok := seen[name]; ok {
			l.errorf(rng, "Duplicate door", "A door named %q was already declared in this vm at %s. Rename one of them.", name, at(first))
			return true
		}
		seen[name] = def
		return false
	}
	for _, pb := range b.Publishes {
		if dup("publish", pb.Name, pb.NameRange, pb.DefRange) {
			continue
		}
		if p := l.decodePublish(pb, sc); p != nil {
			vm.Publishes = append(vm.Publishes, p)
		}
	}
	for _, eb := range b.Egresses {
		if dup("egress", eb.Name, eb.NameRange, eb.DefRange) {
			continue
		}
		if e := l.decodeEgress(eb, l.vmCtx, sc); e != nil {
			vm.Egresses = append(vm.Egresses, e)
		}
	}
	if len(b.Publishes)+len(b.Egresses) == 0 {
		return
	}
	first := b.DefRange
	if len(b.Publishes) > 0 {
		first = b.Publishes[0].DefRange
	} else {
		first = b.Egresses[0].DefRange
	}
	switch {
	case vm.Network == nil:
		if !present(b.Network) {
			l.errorf(first, "Door without network", "publish and egress doors reach the guest through its network's bridge, but this vm has no network. Add network = network.NAME (a network with a subnet and dhcp = true).")
		}
	case !vm.Network.Subnet.IsValid():
		l.errorf(first, "Door on a network without subnet", "The relay talks to the guest from the host's address on network %q, which has no subnet. Add subnet = \"10.77.0.0/24\" and dhcp = true to the network (declared at %s).", vm.Network.Name, at(vm.Network.DeclRange))
	case len(b.Publishes) > 0 && !vm.Network.DHCP:
		l.errorf(first, "Publish on a network without DHCP", "The relay connects to the guest's reserved address, which comes from the network's DHCP reservations, but network %q has dhcp = false. Set dhcp = true on it (declared at %s).", vm.Network.Name, at(vm.Network.DeclRange))
	}
	if len(b.Publishes) > 0 && vm.CountSet && vm.Count > 1 {
		l.errorf(b.Publishes[0].DefRange, "Publish on a vm with count", "A publish door listens on one host port for one guest, but this vm has %d instances. Declare a vm block per published instance, each with its own listen port.", vm.Count)
	}
}

// checkDoors runs after every vm is decoded: the host address of networks
// with doors, and port collisions between doors (listen ports on the host,
// egress ports on each network's host address).
func (l *loader) checkDoors() {
	type listenUse struct {
		ap   netip.AddrPort
		what string
		rng  hcl.Range
	}
	var listens []listenUse
	overlap := func(a, b netip.Addr) bool { return a == b || a.IsUnspecified() || b.IsUnspecified() }
	claim := func(u listenUse) {
		for _, o := range listens {
			if o.ap.Port() == u.ap.Port() && overlap(o.ap.Addr(), u.ap.Addr()) {
				l.errorf(u.rng, "Two doors on the same port", "%s listens on %s, which %s at %s already uses. Give each door its own port.", u.what, u.ap, o.what, at(o.rng))
				return
			}
		}
		listens = append(listens, u)
	}
	egressByNet := map[*Network][]listenUse{}
	for _, n := range l.p.Networks {
		if len(n.Egresses) > 0 && n.Subnet.IsValid() && !n.HostAddress.IsValid() {
			n.HostAddress = n.Subnet.Addr().Next()
		}
		for _, e := range n.Egresses {
			egressByNet[n] = append(egressByNet[n], listenUse{netip.AddrPortFrom(n.HostAddress, e.Port), fmt.Sprintf("egress %q of network %q", e.Name, n.Name), e.PortRange})
		}
	}
	for _, d := range l.vms {
		vm := d.vm
		n := vm.Network
		if n != nil && len(vm.Publishes)+len(vm.Egresses) > 0 && n.Subnet.IsValid() && !n.HostAddress.IsValid() {
			n.HostAddress = n.Subnet.Addr().Next()
		}
		for _, p := range vm.Publishes {
			claim(listenUse{p.Listen, fmt.Sprintf("publish %q of vm %q", p.Name, vm.Name), p.ListenRange})
		}
		if n != nil {
			for _, e := range vm.Egresses {
				egressByNet[n] = append(egressByNet[n], listenUse{netip.AddrPortFrom(n.HostAddress, e.Port), fmt.Sprintf("egress %q of vm %q", e.Name, vm.Name), e.PortRange})
			}
		}
	}
	for _, n := range l.p.Networks {
		for i, u := range egressByNet[n] {
			clash := false
			for _, o := range egressByNet[n][:i] {
				if o.ap.Port() == u.ap.Port() {
					l.errorf(u.rng, "Two doors on the same port", "%s uses port %d on network %q's host address, which %s at %s already uses. Give each egress its own port.", u.what, u.ap.Port(), n.Name, o.what, at(o.rng))
					clash = true
					break
				}
			}
			if !clash && n.HostAddress.IsValid() {
				claim(u)
			}
		}
	}
}
