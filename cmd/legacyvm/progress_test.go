package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The board keeps one line per object and redraws them in place: after
// the cursor moves up over the lines drawn before, each object's line shows
// its latest step.
func TestBoardRedrawsOneLinePerObject(t *testing.T) {
	var out lockedBuffer
	b := newBoard(&out, 60)
	b.Update("lab-1", "defining domain")
	b.Update("lab-2", "defining domain")
	b.Update("lab-1", "creating linked clone of golden.qcow2, which has a name far too long for one line")
	b.Close()
	b.Update("lab-2", "after close: not drawn")
	s := out.String()
	frames := strings.Split(s, "\x1b[2A")
	if len(frames) < 2 {
		t.Fatalf("no redraw over the two lines:\n%q", s)
	}
	last := frames[len(frames)-1]
	lines := strings.Split(strings.TrimSuffix(last, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("last frame has %d lines, want 2:\n%q", len(lines), last)
	}
	if !strings.Contains(lines[0], "lab-1") || !strings.Contains(lines[0], "creating linked clone") || !strings.HasSuffix(lines[0], "…") {
		t.Errorf("line 1 = %q, want lab-1's latest step cut to the width", lines[0])
	}
	if len([]rune(strings.TrimPrefix(lines[0], "\x1b[2K"))) > 59 {
		t.Errorf("line 1 is wider than the terminal: %q", lines[0])
	}
	if !strings.Contains(lines[1], "lab-2") || !strings.Contains(lines[1], "defining domain") {
		t.Errorf("line 2 = %q, want lab-2's step", lines[1])
	}
	if strings.Contains(s, "after close") {
		t.Error("the board drew after Close")
	}
}

// Off a terminal, progress is one timestamped line per step.
func TestLineProgress(t *testing.T) {
	var out bytes.Buffer
	p := lineProgress(&out)
	p("lab-1", "starting")
	p("lab-1", "done in 2s")
	got := out.String()
	if strings.Count(got, "\n") != 2 || !strings.Contains(got, "s] lab-1: starting") || strings.Contains(got, "\x1b") {
		t.Errorf("line progress = %q", got)
	}
}
