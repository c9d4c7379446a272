package libvirt

import (
	"context"
	"errors"
	"strings"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Long calls (a domain start, a snapshot) run on a connection of their own,
// taken from a small pool of spare connections to the same daemon.
//
// libvirt 9.0's RPC client stalls calls on a connection while one of its
// threads waits for a long reply: the waiting thread polls the socket with
// the events it computed before the other call was queued, and the wake-up
// only makes it poll again with the same events, so the queued call is not
// sent until the long call's reply (or the 5 s keepalive timer) arrives.
// Measured with bench/applybench and libvirt's client debug log: while VM
// A's start (about 3-5 s of nwfilter instantiation and QEMU launch) was in
// flight, VM B's volume creation and domain definition waited for it on the
// client side (queued at once, received by libvirtd only after A's start
// returned), so apply's two workers ran one after the other. On a
// connection of its own the long call blocks nothing else.
//
// test:/// drivers live in this process and their state is per connection:
// they keep using the main connection.

// maxSpare bounds the idle spare connections kept for reuse.
const maxSpare = 4

func (h *Hypervisor) ownConnections() bool { return !strings.HasPrefix(h.uri, "test:") }

// spareConn returns an idle spare connection or opens one.
func (h *Hypervisor) spareConn(ctx context.Context, op, name string) (*libvirt.Connect, error) {
	if err := alive(ctx, op, name); err != nil {
		return nil, err
	}
	for {
		h.spareMu.Lock()
		n := len(h.spare)
		if n == 0 {
			h.spareMu.Unlock()
			break
		}
		c := h.spare[n-1]
		h.spare = h.spare[:n-1]
		h.spareMu.Unlock()
		// A spare the daemon dropped (a restart, missed keepalives) is
		// closed rather than failing the call (IsAlive asks no daemon).
		if alive, err := c.IsAlive(); err == nil && alive {
			return c, nil
		}
		_, _ = c.Close()
	}
	c, err := libvirt.NewConnect(h.uri)
	if err != nil {
		return nil, wrap(op, name, err)
	}
	if err := c.SetKeepAlive(keepaliveInterval, keepaliveCount); err != nil && !isNoSupport(err) {
		_, _ = c.Close()
		return nil, wrap(op, name, err)
	}
	return c, nil
}

// releaseConn keeps c for the next long call, or closes it when the pool
// is full, the Hypervisor is closed, or the call failed on the connection.
func (h *Hypervisor) releaseConn(c *libvirt.Connect, callErr error) {
	if callErr != nil && errors.Is(callErr, virt.ErrConnection) {
		_, _ = c.Close()
		return
	}
	h.spareMu.Lock()
	if !h.spareClosed && len(h.spare) < maxSpare {
		h.spare = append(h.spare, c)
		h.spareMu.Unlock()
		return
	}
	h.spareMu.Unlock()
	_, _ = c.Close()
}

// closeSpare closes the idle spare connections (Close).
func (h *Hypervisor) closeSpare() error {
	h.spareMu.Lock()
	spare := h.spare
	h.spare = nil
	h.spareClosed = true
	h.spareMu.Unlock()
	var firstErr error
	for _, c := range spare {
		if _, err := c.Close(); err != nil && firstErr == nil {
			firstErr = wrap("close connection to", h.uri, err)
		}
	}
	return firstErr
}

// longCall runs f on a spare connection; without spare connections
// (test:///) on the main one. Any call that can take seconds belongs here
// (a start, a snapshot, a save or restore of a domain's memory).
func (h *Hypervisor) longCall(ctx context.Context, op, name string, f func(*libvirt.Connect) error) (err error) {
	conn := h.conn
	if h.ownConnections() {
		c, cerr := h.spareConn(ctx, op, name)
		if cerr != nil {
			return cerr
		}
		// err is the call's result: a connection failure closes c.
		defer func() { h.releaseConn(c, err) }()
		conn = c
	}
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	return f(conn)
}

// longDomainCall looks up domain name on a spare connection and runs f on
// it (longCall).
func (h *Hypervisor) longDomainCall(ctx context.Context, op, name string, f func(*libvirt.Domain) error) error {
	return h.longCall(ctx, op, name, func(conn *libvirt.Connect) error {
		d, err := conn.LookupDomainByName(name)
		if err != nil {
			return wrap(op, name, err)
		}
		defer d.Free()
		return f(d)
	})
}
