// Package relay carries TCP connections through legacyvm's doors in user
// space: it listens where a door says, accepts only clients from the
// door's networks, dials the door's target (from a chosen local address,
// e.g. the host's side of an isolated bridge) and copies bytes both ways.
// The kernel never forwards a packet between networks: every connection
// ends at the relay and a new one starts from it.
//
// A Relay is given the complete set of doors with Sync (as often as the
// caller likes): new doors start listening, removed doors stop (their
// open connections are closed), changed doors restart. Each accepted,
// refused and finished connection is logged with slog; counters are kept
// per door and reported by Status.
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Door is one relayed opening.
type Door struct {
	// Key identifies the door across Syncs ("publish/app/rdp").
	Key  string `json:"key"`
	Kind string `json:"kind"` // "publish" or "egress"
	// VM and Network say whose door it is (for logs and status).
	VM      string `json:"vm,omitempty"`
	Network string `json:"network,omitempty"`
	// Listen is the address the relay listens on ("0.0.0.0:13389").
	Listen string `json:"listen"`
	// From are the client networks accepted; every other client is
	// closed at once.
	From []netip.Prefix `json:"from"`
	// Target is dialled for each accepted client ("10.77.0.10:3389",
	// "db.corp:1433": names are resolved at connect time).
	Target string `json:"target"`
	// LocalAddr, when valid, is the source address of the dialled
	// connection.
	LocalAddr netip.Addr `json:"local_addr,omitzero"`
	// MaxConnections bounds concurrent connections (<= 0: 20).
	MaxConnections int `json:"max_connections"`
}

func (d Door) same(o Door) bool {
	return d.Key == o.Key && d.Kind == o.Kind && d.Listen == o.Listen && slices.Equal(d.From, o.From) &&
		d.Target == o.Target && d.LocalAddr == o.LocalAddr && d.MaxConnections == o.MaxConnections
}

// DoorStatus is a door with its listener state and counters.
type DoorStatus struct {
	Door
	Listening bool `json:"listening"`
	// Bound is the address the listener is bound to (as the kernel
	// reports it).
	Bound string `json:"bound,omitempty"`
	Error string `json:"error,omitempty"`
	// Accepted counts connections relayed, Refused clients closed at once
	// (not in From, too many connections, target unreachable), Active
	// connections open now.
	Accepted uint64 `json:"accepted"`
	Refused  uint64 `json:"refused"`
	Active   int64  `json:"active"`
	// BytesIn is what clients sent, BytesOut what they received.
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
}

// Relay runs the listeners of a set of doors. The zero value is not
// usable: use New.
type Relay struct {
	log *slog.Logger
	// DialTimeout bounds each dial to a target (default 10s).
	DialTimeout time.Duration
	// Listen opens a listener (tests may replace it; default net.Listen).
	Listen func(network, addr string) (net.Listener, error)

	mu     sync.Mutex
	doors  map[string]*door
	closed bool
}

// New returns an empty relay that logs to log.
func New(log *slog.Logger) *Relay {
	if log == nil {
		log = slog.Default()
	}
	return &Relay{log: log, doors: map[string]*door{}, DialTimeout: 10 * time.Second}
}

type door struct {
	Door
	ln       net.Listener
	err      string
	accepted atomic.Uint64
	refused  atomic.Uint64
	active   atomic.Int64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	sem      chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Sync makes the relay carry exactly doors: listeners of removed or
// changed doors close (with their connections), new ones open. A door
// whose listener cannot open is kept with its error (Status reports it)
// and retried at the next Sync. Counters of unchanged doors carry on.
func (r *Relay) Sync(doors []Door) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	want := map[string]Door{}
	for _, d := range doors {
		want[d.Key] = d
	}
	for key, d := range r.doors {
		if w, ok := want[key]; ok && d.same(w) && d.ln != nil {
			continue
		}
		if d.ln != nil {
			r.log.Info("door closed", "door", key, "listen", d.Listen)
		}
		d.stop()
		delete(r.doors, key)
	}
	for _, key := range sortedKeys(want) {
		if _, ok := r.doors[key]; ok {
			continue
		}
		d := &door{Door: want[key], conns: map[net.Conn]struct{}{}}
		if d.MaxConnections <= 0 {
			d.MaxConnections = 20
		}
		d.sem = make(chan struct{}, d.MaxConnections)
		r.doors[key] = d
		listen := r.Listen
		if listen == nil {
			listen = net.Listen
		}
		ln, err := listen("tcp", d.Listen)
		if err != nil {
			d.err = err.Error()
			r.log.Error("door cannot listen", "door", key, "listen", d.Listen, "err", err)
			continue
		}
		d.ln = ln
		r.log.Info("door open", "door", key, "kind", d.Kind, "vm", d.VM, "network", d.Network, "listen", ln.Addr().String(), "from", prefixes(d.From), "target", d.Target)
		d.wg.Add(1)
		go r.serve(d)
	}
}

// Close stops every door and waits for their connections to end.
func (r *Relay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for key, d := range r.doors {
		d.stop()
		delete(r.doors, key)
	}
}

// Status reports every door, sorted by key.
func (r *Relay) Status() []DoorStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]DoorStatus, 0, len(r.doors))
	for _, key := range sortedKeys(r.doors) {
		d := r.doors[key]
		s := DoorStatus{Door: d.Door, Listening: d.ln != nil, Error: d.err,
			Accepted: d.accepted.Load(), Refused: d.refused.Load(), Active: d.active.Load(),
			BytesIn: d.bytesIn.Load(), BytesOut: d.bytesOut.Load()}
		if d.ln != nil {
			s.Bound = d.ln.Addr().String()
		}
		out = append(out, s)
	}
	return out
}

func (d *door) stop() {
	if d.ln != nil {
		_ = d.ln.Close()
	}
	d.mu.Lock()
	for c := range d.conns {
		_ = c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *door) allowed(addr net.Addr) (netip.Addr, bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	for _, p := range d.From {
		if p.Contains(ip) {
			return ip, true
		}
	}
	return ip, false
}

func (r *Relay) serve(d *door) {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Warn("door accept", "door", d.Key, "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		client := c.RemoteAddr().String()
		if _, ok := d.allowed(c.RemoteAddr()); !ok {
			d.refused.Add(1)
			_ = c.Close()
			r.log.Warn("door refused client", "door", d.Key, "client", client, "reason", "not in from", "from", prefixes(d.From))
			continue
		}
		select {
		case d.sem <- struct{}{}:
		default:
			d.refused.Add(1)
			_ = c.Close()
			r.log.Warn("door refused client", "door", d.Key, "client", client, "reason", fmt.Sprintf("max_connections (%d) reached", d.MaxConnections))
			continue
		}
		d.track(c, true)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() { <-d.sem }()
			defer d.track(c, false)
			r.carry(d, c, client)
		}()
	}
}

func (d *door) track(c net.Conn, add bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if add {
		d.conns[c] = struct{}{}
	} else {
		delete(d.conns, c)
	}
}

// carry dials the target and copies both ways until both sides are done.
func (r *Relay) carry(d *door, c net.Conn, client string) {
	defer c.Close()
	start := time.Now()
	dialer := net.Dialer{Timeout: r.DialTimeout}
	if d.LocalAddr.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: d.LocalAddr.AsSlice()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.DialTimeout)
	t, err := dialer.DialContext(ctx, "tcp", d.Target)
	cancel()
	if err != nil {
		d.refused.Add(1)
		r.log.Warn("door refused client", "door", d.Key, "client", client, "reason", "target unreachable", "target", d.Target, "err", err)
		return
	}
	d.track(t, true)
	defer d.track(t, false)
	defer t.Close()
	d.accepted.Add(1)
	d.active.Add(1)
	defer d.active.Add(-1)
	r.log.Info("door connection", "door", d.Key, "client", client, "target", d.Target)
	var in, out int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		in = copyHalf(t, c)
	}()
	go func() {
		defer wg.Done()
		out = copyHalf(c, t)
	}()
	wg.Wait()
	d.bytesIn.Add(uint64(in))
	d.bytesOut.Add(uint64(out))
	r.log.Info("door connection closed", "door", d.Key, "client", client, "target", d.Target,
		"bytes_in", in, "bytes_out", out, "duration", time.Since(start).Round(time.Millisecond).String())
}

// copyHalf copies src to dst and then closes dst's write side (or dst).
func copyHalf(dst, src net.Conn) int64 {
	n, _ := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	return n
}

func prefixes(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
