package orchestrator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
)

// applyRecorded applies hp's plan with a recorder as the engine's hook.
func applyRecorded(t *testing.T, hp *HostPlan) ([]Result, []event.Event, error) {
	t.Helper()
	var rec event.Recorder
	e := &engine{HV: hp.HV, Parallelism: 3, PollInterval: 1, Hook: &rec, Host: "test:///fake"}
	res, err := e.Apply(context.Background(), hp.Plan)
	return res, rec.Events(), err
}

// Apply reports typed events: every changed object ends with exactly one
// StepOperation event (its last), Done with its timing; every event is
// typed (kind, step, phase), stamped with the host and time; no message
// carries CLI syntax. A memory change on running VMs comes back with the
// restart hint, which the front end words.
func TestApplyReportsTypedEvents(t *testing.T) {
	h := newFakeHost(t)
	hp := plan(t, loadProfile(t, "lab", labProfile), h)
	res, evs, err := applyRecorded(t, hp)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	last := map[string]event.Event{}
	ends := map[string]int{}
	for _, ev := range evs {
		if ev.Kind == "" || ev.Step == "" || ev.Phase == "" || ev.Object == "" || ev.Time.IsZero() || ev.Host != "test:///fake" {
			t.Errorf("untyped event %+v", ev)
		}
		if strings.Contains(ev.Message, "legacyvm ") {
			t.Errorf("event message with CLI syntax: %q", ev.Message)
		}
		k := string(ev.Kind) + "/" + ev.Object
		if _, done := ends[k]; done && ends[k] > 0 {
			t.Errorf("%s: event after its operation ended: %+v", k, ev)
		}
		if ev.Finished() {
			ends[k]++
			if ev.Phase != event.Done || ev.Elapsed <= 0 {
				t.Errorf("%s ended with %+v, want Done with its time", k, ev)
			}
		}
		last[k] = ev
	}
	for _, r := range res {
		k := string(r.Kind) + "/" + r.Object
		if ends[k] != 1 {
			t.Errorf("%s: %d operation ends, want 1", k, ends[k])
		}
	}
	if ends["vm/web-1"] != 1 || ends["network/lvm-lab"] != 1 {
		t.Errorf("ends %v, want web-1 and lvm-lab", ends)
	}

	// Memory 2 -> 4 GiB on running VMs: updated, restart hinted.
	hp = plan(t, loadProfile(t, "lab", labProfile, "%MEM%", "4GiB"), h)
	res, _, err = applyRecorded(t, hp)
	if err != nil {
		t.Fatal(err)
	}
	var hinted bool
	for _, r := range res {
		if r.Object == "web-1" {
			hinted = r.Hint == event.HintRestart && len(r.Notes) == 1 && !strings.Contains(r.Notes[0], "legacyvm")
		}
	}
	if !hinted {
		t.Errorf("web-1's result has no restart hint (or a note with CLI syntax): %+v", res)
	}
}

// A VM whose creation fails ends with one Failed operation event that
// carries the error.
func TestApplyReportsFailureEvent(t *testing.T) {
	h := newFakeHost(t)
	hp := plan(t, loadProfile(t, "lab", labProfile), h)
	boom := errors.New("injected define failure")
	h.FailOn("DefineDomain", "web-2", boom)
	_, evs, err := applyRecorded(t, hp)
	if err == nil {
		t.Fatal("apply succeeded despite the injected failure")
	}
	var failed []event.Event
	for _, ev := range evs {
		if ev.Object == "web-2" && ev.Finished() {
			failed = append(failed, ev)
		}
	}
	if len(failed) != 1 || failed[0].Phase != event.Failed || !errors.Is(failed[0].Err, boom) {
		t.Errorf("web-2's end events %+v, want one Failed with the error", failed)
	}
}

// Start and Stop end each VM's operation with its own event.
func TestLifecycleReportsOperationEnd(t *testing.T) {
	h := newFakeHost(t)
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))
	var rec event.Recorder
	e := &engine{HV: h, PollInterval: 1, Hook: &rec}
	for _, r := range e.Stop(context.Background(), []string{"web-1"}, time.Second, true, false) {
		if r.Err != "" {
			t.Fatal(r.Err)
		}
	}
	evs := rec.Events()
	if len(evs) == 0 || !evs[len(evs)-1].Finished() || evs[len(evs)-1].Object != "web-1" || evs[len(evs)-1].Kind != event.KindVM {
		t.Errorf("stop events %+v, want web-1's operation end last", evs)
	}
}
