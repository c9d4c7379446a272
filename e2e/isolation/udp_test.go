package isolation

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpListener counts the datagrams that arrive at a UDP socket the test
// opens inside the harness's network namespace (the "host" of the guests),
// like the host services (nmbd, rpcbind, snmpd, syslog) a one-way probe
// could reach.
type udpListener struct {
	addr string
	conn *net.UDPConn
	mu   sync.Mutex
	got  []string // "source: first line"
}

// listenUDP opens a UDP socket bound to ip:port in the namespace: the
// calling thread enters the namespace, opens the socket (a socket keeps
// the namespace it was made in) and goes back.
func (r *rig) listenUDP(ip string, port int) *udpListener {
	r.t.Helper()
	conn, err := func() (*net.UDPConn, error) {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + r.h.Env.NetNS)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("enter namespace %s: %w", r.h.Env.NetNS, err)
		}
		conn, lerr := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// This thread is in the wrong namespace: let it die with the
			// goroutine (no UnlockOSThread) rather than serve others.
			if conn != nil {
				conn.Close()
			}
			return nil, fmt.Errorf("leave namespace %s: %w", r.h.Env.NetNS, err)
		}
		runtime.UnlockOSThread()
		return conn, lerr
	}()
	if err != nil {
		r.t.Fatalf("UDP listener on %s:%d in the namespace: %v", ip, port, err)
	}
	l := &udpListener{addr: fmt.Sprintf("%s:%d", ip, port), conn: conn}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			line, _, _ := strings.Cut(string(buf[:n]), "\n")
			l.mu.Lock()
			l.got = append(l.got, fmt.Sprintf("%s: %q", from, line))
			l.mu.Unlock()
		}
	}()
	r.t.Cleanup(func() { conn.Close() })
	return l
}

// received returns what arrived so far.
func (l *udpListener) received() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// udpCounter is the number of UDP datagrams the guest at ip received
// (delivered or not: InDatagrams + NoPorts).
func (r *rig) udpCounter(ip string) int {
	r.t.Helper()
	out := r.control(ip, "counters")
	var n int
	i := strings.Index(out, "udp_in=")
	if i < 0 {
		r.t.Fatalf("counters of %s: %q (no udp_in)", ip, out)
	}
	if _, err := fmt.Sscanf(out[i:], "udp_in=%d", &n); err != nil {
		r.t.Fatalf("counters of %s: %q: %v", ip, out, err)
	}
	return n
}

// oneWayUDP sends one-way UDP from sh-1 (shared network, guest_to_guest,
// 10.94.1.0/24) to host sockets bound to 0.0.0.0 and to the bridge
// address: to the subnet's broadcast address (in a broadcast frame and in
// group frames the IPv4 multicast MAC mask does not cover), to the limited
// broadcast, to a multicast group, to the bridge address and to another
// host address. None may arrive (replies were always dropped, so only a
// listener sees this). A UDP port the network allows out to the host is
// the positive control: the sender and the listeners work.
//
// Then a rogue DHCP server: sh-1 sends DHCP replies (from port 67) to
// sh-2's port 68, unicast and to the broadcast address; sh-2 counts the
// UDP datagrams it receives: none may arrive, while ordinary guest-to-guest
// UDP (the positive control) does.
func oneWayUDP(t *testing.T, r *rig, ip map[string]string) {
	const (
		anyPort     = 5140 // host socket on 0.0.0.0
		bridgePort  = 5141 // host socket on the bridge address
		allowedUDP  = 5142 // out udp 5142 to the host is allowed on "shared"
		oddMulticst = "01:00:5e:80:00:01"
		ipv6Mcast   = "33:33:00:00:00:01"
		subnetBcast = "10.94.1.255"
	)
	onAny := r.listenUDP("0.0.0.0", anyPort)
	onBridge := r.listenUDP(sharedBridge, bridgePort)
	control := r.listenUDP("0.0.0.0", allowedUDP)

	udp := func(dst string, port int, extra string) string { return fmt.Sprintf("udp=%s:%d%s", dst, port, extra) }
	forbidden := []string{
		udp(subnetBcast, anyPort, ""),
		udp(subnetBcast, anyPort, "@"+oddMulticst),
		udp(subnetBcast, anyPort, "@"+ipv6Mcast),
		udp("255.255.255.255", anyPort, ""),
		udp("239.255.0.1", anyPort, ""),
		udp(sharedBridge, anyPort, ""),
		udp(hostExtra, anyPort, ""),
		udp(sharedBridge, bridgePort, ""),
		udp(subnetBcast, bridgePort, "@"+oddMulticst),
	}
	res := r.probe(ip["sh-1"], append(forbidden, udp(sharedBridge, allowedUDP, ""))...)
	for check, p := range res {
		if p.Result != "pass" {
			t.Errorf("%s: the guest could not send (%s): the probe proves nothing", check, p.Line)
		}
	}
	// Datagrams in flight arrive within milliseconds; give them a second.
	deadline := time.Now().Add(5 * time.Second)
	for len(control.received()) < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if got := control.received(); len(got) != 3 {
		t.Errorf("positive control: %d datagrams of the allowed out udp %d reached the host, want 3: %v", len(got), allowedUDP, got)
	}
	if got := onAny.received(); len(got) != 0 {
		t.Errorf("one-way UDP reached a host socket bound to 0.0.0.0:%d (%d datagrams): %v", anyPort, len(got), got)
	}
	if got := onBridge.received(); len(got) != 0 {
		t.Errorf("one-way UDP reached a host socket bound to %s: %v", onBridge.addr, got)
	}

	// Rogue DHCP on a guest_to_guest network.
	before := r.udpCounter(ip["sh-2"])
	r.probe(ip["sh-1"], udp(ip["sh-2"], 5000, ""))
	afterControl := r.udpCounter(ip["sh-2"])
	if afterControl-before < 3 {
		t.Errorf("positive control: sh-2 counted %d UDP datagrams from sh-1, want at least 3", afterControl-before)
	}
	rogue := r.probe(ip["sh-1"], udp(ip["sh-2"], 68, "/67"), udp(subnetBcast, 68, "/67"), udp("255.255.255.255", 68, "/67"))
	for check, p := range rogue {
		if p.Result != "pass" {
			t.Errorf("%s: the guest could not send (%s): the probe proves nothing", check, p.Line)
		}
	}
	time.Sleep(time.Second)
	if got := r.udpCounter(ip["sh-2"]) - afterControl; got != 0 {
		t.Errorf("sh-2 received %d UDP datagrams while sh-1 sent DHCP replies (from port 67) to it, want 0", got)
	}
}
