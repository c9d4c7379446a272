package orchestrator

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// countClose counts how often a connection is closed.
type countClose struct {
	virt.Hypervisor
	closed *atomic.Int32
}

func (c countClose) Close() error { c.closed.Add(1); return nil }

// One session drives a profile: Plan opens the hosts' connections, Apply
// carries out each host's plan with events on the session's hook, Verify,
// Status and the VM operations of a host session work on what it made,
// PlanDestroy and Apply remove it, and Close closes every connection the
// session opened, once.
func TestSessionDrivesAProfile(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	p := loadProfile(t, "lab", labProfile)
	var opened, closed atomic.Int32
	connect := func(ctx context.Context, uri string) (virt.Hypervisor, error) {
		opened.Add(1)
		return countClose{h, &closed}, nil
	}
	var rec event.Recorder
	s := Open(p, SessionOptions{Connect: connect, Plan: Options{DefaultURI: "test:///fake"}, Hook: &rec, Parallelism: 2, PollInterval: time.Millisecond})

	hps, diags, err := s.Plan(ctx)
	if err != nil || diags.HasErrors() {
		t.Fatalf("plan: %v %s", err, diags.Error())
	}
	for _, hp := range plannedOf(hps) {
		if _, err := s.Apply(ctx, hp); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	var vmEnds int
	for _, ev := range rec.Events() {
		if ev.Kind == event.KindVM && ev.Finished() && ev.Phase == event.Done {
			vmEnds++
			if ev.Host != "test:///fake" {
				t.Errorf("event without its host: %+v", ev)
			}
		}
	}
	if vmEnds != 3 {
		t.Errorf("%d VM operations done, want 3 (web-1, web-2, solo)", vmEnds)
	}
	vs, err := s.Verify(ctx, VerifyOptions{})
	if err != nil || len(vs) != 1 || !vs[0].OK {
		t.Fatalf("verify: %v %+v", err, vs)
	}

	// A host session, scoped to the profile: status and snapshots.
	hs := OnHost(h, "test:///fake", SessionOptions{Profile: "lab", PollInterval: time.Millisecond})
	st, err := hs.Status(ctx)
	if err != nil || len(st) != 3 {
		t.Fatalf("status: %v %+v", err, st)
	}
	if _, err := hs.CreateSnapshot(ctx, "web-1", "before", false, ""); err != nil {
		t.Fatal(err)
	}
	rs, err := hs.Reset(ctx, []string{"web-1"}, "")
	if err != nil || len(rs) != 1 || rs[0].Err != "" {
		t.Fatalf("reset: %v %+v", err, rs)
	}

	dps, err := s.PlanDestroy(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, hp := range plannedOf(dps) {
		if _, err := s.Apply(ctx, hp); err != nil {
			t.Fatalf("destroy: %v", err)
		}
	}
	if doms, _ := h.ListDomains(ctx); len(doms) != 0 {
		t.Errorf("destroy left %d domains", len(doms))
	}
	s.Close()
	s.Close()
	if opened.Load() == 0 || closed.Load() != opened.Load() {
		t.Errorf("opened %d connections, closed %d", opened.Load(), closed.Load())
	}
}

// A session without a profile cannot plan.
func TestSessionWithoutProfile(t *testing.T) {
	s := OnHost(newFakeHost(t), "", SessionOptions{})
	if _, _, err := s.Plan(context.Background()); err == nil {
		t.Error("a host session planned")
	}
}
