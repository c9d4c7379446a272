package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Hypervisor is a connection to one libvirt daemon. Create it with Connect;
// it is safe for concurrent use.
type Hypervisor struct {
	conn *libvirt.Connect
	uri  string

	mu      sync.Mutex
	subs    map[*subscription]struct{}
	closed  bool
	dropped bool // the connection was lost

	regMu    sync.Mutex
	eventsID int // lifecycle callback, -1 until the first Events call

	probeMu   sync.Mutex
	probeDone bool
	probeErr  error // nil: a KVM domain with legacyvm's preset really runs

	// Spare connections for long calls (longcall.go).
	spareMu     sync.Mutex
	spare       []*libvirt.Connect
	spareClosed bool
}

var _ virt.Hypervisor = (*Hypervisor)(nil)

// Keepalive: a probe every 5 s, the connection is dropped after 3 unanswered
// ones (about 20 s), and the close callback closes event channels.
const (
	keepaliveInterval = 5
	keepaliveCount    = 3
)

var (
	eventLoopOnce sync.Once
	eventLoopErr  error
)

// startEventLoop registers libvirt's default event loop implementation
// (once per process, before any connection is opened) and runs it. Events
// and keepalive need it.
func startEventLoop() error {
	eventLoopOnce.Do(func() {
		if eventLoopErr = libvirt.EventRegisterDefaultImpl(); eventLoopErr != nil {
			return
		}
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					// Only fails when the loop is broken beyond repair;
					// avoid spinning.
					time.Sleep(time.Second)
				}
			}
		}()
	})
	return eventLoopErr
}

// ConnectHint says what to do about a failed connection, from libvirt's
// message: the daemon is not running, or this user may not use its socket.
// "" when there is nothing useful to add.
func ConnectHint(msg string) string {
	switch {
	case strings.Contains(msg, "No such file or directory") && strings.Contains(msg, "socket"),
		strings.Contains(msg, "Connection refused"):
		return "Hint: libvirtd is not running (or listens on another socket). Start it: " +
			"\"systemctl enable --now libvirtd\" on a systemd host, else \"virtlogd -d && libvirtd -d\" as root " +
			"(docs/install.md). For a private test daemon: \"bin/testenv up\" prints a LIBVIRT_DEFAULT_URI to use."
	case strings.Contains(msg, "Permission denied"), strings.Contains(msg, "authentication unavailable"),
		strings.Contains(msg, "access denied"):
		return "Hint: this user may not use libvirt's system socket. Run as root, or add yourself to the " +
			"libvirt group (\"adduser $USER libvirt\", then log in again) (docs/install.md)."
	}
	return ""
}

// Connect opens a connection to the libvirt daemon at uri (for example
// "qemu:///system") with keepalive. Close it when done.
func Connect(ctx context.Context, uri string) (*Hypervisor, error) {
	const op = "connect to libvirt"
	if err := alive(ctx, op, uri); err != nil {
		return nil, err
	}
	if err := startEventLoop(); err != nil {
		return nil, fmt.Errorf("%s %q: start the event loop: %w", op, uri, err)
	}
	conn, err := libvirt.NewConnect(uri)
	if err != nil {
		e := wrap(op, uri, err)
		if !errors.Is(e, virt.ErrConnection) {
			e = fmt.Errorf("%s %q: %w: %s", op, uri, virt.ErrConnection, message(err))
		}
		if hint := ConnectHint(message(err)); hint != "" {
			e = fmt.Errorf("%w\n%s", e, hint)
		}
		return nil, e
	}
	h := &Hypervisor{conn: conn, uri: uri, subs: map[*subscription]struct{}{}, eventsID: -1}
	// Drivers that run inside this process (test:///) have no connection
	// to keep alive and report ERR_NO_SUPPORT.
	if err := conn.SetKeepAlive(keepaliveInterval, keepaliveCount); err != nil && !isNoSupport(err) {
		conn.Close()
		return nil, wrap(op, uri, err)
	}
	if err := conn.RegisterCloseCallback(h.lost); err != nil {
		conn.Close()
		return nil, wrap(op, uri, err)
	}
	return h, nil
}

// lost runs (on the event loop) when the connection drops: every event
// channel is closed so that a daemon can reconnect.
func (h *Hypervisor) lost(_ *libvirt.Connect, _ libvirt.ConnectCloseReason) {
	h.mu.Lock()
	h.dropped = true
	subs := h.subs
	h.subs = map[*subscription]struct{}{}
	h.mu.Unlock()
	for s := range subs {
		s.close()
	}
}

// Close deregisters event callbacks and closes the connection. It reports
// an error when libvirt objects are still referenced (an object that was
// not freed keeps the connection alive).
func (h *Hypervisor) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	subs := h.subs
	h.subs = map[*subscription]struct{}{}
	h.mu.Unlock()
	for s := range subs {
		s.close()
	}
	var firstErr error
	h.regMu.Lock()
	if h.eventsID >= 0 {
		if err := h.conn.DomainEventDeregister(h.eventsID); err != nil && !h.isDropped() {
			firstErr = wrap("close connection to", h.uri, err)
		}
		h.eventsID = -1
	}
	h.regMu.Unlock()
	if err := h.conn.UnregisterCloseCallback(); err != nil && firstErr == nil && !h.isDropped() {
		firstErr = wrap("close connection to", h.uri, err)
	}
	if err := h.closeSpare(); err != nil && firstErr == nil {
		firstErr = err
	}
	refs, err := h.conn.Close()
	if err != nil && firstErr == nil {
		firstErr = wrap("close connection to", h.uri, err)
	}
	if refs > 0 && firstErr == nil {
		firstErr = fmt.Errorf("close connection to %q: %d references to it are still held (a libvirt object was not freed)", h.uri, refs)
	}
	return firstErr
}

func (h *Hypervisor) isDropped() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// HostInfo implements virt.Hypervisor.
func (h *Hypervisor) HostInfo(ctx context.Context) (virt.HostInfo, error) {
	return h.hostInfo(ctx)
}

// revert collects compensating actions for a multi-step operation (the
// incus pattern): r := newRevert(); defer r.fail(); ...; r.add(undo); ...;
// r.success().
type revert struct{ undo []func() }

func newRevert() *revert       { return &revert{} }
func (r *revert) add(f func()) { r.undo = append(r.undo, f) }
func (r *revert) success()     { r.undo = nil }
func (r *revert) fail() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
}

// isNoSupport reports whether err is libvirt's "not supported by the
// connection driver".
func isNoSupport(err error) bool {
	var le libvirt.Error
	return errors.As(err, &le) && le.Code == libvirt.ERR_NO_SUPPORT
}
