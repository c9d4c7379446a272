package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressFunc receives one step of work on an object ("lab-1",
// "lvm-lab"): the orchestrator's Engine.Progress.
type progressFunc func(object, msg string)

// lineProgress prints one timestamped line per step: for logs, pipes and
// CI, where nothing is redrawn.
func lineProgress(w io.Writer) progressFunc {
	var mu sync.Mutex
	start := time.Now()
	return func(object, msg string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "[%6.1fs] %s: %s\n", time.Since(start).Seconds(), object, msg)
	}
}

// board is the terminal form of progress: one line per object with its
// latest step and how long that step has been running, redrawn in place
// (every second while work goes on), so that several VMs provisioned in
// parallel stay readable.
type board struct {
	mu     sync.Mutex
	w      io.Writer
	width  int
	order  []string
	last   map[string]string
	since  map[string]time.Time
	drawn  int
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// newBoard starts a board on w (a terminal of the given width; 0 = 100).
// Close must be called before anything else is written to w.
func newBoard(w io.Writer, width int) *board {
	if width <= 0 {
		width = 100
	}
	b := &board{w: w, width: width, last: map[string]string{}, since: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
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

// Update records object's latest step and redraws.
func (b *board) Update(object, msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if _, ok := b.last[object]; !ok {
		b.order = append(b.order, object)
	}
	b.last[object] = msg
	b.since[object] = time.Now()
	b.redraw()
}

// redraw moves the cursor back over the lines drawn before and writes
// every object's line again. Called with mu held.
func (b *board) redraw() {
	if b.drawn > 0 {
		fmt.Fprintf(b.w, "\x1b[%dA", b.drawn)
	}
	for _, o := range b.order {
		msg := b.last[o]
		line := fmt.Sprintf("%-20s %s", o, msg)
		finished := strings.HasPrefix(msg, "done") || strings.HasPrefix(msg, "failed")
		if el := time.Since(b.since[o]); el >= 2*time.Second && !finished {
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
