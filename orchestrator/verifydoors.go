package orchestrator

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/legacyvm/legacyvm/internal/relay"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// Door checks verify runs for a VM with doors (local host only: the relay
// and the bridges are on the libvirt host).
const (
	CheckDoors           = "doors"            // each door's relay listens with the declared from
	CheckBridgeListeners = "bridge-listeners" // nothing but the relay and libvirt's DHCP/DNS listens on the bridge address
	CheckForwarding      = "no-forwarding"    // the kernel does not forward packets from the bridge
)

// socket is a listening TCP socket or a bound UDP socket.
type socket struct {
	proto string // "tcp" or "udp"
	addr  netip.Addr
	port  uint16
}

func (s socket) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(s.addr, s.port), s.proto)
}

// listeningSockets reads /proc/net/{tcp,tcp6,udp,udp6} of the namespace
// the reader runs in: TCP sockets in LISTEN state and UDP sockets bound
// and not connected.
func (h HostSystem) listeningSockets() ([]socket, error) {
	var out []socket
	for _, f := range []struct{ file, proto, state string }{
		{"tcp", "tcp", "0A"}, {"tcp6", "tcp", "0A"}, {"udp", "udp", "07"}, {"udp6", "udp", "07"},
	} {
		fh, err := os.Open(h.path(filepath.Join("proc/net", f.file)))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		first := true
		for sc.Scan() {
			if first {
				first = false
				continue
			}
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != f.state {
				continue
			}
			addr, port, ok := parseProcAddr(fields[1])
			if ok {
				out = append(out, socket{proto: f.proto, addr: addr, port: port})
			}
		}
		fh.Close()
	}
	return out, nil
}

// parseProcAddr parses /proc/net's "0100007F:0016" (IPv4) or 32 hex
// digits (IPv6), each 32-bit word in host (little-endian) order.
func parseProcAddr(s string) (netip.Addr, uint16, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, false
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return addr.Unmap(), uint16(port), true
}

// doorKeys are the relay keys of the doors recorded with d.
func expectedDoors(d virt.Domain, n virt.Network) map[string]virt.DoorRef {
	out := map[string]virt.DoorRef{}
	for _, v := range doorViews(d, n) {
		for _, r := range d.Metadata.Doors {
			if r.Kind == v.Kind && r.Name == v.Name {
				out[v.Key] = r
			}
		}
	}
	return out
}

// checkDoors runs the door checks of a VM with doors on network n.
func (vr *verifier) checkDoors(d virt.Domain, n virt.Network, label func(string) string, add func(check string, st CheckStatus, fix, format string, a ...any)) {
	if !IsLocalURI(vr.opts.URI) {
		add(CheckDoors, CheckSkip, onHostFix, label("the libvirt host is remote: its relay is checked only on the host itself"))
		return
	}
	want := expectedDoors(d, n)
	st, stErr := vr.daemonState()
	switch {
	case stErr != nil:
		add(CheckDoors, CheckWarn, "run legacyvm daemon on the libvirt host (it relays the doors)",
			label("%d door(s) declared, but %v: the doors are closed (nothing is exposed, nothing is relayed)"), len(want), stErr)
	default:
		var bad, closed, ok []string
		for _, key := range sortedKeys(want) {
			r := want[key]
			i := slices.IndexFunc(st.Doors, func(x relay.DoorStatus) bool { return x.Key == key })
			if i < 0 {
				closed = append(closed, key+" is not relayed")
				continue
			}
			got := st.Doors[i]
			if !got.Listening {
				closed = append(closed, fmt.Sprintf("%s does not listen (%s)", key, got.Error))
				continue
			}
			var from []string
			for _, p := range got.From {
				from = append(from, p.String())
			}
			wantFrom := r.From
			if r.Kind == virt.DoorEgress {
				if r.Scope == "network" {
					wantFrom = []string{n.Subnet.Masked().String()}
				} else if ip := reservedIP(n, d.Interfaces[0].MAC); ip.IsValid() {
					wantFrom = []string{netip.PrefixFrom(ip, 32).String()}
				}
			}
			if !slices.Equal(from, wantFrom) {
				bad = append(bad, fmt.Sprintf("%s accepts [%s], the profile says [%s]", key, strings.Join(from, ", "), strings.Join(wantFrom, ", ")))
				continue
			}
			ok = append(ok, fmt.Sprintf("%s on %s from %s", key, got.Listen, strings.Join(from, ", ")))
		}
		switch {
		case len(bad) > 0:
			add(CheckDoors, CheckFail, "restart legacyvm daemon (it reads the doors from libvirt) and apply the profile", label("%s"), strings.Join(append(bad, closed...), "; "))
		case len(closed) > 0:
			add(CheckDoors, CheckWarn, "see legacyvm daemon's log", label("%s"), strings.Join(closed, "; "))
		default:
			add(CheckDoors, CheckPass, "", label("relay listens: %s"), strings.Join(ok, "; "))
		}
	}

	// Only where the bridge is can its sockets and sysctls be read.
	if n.Bridge == "" || !vr.opts.System.exists(filepath.Join("sys/class/net", n.Bridge)) {
		add(CheckBridgeListeners, CheckSkip, "", label("bridge %s is not in this network namespace: run legacyvm verify where the bridges are"), n.Bridge)
		add(CheckForwarding, CheckSkip, "", label("bridge %s is not in this network namespace"), n.Bridge)
		return
	}
	socks, err := vr.opts.System.listeningSockets()
	if err != nil {
		add(CheckBridgeListeners, CheckSkip, "", label("cannot read the sockets: %v"), err)
	} else {
		allowed := map[string]bool{}
		if st != nil {
			for _, dd := range st.Doors {
				if dd.Kind == virt.DoorEgress && dd.Network == n.Name {
					allowed[fmt.Sprintf("tcp/%d", portOf(dd.Listen))] = true
				}
			}
		}
		if n.DNS {
			allowed["udp/53"], allowed["tcp/53"] = true, true
		}
		if n.DHCP {
			allowed["udp/67"] = true
		}
		var others []string
		for _, s := range socks {
			if s.addr != n.HostAddress || allowed[fmt.Sprintf("%s/%d", s.proto, s.port)] {
				continue
			}
			others = append(others, s.String())
		}
		slices.Sort(others)
		others = slices.Compact(others)
		if len(others) > 0 {
			add(CheckBridgeListeners, CheckFail, "stop those services or bind them to another address",
				label("besides the relay, something listens on the bridge address: %s"), strings.Join(others, ", "))
		} else {
			add(CheckBridgeListeners, CheckPass, "", label("only the relay's egress ports (and libvirt's DHCP/DNS) listen on %s"), n.HostAddress)
		}
	}
	ipf, _ := vr.opts.System.read("proc/sys/net/ipv4/ip_forward")
	brf, ok := vr.opts.System.read(filepath.Join("proc/sys/net/ipv4/conf", n.Bridge, "forwarding"))
	switch {
	case !ok:
		add(CheckForwarding, CheckSkip, "", label("cannot read the forwarding of %s"), n.Bridge)
	case strings.TrimSpace(brf) != "0":
		add(CheckForwarding, CheckFail, "sysctl -w net.ipv4.conf."+n.Bridge+".forwarding=0 (doors never need forwarding: the relay carries them)",
			label("the kernel forwards packets arriving on %s (net.ipv4.ip_forward=%s)"), n.Bridge, strings.TrimSpace(ipf))
	default:
		add(CheckForwarding, CheckPass, "", label("no forwarding from %s (net.ipv4.ip_forward=%s): doors go through the relay only"), n.Bridge, strings.TrimSpace(ipf))
	}
}

// daemonState reads the daemon's state once per verify.
func (vr *verifier) daemonState() (*DaemonState, error) {
	if !vr.stateRead {
		vr.stateRead = true
		if vr.opts.DaemonState == nil {
			vr.state, vr.stateErr = nil, ErrNoDaemon
		} else {
			vr.state, vr.stateErr = vr.opts.DaemonState()
		}
	}
	return vr.state, vr.stateErr
}
