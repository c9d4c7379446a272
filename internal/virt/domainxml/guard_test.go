package domainxml

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// These tests run IPv4 frames through the rendered root chain (the root
// filter's and the guard's rules merged) with ebtables semantics (rules in
// priority order, first match wins) and check what reaches the host and
// the guest.
// They prove the rule set, not the kernel: the adapter's conformance tests
// and the e2e tests check the same flows with a real libvirtd and a
// stand-in guest.

const (
	hostIP     = "10.77.0.1"
	guestIP    = "10.77.0.11"
	guest2IP   = "10.77.0.12"
	lanIP      = "192.168.1.5" // another address of the host
	otherBrIP  = "10.78.0.1"   // the bridge address of another network
	subnetBcst = "10.77.0.255"
	bcastMAC   = "ff:ff:ff:ff:ff:ff"
)

type frame struct {
	dir            string // "out": sent by the guest; "in": sent to it
	srcMAC, dstMAC string
	srcIP, dstIP   string
	proto          string
	sport, dport   uint16
}

// verdict runs an IPv4 frame through the interface's root chain as libvirt
// builds it from fs (the guard and the root filter, both chain root): every
// rule of both, sorted by priority, first match wins; "pass" is a return
// or an accept (both end the chain, whose nat-table policy accepts) or no
// match, "drop" a drop. The root filter's $MAC and $IP are guest 1's.
func verdict(t *testing.T, fs []*libvirtxml.NWFilter, f frame) string {
	t.Helper()
	var rules []*libvirtxml.NWFilterRule
	for _, flt := range fs {
		for _, e := range flt.Entries {
			if e.Rule != nil {
				rules = append(rules, e.Rule)
			}
		}
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Priority < rules[j].Priority })
	for _, r := range rules {
		if (r.Direction == f.dir || r.Direction == "inout") && ruleMatches(t, r, f) {
			if r.Action == "drop" {
				return "drop"
			}
			return "pass"
		}
	}
	return "pass"
}

// ruleMatches matches one rule against an IPv4 frame: ARP and RARP rules
// never match it, <mac> rules by protocol and source MAC, a rule without a
// protocol element always.
func ruleMatches(t *testing.T, r *libvirtxml.NWFilterRule, f frame) bool {
	t.Helper()
	switch {
	case r.ARP != nil || r.RARP != nil:
		return false
	case r.MAC != nil:
		if p := r.MAC.ProtocolID.Str; p != "" && p != "ipv4" {
			return false
		}
		if m := subst(r.MAC.SrcMACAddr); m.Str != "" {
			return macMatches(t, m, libvirtxml.NWFilterField{}, f.srcMAC) != (r.MAC.Match == "no")
		}
		return true
	case r.IP != nil:
		ip := *r.IP
		ip.SrcIPAddr, ip.SrcMACAddr = subst(ip.SrcIPAddr), subst(ip.SrcMACAddr)
		return ipMatches(t, &ip, f)
	}
	return true
}

// subst gives the root filter's variables guest 1's values.
func subst(f libvirtxml.NWFilterField) libvirtxml.NWFilterField {
	switch f.Var {
	case "MAC":
		return libvirtxml.NWFilterField{Str: guestMAC}
	case "IP":
		return libvirtxml.NWFilterField{Str: guestIP}
	}
	return f
}

func field(t *testing.T, f libvirtxml.NWFilterField) string {
	t.Helper()
	if f.Var != "" || f.Uint != nil {
		t.Fatalf("guard fields are literal strings, got %+v", f)
	}
	return f.Str
}

func macMatches(t *testing.T, addr, mask libvirtxml.NWFilterField, got string) bool {
	a := field(t, addr)
	if a == "" {
		return true
	}
	want, err := net.ParseMAC(a)
	if err != nil {
		t.Fatalf("rule MAC %q: %v", a, err)
	}
	m := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if s := field(t, mask); s != "" {
		if m, err = net.ParseMAC(s); err != nil {
			t.Fatalf("rule MAC mask %q: %v", s, err)
		}
	}
	g, err := net.ParseMAC(got)
	if err != nil {
		t.Fatalf("frame MAC %q: %v", got, err)
	}
	for i := range want {
		if want[i]&m[i] != g[i]&m[i] {
			return false
		}
	}
	return true
}

func portMatches(t *testing.T, start, end libvirtxml.NWFilterField, got uint16) bool {
	s := field(t, start)
	if s == "" {
		return true
	}
	lo, _ := strconv.Atoi(s)
	hi := lo
	if e := field(t, end); e != "" {
		hi, _ = strconv.Atoi(e)
	}
	return int(got) >= lo && int(got) <= hi
}

func ipMatches(t *testing.T, ip *libvirtxml.NWFilterRuleIP, f frame) bool {
	t.Helper()
	if ip == nil {
		t.Fatal("guard rules are <ip> (ebtables) rules only")
	}
	if field(t, ip.SrcIPMask) != "" || field(t, ip.SrcMACMask) != "" {
		t.Fatal("the simulator does not model these masks")
	}
	// Each attribute present is one test; match='no' negates every one of
	// them (ebtables "!"), and the rule matches when all tests hold.
	neg := ip.Match == "no"
	ok := func(present, hit bool) bool { return !present || hit != neg }
	if !ok(field(t, ip.SrcMACAddr) != "", macMatches(t, ip.SrcMACAddr, libvirtxml.NWFilterField{}, f.srcMAC)) ||
		!ok(field(t, ip.DstMACAddr) != "", macMatches(t, ip.DstMACAddr, ip.DstMACMask, f.dstMAC)) {
		return false
	}
	if s := field(t, ip.SrcIPAddr); !ok(s != "", s == f.srcIP) {
		return false
	}
	if s := field(t, ip.DstIPAddr); s != "" {
		bits := 32
		if m := field(t, ip.DstIPMask); m != "" {
			bits, _ = strconv.Atoi(m)
		}
		p := netip.PrefixFrom(netip.MustParseAddr(s), bits)
		if !ok(true, p.Contains(netip.MustParseAddr(f.dstIP))) {
			return false
		}
	}
	if p := field(t, ip.Protocol); !ok(p != "", p == f.proto) {
		return false
	}
	return ok(field(t, ip.SrcPortStart) != "", portMatches(t, ip.SrcPortStart, ip.SrcPortEnd, f.sport)) &&
		ok(field(t, ip.DstPortStart) != "", portMatches(t, ip.DstPortStart, ip.DstPortEnd, f.dport))
}

// Frame builders, seen from guest 1.
func toHost(proto string, sport, dport uint16) frame {
	return frame{"out", guestMAC, bridgeMAC, guestIP, hostIP, proto, sport, dport}
}
func fromHost(proto string, sport, dport uint16) frame {
	return frame{"in", bridgeMAC, guestMAC, hostIP, guestIP, proto, sport, dport}
}

// Flows every variant must treat the same way.
var commonFlows = []struct {
	name string
	f    frame
	want string
}{
	{"guest to host ssh", toHost("tcp", 50000, 22), "drop"},
	{"guest to host smb", toHost("tcp", 50000, 445), "drop"},
	{"guest to host high port", toHost("tcp", 50000, 8080), "drop"},
	{"guest to another host address through the bridge MAC", frame{"out", guestMAC, bridgeMAC, guestIP, lanIP, "tcp", 50000, 22}, "drop"},
	{"guest to another bridge's address through the bridge MAC", frame{"out", guestMAC, bridgeMAC, guestIP, otherBrIP, "udp", 50000, 53}, "drop"},
	{"guest to host address inside a broadcast frame", frame{"out", guestMAC, bcastMAC, guestIP, hostIP, "tcp", 50000, 22}, "drop"},
	{"guest to host address behind another guest's MAC", frame{"out", guestMAC, guest2MAC, guestIP, hostIP, "tcp", 50000, 22}, "drop"},
	{"guest NetBIOS broadcast", frame{"out", guestMAC, bcastMAC, guestIP, subnetBcst, "udp", 137, 137}, "drop"},
	{"guest mDNS multicast", frame{"out", guestMAC, "01:00:5e:00:00:fb", guestIP, "224.0.0.251", "udp", 5353, 5353}, "drop"},
	{"guest DHCP request from the server port", frame{"out", guestMAC, bcastMAC, guestIP, "255.255.255.255", "udp", 67, 67}, "drop"},
	// The root filter's anti-spoofing (clean-traffic's before).
	{"guest with a forged source MAC", frame{"out", guest2MAC, guest2MAC, guestIP, guest2IP, "tcp", 50000, 445}, "drop"},
	{"guest with a forged source IP", frame{"out", guestMAC, guest2MAC, guest2IP, guest2IP, "tcp", 50000, 445}, "drop"},
	{"guest DHCP request with a forged source IP", frame{"out", guestMAC, bcastMAC, guest2IP, "255.255.255.255", "udp", 68, 67}, "drop"},
	{"guest DHCP request with a forged source MAC", frame{"out", guest2MAC, bcastMAC, "0.0.0.0", "255.255.255.255", "udp", 68, 67}, "drop"},
	// clean-traffic let any UDP from 0.0.0.0 pass; only DHCP needs it.
	{"guest UDP from 0.0.0.0 to another guest", frame{"out", guestMAC, guest2MAC, "0.0.0.0", guest2IP, "udp", 68, 67}, "drop"},
	{"guest UDP from 0.0.0.0 broadcast, not DHCP", frame{"out", guestMAC, bcastMAC, "0.0.0.0", "255.255.255.255", "udp", 50000, 7777}, "drop"},
	{"guest to guest tcp", frame{"out", guestMAC, guest2MAC, guestIP, guest2IP, "tcp", 50000, 445}, "pass"},
	{"guest to guest icmp", frame{"out", guestMAC, guest2MAC, guestIP, guest2IP, "icmp", 0, 0}, "pass"},
	{"guest to guest udp", frame{"out", guestMAC, guest2MAC, guestIP, guest2IP, "udp", 50000, 7777}, "pass"},
	{"guest from guest tcp", frame{"in", guest2MAC, guestMAC, guest2IP, guestIP, "tcp", 50000, 445}, "pass"},
	{"guest from guest broadcast", frame{"in", guest2MAC, bcastMAC, guest2IP, subnetBcst, "udp", 137, 137}, "pass"},
	{"host broadcast to guests", frame{"in", bridgeMAC, bcastMAC, hostIP, subnetBcst, "udp", 138, 138}, "drop"},
	{"host multicast to guests", frame{"in", bridgeMAC, "01:00:5e:00:00:fb", hostIP, "224.0.0.251", "udp", 5353, 5353}, "drop"},
	{"host address from a foreign MAC", frame{"in", guest2MAC, guestMAC, hostIP, guestIP, "tcp", 22, 50000}, "drop"},
	// libvirt cannot match the group bit alone: other group MACs are caught
	// by address.
	{"guest to another host address inside an odd group MAC", frame{"out", guestMAC, "03:00:00:00:00:01", guestIP, lanIP, "tcp", 50000, 22}, "drop"},
	{"guest to a routed address behind another guest's MAC", frame{"out", guestMAC, guest2MAC, guestIP, "8.8.8.8", "udp", 50000, 53}, "drop"},
	// Only frames to a guest's MAC reach other guests: any other group MAC
	// also delivers the frame to the host's stack.
	{"guest to guest inside an odd group MAC", frame{"out", guestMAC, "03:00:00:00:00:01", guestIP, guest2IP, "udp", 50000, 7777}, "drop"},
	// One-way UDP to host sockets bound to 0.0.0.0 (issue 17): the
	// subnet's broadcast address inside a group MAC the multicast mask
	// does not cover, or behind a guest MAC; the limited broadcast inside
	// any group MAC.
	{"guest UDP to the subnet broadcast inside an odd multicast MAC", frame{"out", guestMAC, "01:00:5e:80:00:01", guestIP, subnetBcst, "udp", 50000, 111}, "drop"},
	{"guest UDP to the subnet broadcast inside an IPv6 multicast MAC", frame{"out", guestMAC, "33:33:00:00:00:01", guestIP, subnetBcst, "udp", 50000, 514}, "drop"},
	{"guest UDP to the subnet broadcast behind another guest's MAC", frame{"out", guestMAC, guest2MAC, guestIP, subnetBcst, "udp", 50000, 137}, "drop"},
	{"guest UDP to the limited broadcast inside an odd group MAC", frame{"out", guestMAC, "03:00:00:00:00:01", guestIP, "255.255.255.255", "udp", 50000, 161}, "drop"},
	{"guest UDP to the limited broadcast behind another guest's MAC", frame{"out", guestMAC, guest2MAC, guestIP, "255.255.255.255", "udp", 50000, 161}, "drop"},
	// Rogue DHCP server: its replies never leave the guest.
	{"guest DHCP offer unicast to another guest", frame{"out", guestMAC, guest2MAC, guestIP, guest2IP, "udp", 67, 68}, "drop"},
	{"guest DHCP offer broadcast", frame{"out", guestMAC, bcastMAC, guestIP, "255.255.255.255", "udp", 67, 68}, "drop"},
	{"guest DHCP relay reply", frame{"out", guestMAC, guest2MAC, guestIP, guest2IP, "udp", 67, 67}, "drop"},
	{"guest to guest udp from 68", frame{"out", guestMAC, guest2MAC, guestIP, guest2IP, "udp", 68, 5000}, "pass"},
}

func TestGuardFlows(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*virt.FilterSpec)
		flows  []struct {
			name string
			f    frame
			want string
		}
		overrides map[string]string // common flow name -> verdict
	}{
		{"dhcp only", func(*virt.FilterSpec) {}, flows(
			"dhcp discover", frame{"out", guestMAC, bcastMAC, "0.0.0.0", "255.255.255.255", "udp", 68, 67}, "pass",
			"dhcp renew", toHost("udp", 68, 67), "pass",
			"dhcp offer unicast", fromHost("udp", 67, 68), "pass",
			"dhcp offer broadcast", frame{"in", bridgeMAC, bcastMAC, hostIP, "255.255.255.255", "udp", 67, 68}, "pass",
			"dns to host (off)", toHost("udp", 50000, 53), "drop",
			"host pings guest", fromHost("icmp", 0, 0), "drop",
			"guest pings host", toHost("icmp", 0, 0), "drop",
			"host to guest rdp", fromHost("tcp", 40000, 3389), "drop",
		), nil},
		{"dns", func(s *virt.FilterSpec) { s.DNS = true }, flows(
			"dns udp", toHost("udp", 50000, 53), "pass",
			"dns tcp", toHost("tcp", 50000, 53), "pass",
			"dns udp reply", fromHost("udp", 53, 50000), "pass",
			"dns tcp reply", fromHost("tcp", 53, 50000), "pass",
			"dns to another host address", frame{"out", guestMAC, bridgeMAC, guestIP, lanIP, "udp", 50000, 53}, "drop",
			"ssh still closed", toHost("tcp", 50000, 22), "drop",
		), nil},
		{"rdp in", func(s *virt.FilterSpec) {
			s.Allows = []virt.AllowSpec{{Name: "rdp", Direction: "in", Peer: "host", Protocol: "tcp", PortStart: 3389}}
		}, flows(
			"host connects to guest rdp", fromHost("tcp", 40000, 3389), "pass",
			"guest answers", toHost("tcp", 3389, 40000), "pass",
			"guest connects to host rdp", toHost("tcp", 50000, 3389), "drop",
			"host to another guest port", fromHost("tcp", 40000, 445), "drop",
			"guest from 3389 to a privileged host port", toHost("tcp", 3389, 22), "drop",
			// The documented stateless limitation: source port 3389 reaches
			// unprivileged host ports.
			"stateless: guest from 3389 to a high host port", toHost("tcp", 3389, 8080), "pass",
			"udp 3389 stays closed", fromHost("udp", 40000, 3389), "drop",
		), nil},
		{"tcp out range", func(s *virt.FilterSpec) {
			s.Allows = []virt.AllowSpec{{Name: "web", Direction: "out", Peer: "host", Protocol: "tcp", PortStart: 8080, PortEnd: 8081}}
		}, flows(
			"guest to host 8080", toHost("tcp", 50000, 8080), "pass",
			"guest to host 8081", toHost("tcp", 50000, 8081), "pass",
			"guest to host 8082", toHost("tcp", 50000, 8082), "drop",
			"host replies", fromHost("tcp", 8080, 50000), "pass",
			"host from 8080 to a privileged guest port", fromHost("tcp", 8080, 445), "drop",
			"host connects to guest 8080", fromHost("tcp", 40000, 8080), "drop",
		), map[string]string{"guest to host high port": "pass"}},
		{"icmp", func(s *virt.FilterSpec) {
			s.Allows = []virt.AllowSpec{{Name: "ping", Direction: "out", Peer: "host", Protocol: "icmp"}}
		}, flows(
			"guest pings host", toHost("icmp", 0, 0), "pass",
			"host pings guest", fromHost("icmp", 0, 0), "pass",
			"guest pings another host address", frame{"out", guestMAC, bridgeMAC, guestIP, lanIP, "icmp", 0, 0}, "drop",
			"tcp stays closed", toHost("tcp", 50000, 22), "drop",
		), nil},
		{"any", func(s *virt.FilterSpec) {
			s.DHCP = false
			s.Allows = []virt.AllowSpec{{Name: "all", Direction: "out", Peer: "host", Protocol: "any"}}
		}, flows(
			"guest to host ssh", toHost("tcp", 50000, 22), "pass",
			"host to guest", fromHost("tcp", 40000, 3389), "pass",
			"another host address", frame{"out", guestMAC, bridgeMAC, guestIP, lanIP, "tcp", 50000, 22}, "drop",
		), map[string]string{
			"guest to host ssh": "pass", "guest to host smb": "pass", "guest to host high port": "pass",
			// The host's own broadcasts come from H: "any" lets them in
			// (guests' broadcasts stay dropped).
			"host broadcast to guests": "pass", "host multicast to guests": "pass",
		}},
		{"layer 2 only", func(s *virt.FilterSpec) {
			s.Subnet, s.HostAddress, s.DHCP = netip.Prefix{}, netip.Addr{}, false
		}, flows(
			"dhcp discover", frame{"out", guestMAC, bcastMAC, "0.0.0.0", "255.255.255.255", "udp", 68, 67}, "drop",
			"anything to the bridge MAC", toHost("udp", 50000, 53), "drop",
			"anything from the bridge MAC", fromHost("udp", 53, 50000), "drop",
		), map[string]string{
			// Without a host address, 10.77.0.1 is just some address.
			"guest to host address behind another guest's MAC": "pass",
			"host address from a foreign MAC":                  "pass",
			// No subnet: nothing says which addresses are routed, and
			// there is no subnet broadcast address.
			"guest to a routed address behind another guest's MAC":         "pass",
			"guest UDP to the subnet broadcast behind another guest's MAC": "pass",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := sampleFilter()
			tt.modify(&spec)
			fs, err := Filters(spec)
			if err != nil {
				t.Fatal(err)
			}
			guard := fs[0]
			checkGuardShape(t, guard)
			checkChainOrder(t, fs)
			all := append(append([]struct {
				name string
				f    frame
				want string
			}{}, commonFlows...), tt.flows...)
			for _, fl := range all {
				if w, ok := tt.overrides[fl.name]; ok {
					fl.want = w
				}
				if got := verdict(t, fs, fl.f); got != fl.want {
					t.Errorf("%s: %s, want %s", fl.name, got, fl.want)
				}
			}
		})
	}
}

// flows builds a flow table from (name, frame, want) triples.
func flows(args ...any) []struct {
	name string
	f    frame
	want string
} {
	var out []struct {
		name string
		f    frame
		want string
	}
	for i := 0; i+2 < len(args); i += 3 {
		out = append(out, struct {
			name string
			f    frame
			want string
		}{args[i].(string), args[i+1].(frame), args[i+2].(string)})
	}
	return out
}

// checkChainOrder checks the order of the merged root chain the package
// documentation promises: MAC spoof drop, DHCP from 0.0.0.0, IP spoof
// drop, the rest of the guard, then the root filter's accepts and the
// final drop; every priority in libvirt's range and the root filter's
// priorities unique (equal priorities would leave the order to libvirt).
func checkChainOrder(t *testing.T, fs []*libvirtxml.NWFilter) {
	t.Helper()
	guard, root := fs[0], fs[1]
	if root.Chain != FilterChain || guard.Chain != FilterChain {
		t.Errorf("chains %q and %q, want %s (no sub-chain)", root.Chain, guard.Chain, FilterChain)
	}
	var refs []string
	seen := map[string]bool{}
	for _, e := range root.Entries {
		if e.Ref != nil {
			refs = append(refs, e.Ref.Filter)
			continue
		}
		r := e.Rule
		if r.Priority < -1000 || r.Priority > 1000 || r.Priority == 0 {
			t.Errorf("root rule priority %d: outside libvirt's range (or 0, which libvirt reads as 500)", r.Priority)
		}
		for _, d := range []string{"in", "out"} {
			if r.Direction == d || r.Direction == "inout" {
				k := fmt.Sprintf("%s/%d", d, r.Priority)
				if seen[k] {
					t.Errorf("two root rules %s", k)
				}
				seen[k] = true
			}
		}
	}
	if len(refs) != 1 || refs[0] != guard.Name {
		t.Errorf("root references %v, want only %s", refs, guard.Name)
	}
	var unbound, other []int
	for _, e := range guard.Entries {
		if e.Rule.Priority == prioDHCPUnbound {
			unbound = append(unbound, e.Rule.Priority)
		} else {
			other = append(other, e.Rule.Priority)
		}
	}
	for _, p := range unbound {
		if p <= prioMACSpoof || p >= prioIPSpoof {
			t.Errorf("DHCP from 0.0.0.0 at %d: must run between the MAC (%d) and IP (%d) spoof drops", p, prioMACSpoof, prioIPSpoof)
		}
	}
	for _, p := range other {
		if p <= prioIPSpoof || p >= prioIPv4Accept {
			t.Errorf("guard rule at %d: must run between the IP spoof drop (%d) and the IPv4 accepts (%d)", p, prioIPSpoof, prioIPv4Accept)
		}
	}
	if !(prioIPv4Accept < prioARPSpoofMAC && prioARPSpoofMAC < prioARPSpoofIP && prioARPSpoofIP < prioARPAccept &&
		prioARPAccept < prioAnnounce && prioAnnounce < prioAnnounceRev && prioAnnounceRev < prioDropRest) {
		t.Error("root filter priorities out of order")
	}
}

// checkGuardShape checks the structural promises of the guard.
func checkGuardShape(t *testing.T, g *libvirtxml.NWFilter) {
	t.Helper()
	if g.Chain != FilterChain {
		t.Errorf("guard chain %q: want %s (its rules merge into the root chain)", g.Chain, FilterChain)
	}
	maxReturn, minDrop := -1001, 1001
	for _, e := range g.Entries {
		r := e.Rule
		if r == nil {
			t.Fatal("the guard references no other filter")
		}
		if r.Direction != "in" && r.Direction != "out" {
			t.Errorf("direction %q: only explicit in/out", r.Direction)
		}
		if r.IP == nil || r.TCP != nil || r.UDP != nil || r.ICMP != nil || r.All != nil {
			t.Error("only <ip> (ebtables) rules: iptables-level rules need br_netfilter")
		}
		if r.Priority < -1000 || r.Priority > 1000 {
			t.Errorf("rule priority %d out of libvirt's range", r.Priority)
		}
		switch r.Action {
		case "return":
			maxReturn = max(maxReturn, r.Priority)
		case "drop":
			minDrop = min(minDrop, r.Priority)
		default:
			t.Errorf("action %q: only return and drop (the root filter's accepts come after the guard)", r.Action)
		}
	}
	if minDrop == 1001 {
		t.Error("the guard drops nothing")
	}
	if maxReturn >= minDrop {
		t.Errorf("a return (priority %d) runs after a drop (priority %d)", maxReturn, minDrop)
	}
}
