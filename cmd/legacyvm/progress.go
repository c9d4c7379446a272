package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
)

// The engine reports its work as typed events (internal/event); the CLI
// renders them in one of three ways, all from the same events and without
// looking into their messages: timestamped plain lines (logs, pipes, CI),
// a board redrawn in place (a terminal) and JSON lines (-o json, or
// --progress=json: one event object per line on stderr, so that stdout
// holds only the command's result document).

// eventText is the text of an event on a plain line or the board: the
// engine's sentence, "done in 1.2s" or "failed: why" at the end of an
// object's operation, and the CLI's wording of a hint.
func eventText(ev event.Event) string {
	var s string
	switch {
	case ev.Finished() && ev.Phase == event.Failed:
		s = fmt.Sprintf("failed: %v", ev.Err)
	case ev.Finished():
		s = fmt.Sprintf("done in %s", ev.Elapsed.Round(100*time.Millisecond))
	case ev.Err != nil && ev.Message == "":
		s = ev.Err.Error()
	case ev.Err != nil:
		s = fmt.Sprintf("%s: %v", ev.Message, ev.Err)
	default:
		s = ev.Message
	}
	if h := hintText(ev.Hint, ev.Object); h != "" {
		s += " (" + h + ")"
	}
	return s
}

// lineProgress prints one timestamped line per event: for logs, pipes and
// CI, where nothing is redrawn.
func lineProgress(w io.Writer) event.Hook {
	var mu sync.Mutex
	start := time.Now()
	return event.Func(func(ev event.Event) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "[%6.1fs] %s: %s\n", time.Since(start).Seconds(), ev.Object, eventText(ev))
	})
}

// jsonProgress writes each event as one JSON object on its own line.
func jsonProgress(w io.Writer) event.Hook {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return event.Func(func(ev event.Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
	})
}

// board is the terminal form of progress: one line per object with its
// latest step and how long that step has been running, redrawn in place
// (every second while work goes on), so that several VMs provisioned in
// parallel stay readable. An object's clock stops at its final event
// (event.Finished).
type board struct {
	mu       sync.Mutex
	w        io.Writer
	width    int
	order    []string
	last     map[string]string
	since    map[string]time.Time
	finished map[string]bool
	drawn    int
	stop     chan struct{}
	done     chan struct{}
	closed   bool
}

// newBoard starts a board on w (a terminal of the given width; 0 = 100).
// Close must be called before anything else is written to w.
func newBoard(w io.Writer, width int) *board {
	if width <= 0 {
		width = 100
	}
	b := &board{w: w, width: width, last: map[string]string{}, since: map[string]time.Time{},
		finished: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.mu.Lock()
				b.redraw()
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// Event records the event as its object's latest step and redraws.
func (b *board) Event(ev event.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	o := ev.Object
	if _, ok := b.last[o]; !ok {
		b.order = append(b.order, o)
	}
	b.last[o] = eventText(ev)
	b.since[o] = time.Now()
	b.finished[o] = ev.Finished()
	b.redraw()
}

// redraw moves the cursor back over the lines drawn before and writes
// every object's line again. Called with mu held.
func (b *board) redraw() {
	if b.drawn > 0 {
		fmt.Fprintf(b.w, "\x1b[%dA", b.drawn)
	}
	for _, o := range b.order {
		line := fmt.Sprintf("%-20s %s", o, b.last[o])
		if el := time.Since(b.since[o]); el >= 2*time.Second && !b.finished[o] {
			line += fmt.Sprintf(" (%s)", el.Round(time.Second))
		}
		if r := []rune(line); len(r) > b.width-1 {
			line = string(r[:b.width-2]) + "…"
		}
		fmt.Fprintf(b.w, "\x1b[2K%s\n", line)
	}
	b.drawn = len(b.order)
}

// Close stops redrawing; the last state stays on the screen.
func (b *board) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
}
