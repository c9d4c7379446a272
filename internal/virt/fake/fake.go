package fake

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Hypervisor is an in-memory virt.Hypervisor. Create it with New.
type Hypervisor struct {
	mu sync.Mutex

	now        func() time.Time
	info       virt.HostInfo
	ignoreACPI bool
	poolSize   uint64
	// corruptUploads is how many more uploads arrive damaged.
	corruptUploads int
	down           bool // closed or disconnected

	domains  map[string]*domain
	networks map[string]*network
	filters  map[string]*filter
	pools    map[string]*pool
	files    map[string]*file

	failures []*failure
	subs     map[chan virt.Event]struct{}
	// guestOS picks the guest a domain boots (WithGuestOS; nil: Linux).
	guestOS func(virt.DomainSpec) GuestOS
	// extraPorts are interfaces AttachToBridge enslaved, by bridge.
	extraPorts map[string][]virt.BridgePort
}

var _ virt.Hypervisor = (*Hypervisor)(nil)

// Option configures a fake Hypervisor.
type Option func(*Hypervisor)

// WithClock makes the fake read time from now (snapshot creation times,
// event times, lease expiry). The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(h *Hypervisor) { h.now = now }
}

// WithHostInfo replaces what HostInfo reports. Machines must map "pc" and
// "q35" for DefineDomain to pin machine types; missing aliases are pinned to
// the defaults (pc-i440fx-7.2, pc-q35-7.2).
func WithHostInfo(info virt.HostInfo) Option {
	return func(h *Hypervisor) { h.info = cloneHostInfo(info) }
}

// WithPoolCapacity sets the size of every storage pool (default 1 TiB).
func WithPoolCapacity(bytes uint64) Option {
	return func(h *Hypervisor) { h.poolSize = bytes }
}

// IgnoreACPI makes guests ignore ShutdownDomain: the request is counted
// (ShutdownRequests) but the domain keeps running until DestroyDomain or
// GuestPowerOff.
func IgnoreACPI() Option {
	return func(h *Hypervisor) { h.ignoreACPI = true }
}

// WithFile seeds a host file, as PutFile does.
func WithFile(path, format string, capacity uint64) Option {
	return func(h *Hypervisor) { h.putFile(path, format, capacity) }
}

// FailOn makes every call of method (a virt.Hypervisor method name, e.g.
// "DefineDomain") for the object name fail with err (wrapped with the
// operation and the name, so errors.Is(err, virt.ErrBusy) works). The
// object name is the domain for domain and snapshot methods, spec.Name for
// Define*/Create*/Clone*/Upload*, the network for Leases, the volume name
// for DeleteVolume, the pool for pool methods, the path for VolumeByPath.
// name "" matches every object. The Hypervisor method FailOn does the same
// after construction.
func FailOn(method, name string, err error) Option {
	return func(h *Hypervisor) {
		h.failures = append(h.failures, &failure{method: method, name: name, err: err, left: -1})
	}
}

// New returns an empty host: no domains, networks, pools or files, and the
// libvirt built-in nwfilters.
func New(opts ...Option) *Hypervisor {
	h := &Hypervisor{
		now:      time.Now,
		poolSize: 1 << 40,
		info: virt.HostInfo{
			URI:           "fake:///system",
			Hostname:      "fake-host",
			LibVersion:    9000000,
			DaemonVersion: 9000000,
			Machines:      map[string]string{"pc": defaultMachines["pc"], "q35": defaultMachines["q35"]},
			Emulator:      "/usr/bin/qemu-system-x86_64",
		},
		domains:  map[string]*domain{},
		networks: map[string]*network{},
		filters:  map[string]*filter{},
		pools:    map[string]*pool{},
		files:    map[string]*file{},
		subs:     map[chan virt.Event]struct{}{},
	}
	h.filters = builtinFilters()
	for _, o := range opts {
		o(h)
	}
	return h
}

var defaultMachines = map[string]string{"pc": "pc-i440fx-7.2", "q35": "pc-q35-7.2"}

// failure is one injected error.
type failure struct {
	method, name string
	err          error
	left         int // calls left to fail; -1 = forever
}

// FailOn makes calls of method for name fail with err until ClearFailures;
// see the FailOn option.
func (h *Hypervisor) FailOn(method, name string, err error) {
	h.FailTimes(method, name, -1, err)
}

// FailTimes makes the next n calls of method for name fail with err (n < 0:
// every call). Use it to simulate a transient condition such as
// virt.ErrBusy.
func (h *Hypervisor) FailTimes(method, name string, n int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures = append(h.failures, &failure{method: method, name: name, err: err, left: n})
}

// ClearFailures removes every injected failure.
func (h *Hypervisor) ClearFailures() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures = nil
}

// begin starts an operation: it checks ctx, the connection and injected
// failures. op is the error prefix ("define domain"), method the interface
// method name, name the object. Callers hold h.mu.
func (h *Hypervisor) begin(ctx context.Context, method, op, name string) error {
	if err := ctx.Err(); err != nil {
		return opErr(op, name, err)
	}
	if h.down {
		return opErr(op, name, fmt.Errorf("%w: the connection is closed", virt.ErrConnection))
	}
	for i, f := range h.failures {
		if f.method != method || (f.name != "" && f.name != name) || f.left == 0 {
			continue
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				h.failures = append(h.failures[:i:i], h.failures[i+1:]...)
			}
		}
		return opErr(op, name, f.err)
	}
	return nil
}

// opErr wraps err the way the libvirt adapter does: `define domain "x": ...`.
func opErr(op, name string, err error) error {
	if name == "" {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s %q: %w", op, name, err)
}

// errf builds a sentinel error with libvirt-like detail.
func errf(op, name string, sentinel error, format string, args ...any) error {
	return opErr(op, name, fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...)))
}

// Close closes the connection: every later call fails with
// virt.ErrConnection and event channels are closed.
func (h *Hypervisor) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked()
	return nil
}

// Disconnect simulates a lost connection (daemon restart): event channels
// are closed and every call fails with virt.ErrConnection until Reconnect.
// The host's state is kept, as libvirt keeps it across a daemon restart.
func (h *Hypervisor) Disconnect() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked()
}

// Reconnect ends a Disconnect (or Close): calls work again.
func (h *Hypervisor) Reconnect() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = false
}

func (h *Hypervisor) dropLocked() {
	h.down = true
	for ch := range h.subs {
		close(ch)
		delete(h.subs, ch)
	}
}

// HostInfo implements virt.Hypervisor.
func (h *Hypervisor) HostInfo(ctx context.Context) (virt.HostInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin(ctx, "HostInfo", "host info", ""); err != nil {
		return virt.HostInfo{}, err
	}
	return cloneHostInfo(h.info), nil
}

func cloneHostInfo(in virt.HostInfo) virt.HostInfo {
	out := in
	out.Machines = make(map[string]string, len(in.Machines))
	for k, v := range in.Machines {
		out.Machines[k] = v
	}
	return out
}

// eventBuffer is the capacity of each Events channel; events that do not
// fit are dropped, as the libvirt adapter drops them rather than block its
// event loop.
const eventBuffer = 256

// Events implements virt.Hypervisor. Each call gets its own channel; it is
// closed when ctx ends or the connection is closed or lost.
func (h *Hypervisor) Events(ctx context.Context) (<-chan virt.Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin(ctx, "Events", "subscribe to events", ""); err != nil {
		return nil, err
	}
	ch := make(chan virt.Event, eventBuffer)
	h.subs[ch] = struct{}{}
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}()
	return ch, nil
}

// emit delivers an event to every subscriber without blocking. Callers hold
// h.mu.
func (h *Hypervisor) emit(dom string, kind virt.EventKind, detail string) {
	ev := virt.Event{Domain: dom, Kind: kind, Detail: detail, Time: h.now()}
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cloneMetadata deep-copies m (nil stays nil).
func cloneMetadata(m *virt.Metadata) *virt.Metadata {
	if m == nil {
		return nil
	}
	out := *m
	out.Volumes = append([]virt.VolumeRef(nil), m.Volumes...)
	out.Filters = append([]string(nil), m.Filters...)
	if m.Doors != nil {
		out.Doors = make([]virt.DoorRef, len(m.Doors))
		for i, d := range m.Doors {
			d.From = append([]string(nil), d.From...)
			out.Doors[i] = d
		}
	}
	if m.License != nil {
		l := *m.License
		out.License = &l
	}
	if m.Policy != nil {
		p := *m.Policy
		out.Policy = &p
	}
	if m.StopRequested != nil {
		t := *m.StopRequested
		out.StopRequested = &t
	}
	return &out
}
