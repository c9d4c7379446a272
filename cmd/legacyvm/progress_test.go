package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
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

// ev is a VM event for the tests.
func ev(object string, step event.Step, phase event.Phase, msg string) event.Event {
	return event.Event{Kind: event.KindVM, Object: object, Step: step, Phase: phase, Message: msg}
}

// The board keeps one line per object and redraws them in place: after
// the cursor moves up over the lines drawn before, each object's line shows
// its latest step.
func TestBoardRedrawsOneLinePerObject(t *testing.T) {
	var out lockedBuffer
	b := newBoard(&out, 60)
	b.Event(ev("lab-1", event.StepDefine, event.Begin, "defining domain"))
	b.Event(ev("lab-2", event.StepDefine, event.Begin, "defining domain"))
	b.Event(ev("lab-1", event.StepDisk, event.Begin, "creating linked clone of golden.qcow2, which has a name far too long for one line"))
	b.Close()
	b.Event(ev("lab-2", event.StepStart, event.Begin, "after close: not drawn"))
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

// Off a terminal, progress is one timestamped line per event.
func TestLineProgress(t *testing.T) {
	var out bytes.Buffer
	p := lineProgress(&out)
	p.Event(ev("lab-1", event.StepStart, event.Begin, "starting"))
	p.Event(event.Event{Kind: event.KindVM, Object: "lab-1", Step: event.StepOperation, Phase: event.Done, Elapsed: 2 * time.Second})
	got := out.String()
	if strings.Count(got, "\n") != 2 || !strings.Contains(got, "s] lab-1: starting") || !strings.Contains(got, "s] lab-1: done in 2s") || strings.Contains(got, "\x1b") {
		t.Errorf("line progress = %q", got)
	}
}

// One sequence of events, as apply reports it, rendered by the three
// renderers: each shows every step; the end of an object's operation
// (event.Finished) reads "done in"/"failed" in text and stops the
// board's clock; a hint is worded by the CLI; the JSON lines carry the
// events' fields. No renderer looks at the message to decide anything: a
// message that reads like an end ("done ...", "failed ...") is just text.
func TestRenderersShowTheSameEvents(t *testing.T) {
	seq := []event.Event{
		ev("lab-1", event.StepDefine, event.Begin, "defining domain"),
		ev("lab-2", event.StepDefine, event.Begin, "defining domain"),
		ev("lab-2", event.StepSetup, event.Done, "done-looking message that ends nothing"),
		{Kind: event.KindVM, Object: "lab-1", Step: event.StepOperation, Phase: event.Done, Elapsed: 1500 * time.Millisecond},
		{Kind: event.KindVM, Object: "lab-3", Step: event.StepDefine, Phase: event.Note, Message: "definition updated", Hint: event.HintRestart},
		{Kind: event.KindVM, Object: "lab-2", Step: event.StepOperation, Phase: event.Failed, Elapsed: time.Second, Err: errors.New("disk full")},
	}
	var plain, js bytes.Buffer
	var term lockedBuffer
	b := newBoard(&term, 200)
	hooks := event.Multi(lineProgress(&plain), jsonProgress(&js), b)
	for _, e := range seq {
		hooks.Event(e)
	}
	// The board redraws every second and shows a clock from 2s on; the
	// tick at 3s is at least 2s after the last event whatever the
	// machine's load (the tick at 2s may come a moment too early).
	// Finished objects show no clock.
	time.Sleep(3100 * time.Millisecond)
	b.Close()

	wantText := map[string][]string{
		"lab-1": {"defining domain", "done in 1.5s"},
		"lab-2": {"defining domain", "done-looking message that ends nothing", "failed: disk full"},
		"lab-3": {"definition updated (legacyvm stop lab-3 && legacyvm start lab-3)"},
	}
	for obj, texts := range wantText {
		for _, txt := range texts {
			if !strings.Contains(plain.String(), "] "+obj+": "+txt+"\n") {
				t.Errorf("plain lines lack %s: %s:\n%s", obj, txt, plain.String())
			}
		}
	}
	if n := strings.Count(plain.String(), "\n"); n != len(seq) {
		t.Errorf("plain: %d lines for %d events", n, len(seq))
	}

	// JSON lines: one object per event, with the typed fields.
	lines := strings.Split(strings.TrimSuffix(js.String(), "\n"), "\n")
	if len(lines) != len(seq) {
		t.Fatalf("json: %d lines for %d events:\n%s", len(lines), len(seq), js.String())
	}
	for i, l := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("json line %d: %v: %s", i, err, l)
		}
		if got["object"] != seq[i].Object || got["step"] != string(seq[i].Step) || got["phase"] != string(seq[i].Phase) || got["kind"] != "vm" {
			t.Errorf("json line %d = %s, want %+v", i, l, seq[i])
		}
	}
	if !strings.Contains(lines[5], `"error":"disk full"`) || !strings.Contains(lines[3], `"elapsed_ms":1500`) || !strings.Contains(lines[4], `"hint":"restart"`) {
		t.Errorf("json lines lack error, elapsed or hint:\n%s", js.String())
	}

	// Board: the last frame shows each object's latest event; the
	// finished objects carry no running clock, lab-3 (not finished) does.
	frames := strings.Split(term.String(), "\x1b[3A")
	last := frames[len(frames)-1]
	rows := strings.Split(strings.TrimSuffix(last, "\n"), "\n")
	if len(rows) != 3 {
		t.Fatalf("board's last frame has %d rows, want 3:\n%q", len(rows), last)
	}
	clock := regexp.MustCompile(`\(\d+s\)$`)
	for _, r := range rows {
		switch {
		case strings.Contains(r, "lab-1"):
			if !strings.HasSuffix(r, "done in 1.5s") {
				t.Errorf("board row %q, want lab-1 done without a clock", r)
			}
		case strings.Contains(r, "lab-2"):
			if !strings.HasSuffix(r, "failed: disk full") {
				t.Errorf("board row %q, want lab-2 failed without a clock", r)
			}
		case strings.Contains(r, "lab-3"):
			if !strings.Contains(r, "legacyvm stop lab-3") || !clock.MatchString(r) {
				t.Errorf("board row %q, want lab-3's hint and its running clock", r)
			}
		default:
			t.Errorf("board row %q", r)
		}
	}
}

// apply -o json streams its events as JSON lines on stderr (one object per
// line, each VM's last one its operation's end) while stdout holds only the
// result document, which stays parseable.
func TestApplyJSONStreamsEvents(t *testing.T) {
	w := newFakeWorld(t)
	r := w.run(cliOpts{errTTY: true, env: map[string]string{"TERM": "xterm"}}, "apply", "--auto-approve", "-o", "json", "examples/quickstart")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.err)
	}
	var doc any
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.out)
	}
	finished := map[string]bool{}
	events := 0
	for _, l := range strings.Split(strings.TrimSpace(r.err), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue // the summary and notes stay text
		}
		var e struct {
			Kind, Object, Step, Phase string
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("stderr line is not JSON: %v: %s", err, l)
		}
		if e.Kind == "" || e.Object == "" || e.Step == "" || e.Phase == "" {
			t.Errorf("event lacks a field: %s", l)
		}
		events++
		if e.Step == "operation" && e.Phase == "done" {
			finished[e.Kind+"/"+e.Object] = true
		}
	}
	if events == 0 || !finished["vm/demo"] || !finished["network/lvm-demo"] {
		t.Errorf("%d events, finished %v; want the VM demo and its network done:\n%s", events, finished, r.err)
	}
	if strings.Contains(r.err, "\x1b[") || strings.Contains(r.err, "s] demo: ") {
		t.Errorf("with -o json, progress is JSON lines only:\n%s", r.err)
	}
}
