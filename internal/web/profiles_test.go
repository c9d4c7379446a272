package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// fakeKey is an obviously fake product key (valid in form) that the
// served profile's licence reads; no response, event or audit line may
// hold it.
const fakeKey = "BCDFG-HJKMP-QRTVW-XY234-6789B"

const goldenImage = "/var/lib/libvirt/images/golden.qcow2"

const servedProfile = `
license "lab" {
  product_key = env("WEB_TEST_KEY")
  edition     = "professional"
  channel     = "mak"
  seats       = 5
}
network "lab" {
  subnet = "10.88.0.0/24"
  dhcp   = true
}
vm "gamma" {
  count    = 2
  os       = "win7-x64"
  memory   = "2GiB"
  network  = network.lab
  licenses = [license.lab]
  disk {
    image   = "` + goldenImage + `"
    prepare = "none"
  }
}
`

// profileWorld is world with a profile "gamma" served (not yet applied)
// next to the VMs of alpha and beta, and every event the server streams.
type profileWorld struct {
	*world
	mu     sync.Mutex
	stream bytes.Buffer
}

func newProfileWorld(t *testing.T) *profileWorld {
	t.Helper()
	w := newWorld(t)
	ctx := context.Background()
	w.h.PutFile(goldenImage, "qcow2", 10<<30)
	if _, err := w.h.EnsurePool(ctx, "default", "/var/lib/libvirt/images"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(w.dir, "gamma")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(servedProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) (string, bool) {
		if k == "WEB_TEST_KEY" {
			return fakeKey, true
		}
		return "", false
	}
	p, diags := profiles.Load(dir, profiles.LoadOptions{Getenv: getenv})
	if diags.HasErrors() {
		t.Fatalf("load profile: %s", diags.Error())
	}
	connect := func(ctx context.Context, uri string) (virt.Hypervisor, error) { return nopClose{w.h}, nil }
	audit, err := OpenAuditLog(filepath.Join(w.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { audit.Close() })
	w.srv.Close()
	w.srv = New(Options{Backend: &EngineBackend{HV: w.h, URI: "test:///fake", Local: true}, Tokens: w.tokens, Audit: audit,
		Log: newTestLogger(w.logs), Profiles: &EngineProfiles{Profiles: []*profiles.Profile{p}, LockWait: time.Second,
			Session: orchestrator.SessionOptions{Connect: connect, Getenv: getenv, Parallelism: 2, PollInterval: time.Millisecond,
				Plan: orchestrator.Options{DefaultURI: "test:///fake"}}}})
	t.Cleanup(w.srv.Close)
	pw := &profileWorld{world: w}
	ch := w.srv.events.subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range ch {
			b, _ := json.Marshal(e)
			pw.mu.Lock()
			pw.stream.Write(append(b, '\n'))
			pw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.srv.events.unsubscribe(ch); close(ch); <-done })
	return pw
}

func (w *profileWorld) streamed() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stream.String()
}

func (w *profileWorld) domains() []string {
	w.t.Helper()
	ds, err := w.h.ListDomains(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		if strings.HasPrefix(d.Name, "gamma-") {
			out = append(out, d.Name)
		}
	}
	return out
}

// An admin plans, applies and destroys a served profile through the API:
// apply creates its VMs (with the engine's events on the stream and an
// audit line), destroy removes them; the fake product key the apply read
// appears in no response, event or audit line.
func TestAdminAppliesAndDestroys(t *testing.T) {
	w := newProfileWorld(t)
	admin := w.token(RoleAdmin)
	var bodies []string
	start := func(kind string) actionView {
		t.Helper()
		r := w.do("POST", "/api/v1/profiles/gamma/"+kind, admin, nil)
		bodies = append(bodies, string(r.body))
		if r.code != http.StatusAccepted {
			t.Fatalf("admin %s: %d %s", kind, r.code, r.body)
		}
		var a actionView
		r.json(t, &a)
		a = w.waitAction(a.ID, admin)
		b, _ := json.Marshal(a)
		bodies = append(bodies, string(b))
		if a.Status != "done" || a.Profile != "gamma" || a.Kind != kind {
			t.Fatalf("%s: %+v", kind, a)
		}
		return a
	}

	// Served but not applied: listed with no VMs.
	var ps struct{ Profiles []profileView }
	r := w.do("GET", "/api/v1/profiles", admin, nil)
	bodies = append(bodies, string(r.body))
	r.json(t, &ps)
	if len(ps.Profiles) != 3 || ps.Profiles[2].Profile != "gamma" || !ps.Profiles[2].Served || ps.Profiles[0].Served {
		t.Fatalf("profiles: %+v", ps.Profiles)
	}

	plan := start("plan")
	if got := w.domains(); len(got) != 0 {
		t.Fatalf("plan created %v", got)
	}
	if !strings.Contains(string(mustJSON(t, plan.Result)), `"gamma-1"`) {
		t.Errorf("the plan does not show gamma-1: %s", mustJSON(t, plan.Result))
	}

	apply := start("apply")
	if got := w.domains(); strings.Join(got, ",") != "gamma-1,gamma-2" {
		t.Fatalf("after apply the host has %v, want gamma-1,gamma-2", got)
	}
	if len(apply.Events) == 0 {
		t.Error("apply reported no events")
	}
	r = w.do("GET", "/api/v1/vms/gamma-1", admin, nil)
	bodies = append(bodies, string(r.body))
	if r.code != 200 {
		t.Errorf("gamma-1 after apply: %d %s", r.code, r.body)
	}
	// The engine's typed events went to the stream, tagged with the action.
	if s := w.streamed(); !strings.Contains(s, `"action":"`+apply.ID+`"`) || !strings.Contains(s, `"object":"gamma-1"`) {
		t.Errorf("the event stream lacks apply's events: %.2000s", s)
	}

	start("destroy")
	if got := w.domains(); len(got) != 0 {
		t.Errorf("after destroy the host still has %v", got)
	}

	var kinds []string
	for _, e := range w.auditLines() {
		if e.Profile == "gamma" {
			kinds = append(kinds, e.Action+":"+e.Result)
			if e.Who == "" || e.Role != RoleAdmin {
				t.Errorf("audit line without its caller: %+v", e)
			}
		}
	}
	if strings.Join(kinds, ",") != "plan:ok,apply:ok,destroy:ok" {
		t.Errorf("audit lines of gamma: %v", kinds)
	}

	audit, _ := os.ReadFile(filepath.Join(w.dir, "audit.log"))
	for name, out := range map[string]string{"responses": strings.Join(bodies, "\n"), "events": w.streamed(),
		"audit log": string(audit), "server log": w.logs.String()} {
		if strings.Contains(out, fakeKey) || strings.Contains(out, strings.ReplaceAll(fakeKey, "-", "")) {
			t.Errorf("the product key appears in the %s", name)
		}
	}
}

// A tester or viewer may not apply or destroy (403, audited as denied); a
// viewer may plan; a token scoped to other profiles gets 404, as for a
// profile the server does not serve.
func TestApplyNeedsAdmin(t *testing.T) {
	w := newProfileWorld(t)
	tester, viewer := w.token(RoleTester), w.token(RoleViewer)
	for _, kind := range []string{"apply", "destroy"} {
		for name, tok := range map[string]string{"tester": tester, "viewer": viewer} {
			if r := w.do("POST", "/api/v1/profiles/gamma/"+kind, tok, nil); r.code != http.StatusForbidden {
				t.Errorf("%s %s: %d %s, want 403", name, kind, r.code, r.body)
			}
		}
	}
	denied := 0
	for _, e := range w.auditLines() {
		if e.Result == "denied" && e.Profile == "gamma" && (e.Action == "apply" || e.Action == "destroy") {
			denied++
		}
	}
	if denied != 4 {
		t.Errorf("%d denied audit lines, want 4", denied)
	}

	r := w.do("POST", "/api/v1/profiles/gamma/plan", viewer, nil)
	if r.code != http.StatusAccepted {
		t.Fatalf("viewer plan: %d %s", r.code, r.body)
	}
	var a actionView
	r.json(t, &a)
	if a = w.waitAction(a.ID, viewer); a.Status != "done" {
		t.Errorf("viewer plan: %+v", a)
	}

	scoped := w.token(RoleAdmin, "alpha")
	for _, kind := range []string{"plan", "apply", "destroy"} {
		if r := w.do("POST", "/api/v1/profiles/gamma/"+kind, scoped, nil); r.code != http.StatusNotFound {
			t.Errorf("admin scoped to alpha, %s gamma: %d %s, want 404", kind, r.code, r.body)
		}
		if r := w.do("POST", "/api/v1/profiles/alpha/"+kind, scoped, nil); r.code != http.StatusNotFound {
			t.Errorf("%s of alpha, which is not served: %d %s, want 404", kind, r.code, r.body)
		}
	}
	var ps struct{ Profiles []profileView }
	w.do("GET", "/api/v1/profiles", scoped, nil).json(t, &ps)
	for _, p := range ps.Profiles {
		if p.Profile == "gamma" {
			t.Errorf("a token scoped to alpha sees gamma: %+v", ps.Profiles)
		}
	}
	if got := w.domains(); len(got) != 0 {
		t.Errorf("refused requests created %v", got)
	}
}

// Without served profiles, the profile routes answer 404.
func TestNoServedProfiles(t *testing.T) {
	w := newWorld(t)
	admin := w.token(RoleAdmin)
	if r := w.do("POST", "/api/v1/profiles/alpha/apply", admin, nil); r.code != http.StatusNotFound {
		t.Errorf("apply without served profiles: %d %s, want 404", r.code, r.body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nopClose keeps the shared fake open when a session closes what it
// connected.
type nopClose struct{ virt.Hypervisor }

func (nopClose) Close() error { return nil }

// Apply takes the VMs' locks like legacyvm apply: while another command
// holds gamma-2's lock, the apply waits (its event says so) and, when the
// wait runs out, fails without creating anything.
func TestApplyWaitsForVMLocks(t *testing.T) {
	w := newProfileWorld(t)
	admin := w.token(RoleAdmin)
	l, err := lock.AcquireVM(context.Background(), "test:///fake", "gamma-2", "a test holding the lock", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	r := w.do("POST", "/api/v1/profiles/gamma/apply", admin, nil)
	if r.code != http.StatusAccepted {
		t.Fatalf("apply: %d %s", r.code, r.body)
	}
	var a actionView
	r.json(t, &a)
	a = w.waitAction(a.ID, admin)
	if a.Status != "failed" || !strings.Contains(a.Error, "gamma-2") {
		t.Errorf("apply while gamma-2 is locked: %s %q", a.Status, a.Error)
	}
	if !strings.Contains(string(mustJSON(t, a.Events)), "waiting for the lock on gamma-2") {
		t.Errorf("no event said apply waited for the lock: %s", mustJSON(t, a.Events))
	}
	if got := w.domains(); len(got) != 0 {
		t.Errorf("a failed apply created %v", got)
	}
	var e []AuditEntry
	for _, x := range w.auditLines() {
		if x.Action == "apply" {
			e = append(e, x)
		}
	}
	if len(e) != 1 || e[0].Result != "failed" {
		t.Errorf("audit lines of the apply: %+v", e)
	}
}
