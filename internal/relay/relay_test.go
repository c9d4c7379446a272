package relay

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer answers each line with "echo: line" and returns its address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					if _, err := io.WriteString(c, "echo: "+s.Text()+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newRelay(t *testing.T) (*Relay, *syncBuf) {
	var logs syncBuf
	r := New(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(r.Close)
	return r, &logs
}

func listenOf(t *testing.T, r *Relay, key string) string {
	t.Helper()
	for _, s := range r.Status() {
		if s.Key == key {
			if !s.Listening {
				t.Fatalf("door %s not listening: %s", key, s.Error)
			}
			return s.Bound
		}
	}
	t.Fatalf("no door %s", key)
	return ""
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayCarriesClientsInFromAndRefusesOthers(t *testing.T) {
	target := echoServer(t)
	r, logs := newRelay(t)
	r.Sync([]Door{
		{Key: "publish/app/ok", Kind: "publish", Listen: "127.0.0.1:0", From: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Target: target, LocalAddr: netip.MustParseAddr("127.0.0.1")},
		{Key: "publish/app/lan", Kind: "publish", Listen: "127.0.0.1:0", From: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Target: target},
	})
	c, err := net.Dial("tcp", listenOf(t, r, "publish/app/ok"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("relayed reply %q, %v", line, err)
	}
	c.Close()
	waitFor(t, "the connection to be logged", func() bool { return strings.Contains(logs.String(), "door connection closed") })
	if !strings.Contains(logs.String(), "bytes_in=6 bytes_out=12") {
		t.Errorf("log lacks the byte counts:\n%s", logs)
	}

	// A client outside from is closed at once, without a byte.
	c2, err := net.Dial("tcp", listenOf(t, r, "publish/app/lan"))
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c2.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("refused client read %d bytes, %v", n, err)
	}
	waitFor(t, "the refusal to be logged", func() bool { return strings.Contains(logs.String(), "door refused client") })
	st := map[string]DoorStatus{}
	for _, s := range r.Status() {
		st[s.Key] = s
	}
	if s := st["publish/app/ok"]; s.Accepted != 1 || s.Refused != 0 || s.BytesIn != 6 || s.BytesOut != 12 {
		t.Errorf("ok door status %+v", s)
	}
	if s := st["publish/app/lan"]; s.Accepted != 0 || s.Refused != 1 {
		t.Errorf("lan door status %+v", s)
	}
	if !strings.Contains(logs.String(), "reason=\"not in from\"") {
		t.Errorf("refusal without its reason:\n%s", logs)
	}
}

func TestRelayLimitsConcurrentConnections(t *testing.T) {
	target := echoServer(t)
	r, logs := newRelay(t)
	r.Sync([]Door{{Key: "k", Kind: "publish", Listen: "127.0.0.1:0", From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Target: target, MaxConnections: 1}})
	addr := listenOf(t, r, "k")
	c1, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	io.WriteString(c1, "one\n")
	if l, _ := bufio.NewReader(c1).ReadString('\n'); l != "echo: one\n" {
		t.Fatalf("first connection: %q", l)
	}
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("second connection read %d, %v; want closed", n, err)
	}
	waitFor(t, "the refusal", func() bool { return strings.Contains(logs.String(), "max_connections (1) reached") })
	if s := r.Status()[0]; s.Active != 1 || s.Refused != 1 {
		t.Errorf("status %+v, want 1 active, 1 refused", s)
	}
}

func TestRelaySyncClosesRemovedDoors(t *testing.T) {
	target := echoServer(t)
	r, _ := newRelay(t)
	d := Door{Key: "k", Kind: "egress", Listen: "127.0.0.1:0", From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Target: target}
	r.Sync([]Door{d})
	addr := listenOf(t, r, "k")
	r.Sync(nil)
	if len(r.Status()) != 0 {
		t.Fatalf("status after removal: %+v", r.Status())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("removed door still accepts on %s", addr)
	}
	// A listen address someone else holds is reported, not fatal.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d.Listen = ln.Addr().String()
	r.Sync([]Door{d})
	if s := r.Status(); len(s) != 1 || s[0].Listening || !strings.Contains(s[0].Error, "address already in use") {
		t.Fatalf("status with a taken address: %+v", s)
	}
}
