package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// memListener is an in-memory net.Listener: the test talks to the server
// without any network.
type memListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *memListener) Addr() net.Addr { return memAddr{} }

func (l *memListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.conns <- b:
		return a, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "console.test:80" }

// The console relays the VM's display (the fake's RFB server) over a
// websocket: a tester gets the RFB banner and a framebuffer update; a
// handshake from another origin is refused.
func TestConsoleRelay(t *testing.T) {
	w := newWorld(t)
	tester := w.token(RoleTester)
	l := newMemListener()
	hs := &http.Server{Handler: w.srv}
	go hs.Serve(l)
	defer hs.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: l.dial}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hdr := http.Header{"Authorization": {"Bearer " + tester}}

	_, resp, err := websocket.Dial(ctx, "ws://console.test/api/v1/vms/a-1/console", &websocket.DialOptions{
		HTTPClient: client, HTTPHeader: http.Header{"Authorization": {"Bearer " + tester}, "Origin": {"http://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("handshake from another origin: %v (%v), want 403", err, resp)
	}

	c, _, err := websocket.Dial(ctx, "ws://console.test/api/v1/vms/a-1/console", &websocket.DialOptions{
		HTTPClient: client, HTTPHeader: hdr, Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("dial the console: %v", err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "binary" {
		t.Errorf("subprotocol %q, want binary", c.Subprotocol())
	}
	conn := websocket.NetConn(ctx, c, websocket.MessageBinary)
	read := func(n int) []byte {
		t.Helper()
		buf := make([]byte, n)
		got := 0
		for got < n {
			k, err := conn.Read(buf[got:])
			if err != nil {
				t.Fatalf("read %d bytes (got %d): %v", n, got, err)
			}
			got += k
		}
		return buf
	}
	if b := read(12); string(b) != "RFB 003.008\n" {
		t.Fatalf("banner %q", b)
	}
	write := func(b []byte) {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write([]byte("RFB 003.008\n"))
	if b := read(2); b[0] != 1 || b[1] != 1 {
		t.Fatalf("security types %v", b)
	}
	write([]byte{1})
	read(4)          // security result
	write([]byte{1}) // shared
	init := read(24)
	width, height := int(init[0])<<8|int(init[1]), int(init[2])<<8|int(init[3])
	nameLen := int(init[20])<<24 | int(init[21])<<16 | int(init[22])<<8 | int(init[23])
	if width != displayWidthForTest || height != displayHeightForTest || !strings.HasPrefix(string(read(nameLen)), "fake a-1") {
		t.Fatalf("server init %dx%d", width, height)
	}
	write([]byte{3, 0, 0, 0, 0, 0, byte(width >> 8), byte(width), byte(height >> 8), byte(height)})
	hdrb := read(16)
	pixels := read(width * height * 4)
	if hdrb[0] != 0 || len(pixels) != width*height*4 {
		t.Fatalf("framebuffer update header %v", hdrb)
	}
	nonBlack := 0
	for i := 0; i < len(pixels); i += 4 {
		if pixels[i] != 0 || pixels[i+1] != 0 || pixels[i+2] != 0 {
			nonBlack++
		}
	}
	if nonBlack == 0 {
		t.Error("the framebuffer is blank")
	}
	c.Close(websocket.StatusNormalClosure, "")

	var consoles int
	for _, e := range w.auditLines() {
		if e.Action == "console" && e.Result == "ok" && e.VM == "a-1" {
			consoles++
		}
	}
	if consoles != 1 {
		t.Errorf("audit: %d console lines, want 1", consoles)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("timed out")
	}
}

// The fake display's size (package fake).
const displayWidthForTest, displayHeightForTest = 64, 48
