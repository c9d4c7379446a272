package testenv

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Two instances joined by a veth pair: the second answers qemu+tls://
// with the harness's certificates from the first one's namespace, and is
// unreachable from the root namespace (nothing was put there).
func TestLinkedInstancesOverTLS(t *testing.T) {
	a := StartInstance(t, Options{})
	b := StartInstance(t, Options{TLS: &TLSOptions{Addr: netip.MustParseAddr("10.251.0.2")}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Link(ctx, a, b, netip.MustParsePrefix("10.251.0.1/30"), netip.MustParsePrefix("10.251.0.2/30")); err != nil {
		t.Fatal(err)
	}
	out, err := a.Command("virsh", "-c", b.TLSURI(), "uri").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "qemu+tls://10.251.0.2/system") {
		t.Fatalf("virsh over TLS from %s: %v\n%s\n%s", a.NetNS, err, out, b.DaemonLog())
	}
	// Without the client certificate the server refuses the connection.
	if out, err := a.Command("virsh", "-c", "qemu+tls://10.251.0.2/system?pkipath=/nonexistent", "uri").CombinedOutput(); err == nil {
		t.Errorf("a client without certificates connected: %s", out)
	}
	// Nothing of the link is in the root namespace.
	if out, err := exec.Command("ip", "-o", "addr", "show").CombinedOutput(); err != nil || strings.Contains(string(out), "lvt-peer") || strings.Contains(string(out), "10.251.0.") {
		t.Errorf("root namespace shows the link (%v):\n%s", err, out)
	}
	ip, err := a.Command("ip", "-o", "addr", "show", "dev", "lvt-peer").CombinedOutput()
	if err != nil || !strings.Contains(string(ip), "10.251.0.1/30") {
		t.Errorf("link end in %s: %v %s", a.NetNS, err, ip)
	}
	// A stopped daemon refuses clients; started again it answers.
	if err := b.StopDaemon(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := a.Command("virsh", "-c", b.TLSURI(), "uri").CombinedOutput(); err == nil {
		t.Errorf("a stopped daemon answered: %s", out)
	}
	if err := b.StartDaemon(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := a.Command("virsh", "-c", b.TLSURI(), "uri").CombinedOutput(); err != nil {
		t.Errorf("after StartDaemon: %v\n%s", err, out)
	}
}
