package orchestrator

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/internal/relay"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// Door checks verify runs for a VM with doors (local host only: the relay
// and the bridges are on the libvirt host).
const (
	checkDoorsCheck      = "doors"            // each door's relay listens with the declared from
	checkBridgeListeners = "bridge-listeners" // nothing but the relay and libvirt's DHCP/DNS listens on the bridge address
	checkForwarding      = "no-forwarding"    // the kernel does not forward packets from the bridge
)

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
func (vr *verifier) checkDoors(ctx context.Context, d virt.Domain, n virt.Network, label func(string) string, add func(check string, st CheckStatus, fix, format string, a ...any)) {
	if !isLocalURI(vr.opts.URI) {
		add(checkDoorsCheck, CheckSkip, onHostFix, label("the libvirt host is remote: its relay is checked only on the host itself"))
		return
	}
	want := expectedDoors(d, n)
	st, stErr := vr.daemonState()
	switch {
	case stErr != nil:
		add(checkDoorsCheck, CheckWarn, "run legacyvm daemon on the libvirt host (it relays the doors)",
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
			add(checkDoorsCheck, CheckFail, "restart legacyvm daemon (it reads the doors from libvirt) and apply the profile", label("%s"), strings.Join(append(bad, closed...), "; "))
		case len(closed) > 0:
			add(checkDoorsCheck, CheckWarn, "see legacyvm daemon's log", label("%s"), strings.Join(closed, "; "))
		default:
			add(checkDoorsCheck, CheckPass, "", label("relay listens: %s"), strings.Join(ok, "; "))
		}
	}

	// Only where the bridge is can its sockets and sysctls be read.
	if n.Bridge == "" || !vr.opts.System.Exists(filepath.Join("sys/class/net", n.Bridge)) {
		add(checkBridgeListeners, CheckSkip, "", label("bridge %s is not in this network namespace: run legacyvm verify where the bridges are"), n.Bridge)
		add(checkForwarding, CheckSkip, "", label("bridge %s is not in this network namespace"), n.Bridge)
		return
	}
	socks, err := vr.opts.System.ListeningSockets(ctx)
	if err != nil {
		add(checkBridgeListeners, CheckSkip, "", label("cannot read the sockets: %v"), err)
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
			if s.Addr != n.HostAddress || allowed[fmt.Sprintf("%s/%d", s.Proto, s.Port)] {
				continue
			}
			others = append(others, s.String())
		}
		slices.Sort(others)
		others = slices.Compact(others)
		if len(others) > 0 {
			add(checkBridgeListeners, CheckFail, "stop those services or bind them to another address",
				label("besides the relay, something listens on the bridge address: %s"), strings.Join(others, ", "))
		} else {
			add(checkBridgeListeners, CheckPass, "", label("only the relay's egress ports (and libvirt's DHCP/DNS) listen on %s"), n.HostAddress)
		}
	}
	ipf, _ := vr.opts.System.Read("proc/sys/net/ipv4/ip_forward")
	brf, ok := vr.opts.System.Read(filepath.Join("proc/sys/net/ipv4/conf", n.Bridge, "forwarding"))
	switch {
	case !ok:
		add(checkForwarding, CheckSkip, "", label("cannot read the forwarding of %s"), n.Bridge)
	case strings.TrimSpace(brf) != "0":
		add(checkForwarding, CheckFail, "sysctl -w net.ipv4.conf."+n.Bridge+".forwarding=0 (doors never need forwarding: the relay carries them)",
			label("the kernel forwards packets arriving on %s (net.ipv4.ip_forward=%s)"), n.Bridge, strings.TrimSpace(ipf))
	default:
		add(checkForwarding, CheckPass, "", label("no forwarding from %s (net.ipv4.ip_forward=%s): doors go through the relay only"), n.Bridge, strings.TrimSpace(ipf))
	}
}

// daemonState reads the daemon's state once per verify.
func (vr *verifier) daemonState() (*daemonstate.State, error) {
	if !vr.stateRead {
		vr.stateRead = true
		if vr.opts.DaemonState == nil {
			vr.state, vr.stateErr = nil, daemonstate.ErrNoDaemon
		} else {
			vr.state, vr.stateErr = vr.opts.DaemonState()
		}
	}
	return vr.state, vr.stateErr
}
