package libvirt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// eventBuffer is the capacity of each Events channel. The libvirt callback
// never blocks (it runs on the process-wide event loop that also carries
// keepalive): when a reader falls this far behind, events are dropped.
const eventBuffer = 256

// subscription is one Events channel.
type subscription struct {
	mu     sync.Mutex
	ch     chan virt.Event
	closed bool
}

// send delivers ev unless the channel is full or closed.
func (s *subscription) send(ev virt.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.ch <- ev:
	default:
	}
}

// close closes the channel once.
func (s *subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// Events implements virt.Hypervisor: lifecycle events of every domain on
// the connection, until ctx ends or the connection drops (the channel is
// then closed; reconnect to get events again). libvirt refuses a second
// identical callback on one connection, so one callback, registered with
// the first subscription and removed by Close, feeds every channel.
func (h *Hypervisor) Events(ctx context.Context) (<-chan virt.Event, error) {
	const op = "subscribe to domain events"
	if err := alive(ctx, op, ""); err != nil {
		return nil, err
	}
	if err := h.registerEvents(); err != nil {
		return nil, wrap(op, "", err)
	}
	s := &subscription{ch: make(chan virt.Event, eventBuffer)}
	h.mu.Lock()
	if h.closed || h.dropped {
		h.mu.Unlock()
		return nil, fmt.Errorf("%s: %w: the connection to %s is closed", op, virt.ErrConnection, h.uri)
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
		s.close()
	}()
	return s.ch, nil
}

// registerEvents registers the lifecycle callback once. h.mu is not held
// during the libvirt call (the callback takes it on the event loop).
func (h *Hypervisor) registerEvents() error {
	h.regMu.Lock()
	defer h.regMu.Unlock()
	if h.eventsID >= 0 {
		return nil
	}
	id, err := h.conn.DomainEventLifecycleRegister(nil, h.dispatch)
	if err != nil {
		return err
	}
	h.eventsID = id
	return nil
}

// dispatch runs on the event loop: it must not block.
func (h *Hypervisor) dispatch(_ *libvirt.Connect, d *libvirt.Domain, ev *libvirt.DomainEventLifecycle) {
	// d belongs to libvirt for the duration of the callback: not freed here.
	name, err := d.GetName()
	if err != nil {
		return
	}
	kind, detail := eventWords(ev.Event, ev.Detail)
	e := virt.Event{Domain: name, Kind: kind, Detail: detail, Time: time.Now()}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.send(e)
	}
}

// eventWords names a lifecycle event and its detail the way libvirt's
// documentation (and virsh event) does.
func eventWords(ev libvirt.DomainEventType, detail int) (virt.EventKind, string) {
	pick := func(words ...string) string {
		if detail >= 0 && detail < len(words) {
			return words[detail]
		}
		return "unknown"
	}
	switch ev {
	case libvirt.DOMAIN_EVENT_DEFINED:
		return virt.EventDefined, pick("added", "updated", "renamed", "from-snapshot")
	case libvirt.DOMAIN_EVENT_UNDEFINED:
		return virt.EventUndefined, pick("removed", "renamed")
	case libvirt.DOMAIN_EVENT_STARTED:
		return virt.EventStarted, pick("booted", "migrated", "restored", "from-snapshot", "wakeup", "recreated")
	case libvirt.DOMAIN_EVENT_SUSPENDED:
		return virt.EventSuspended, pick("paused", "migrated", "ioerror", "watchdog", "restored", "from-snapshot", "api-error", "postcopy", "postcopy-failed", "guest-shutdown")
	case libvirt.DOMAIN_EVENT_RESUMED:
		return virt.EventResumed, pick("unpaused", "migrated", "from-snapshot", "postcopy", "postcopy-failed")
	case libvirt.DOMAIN_EVENT_STOPPED:
		return virt.EventStopped, pick("shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from-snapshot", "recreated")
	case libvirt.DOMAIN_EVENT_SHUTDOWN:
		return virt.EventShutdown, pick("finished", "guest", "host")
	case libvirt.DOMAIN_EVENT_CRASHED:
		return virt.EventCrashed, pick("panicked", "crashloaded")
	case libvirt.DOMAIN_EVENT_PMSUSPENDED:
		return virt.EventSuspended, pick("pm-memory", "pm-disk")
	}
	return virt.EventKind("unknown"), "unknown"
}
