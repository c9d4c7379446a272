package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
)

// streamEvent is one server-sent event: an engine event of an action, or
// a lifecycle event of the host (Action "").
type streamEvent struct {
	// Action is the id of the action the event belongs to ("" for the
	// host's lifecycle events).
	Action  string      `json:"action"`
	Profile string      `json:"profile"`
	Event   event.Event `json:"event"`
}

// broker fans events out to the open event streams. A stream that does
// not keep up loses events (it is told: "dropped" events), it never slows
// the engine down.
type broker struct {
	mu   sync.Mutex
	subs map[chan streamEvent]struct{}
}

func newBroker() *broker { return &broker{subs: map[chan streamEvent]struct{}{}} }

func (b *broker) subscribe() chan streamEvent {
	ch := make(chan streamEvent, 256)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch
}

func (b *broker) unsubscribe(ch chan streamEvent) {
	b.mu.Lock()
	delete(b.subs, ch)
	b.mu.Unlock()
}

func (b *broker) publish(e streamEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// handleEvents streams the engine's events of the actions on VMs the
// caller may see, and the host's lifecycle events of those VMs, as server-sent events ("event: engine", data: a
// streamEvent as JSON), with a comment every 15 seconds to keep proxies
// from closing the stream.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, c *caller) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Subscribed before the opening comment: a client that has read it
	// gets every later event.
	ch := s.events.subscribe()
	defer s.events.unsubscribe(ch)
	if _, err := fmt.Fprint(w, ": legacyvm events\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
		case e := <-ch:
			if !c.Sees(e.Profile) {
				continue
			}
			data, err := json.Marshal(e)
			if err != nil {
				panic(err)
			}
			if _, err := fmt.Fprintf(w, "event: engine\ndata: %s\n\n", data); err != nil {
				return
			}
		}
		_ = rc.Flush()
	}
}
