package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

// world is a server on the fake host with two profiles: alpha (VM a-1)
// and beta (VM b-1), both running with a baseline "clean".
type world struct {
	t      *testing.T
	h      *fake.Hypervisor
	srv    *Server
	tokens *TokenStore
	dir    string
	logs   *bytes.Buffer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	h := fake.New()
	dir := t.TempDir()
	t.Setenv("LEGACYVM_LOCK_DIR", filepath.Join(dir, "locks"))
	for _, vm := range []struct{ name, profile string }{{"a-1", "alpha"}, {"b-1", "beta"}} {
		_, err := h.DefineDomain(ctx, virt.DomainSpec{Name: vm.name, UUID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(vm.name)).String(),
			Accel: virt.AccelTCG, Arch: "x86_64", Machine: "pc", VCPUs: 1, MemoryBytes: 1 << 30, GuestAgent: vm.name == "a-1",
			Metadata: &virt.Metadata{Profile: vm.profile, VM: strings.Split(vm.name, "-")[0], Instance: vm.name, Provisioned: true,
				License: &virt.LicenseRef{Label: "lab-" + vm.profile, Channel: "retail"},
				Policy:  &virt.PolicyRef{Name: "p", Baseline: "clean", Memory: true}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.StartDomain(ctx, vm.name); err != nil {
			t.Fatal(err)
		}
		if _, err := h.CreateSnapshot(ctx, vm.name, virt.SnapshotSpec{Name: "clean", Memory: true}); err != nil {
			t.Fatal(err)
		}
	}
	audit, err := OpenAuditLog(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { audit.Close() })
	w := &world{t: t, h: h, dir: dir, tokens: NewTokenStore(filepath.Join(dir, "tokens.json")), logs: &bytes.Buffer{}}
	w.srv = New(Options{Backend: &EngineBackend{HV: h, URI: "test:///fake", Local: true}, Tokens: w.tokens, Audit: audit,
		Log: newTestLogger(w.logs)})
	t.Cleanup(w.srv.Close)
	return w
}

func (w *world) token(role Role, profiles ...string) string {
	w.t.Helper()
	secret, _, err := w.tokens.Create(string(role)+"-user", role, profiles, time.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	return secret
}

type resp struct {
	code int
	body []byte
	hdr  http.Header
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// do serves one request in-process (no network).
func (w *world) do(method, path, token string, body any, hdr ...string) resp {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	w.srv.ServeHTTP(rec, req)
	return resp{code: rec.Code, body: rec.Body.Bytes(), hdr: rec.Header()}
}

// waitAction polls an action until it ends.
func (w *world) waitAction(id, token string) actionView {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var a actionView
		r := w.do("GET", "/api/v1/actions/"+id, token, nil)
		if r.code != 200 {
			w.t.Fatalf("action %s: %d %s", id, r.code, r.body)
		}
		r.json(w.t, &a)
		if a.Status != "running" {
			return a
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("action %s still running", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *world) auditLines() []AuditEntry {
	w.t.Helper()
	data, err := os.ReadFile(filepath.Join(w.dir, "audit.log"))
	if err != nil {
		w.t.Fatal(err)
	}
	var out []AuditEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var e AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			w.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestNoTokenIs401(t *testing.T) {
	w := newWorld(t)
	for _, p := range []string{"/api/v1/vms", "/api/v1/profiles", "/api/v1/vms/a-1", "/api/v1/vms/a-1/screenshot", "/api/v1/events", "/api/v1/whoami"} {
		if r := w.do("GET", p, "", nil); r.code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", p, r.code)
		}
	}
	if r := w.do("POST", "/api/v1/vms/a-1/reset", "", nil); r.code != http.StatusUnauthorized {
		t.Errorf("reset without a token: %d, want 401", r.code)
	}
	if r := w.do("GET", "/api/v1/vms", "lvmt_0011223344aa_notarealtokenatall", nil); r.code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d, want 401", r.code)
	}
}

func TestViewerCannotReset(t *testing.T) {
	w := newWorld(t)
	viewer := w.token(RoleViewer)
	if r := w.do("GET", "/api/v1/vms", viewer, nil); r.code != 200 {
		t.Fatalf("viewer lists VMs: %d %s", r.code, r.body)
	}
	for _, a := range []string{"reset", "start", "stop"} {
		if r := w.do("POST", "/api/v1/vms/a-1/"+a, viewer, nil); r.code != http.StatusForbidden {
			t.Errorf("viewer %s: %d %s, want 403", a, r.code, r.body)
		}
	}
	if r := w.do("POST", "/api/v1/vms/a-1/revert", viewer, map[string]string{"snapshot": "clean"}); r.code != http.StatusForbidden {
		t.Errorf("viewer revert: %d, want 403", r.code)
	}
	if r := w.do("GET", "/api/v1/vms/a-1/console", viewer, nil); r.code != http.StatusForbidden {
		t.Errorf("viewer console: %d, want 403", r.code)
	}
	denied := 0
	for _, e := range w.auditLines() {
		if e.Result == "denied" && e.Role == RoleViewer {
			denied++
		}
	}
	if denied != 5 {
		t.Errorf("audit: %d denied lines, want 5 (one per refused action)", denied)
	}
}

func TestScopedTokenSeesOnlyItsProfile(t *testing.T) {
	w := newWorld(t)
	alpha := w.token(RoleTester, "alpha")
	var list struct{ VMs []vmView }
	r := w.do("GET", "/api/v1/vms", alpha, nil)
	r.json(t, &list)
	if len(list.VMs) != 1 || list.VMs[0].Name != "a-1" {
		t.Errorf("alpha token lists %+v, want a-1 only", list.VMs)
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/vms/b-1"}, {"GET", "/api/v1/vms/b-1/snapshots"}, {"GET", "/api/v1/vms/b-1/screenshot"},
		{"POST", "/api/v1/vms/b-1/reset"}, {"POST", "/api/v1/vms/b-1/start"}, {"GET", "/api/v1/vms/b-1/console"},
	} {
		if r := w.do(req.method, req.path, alpha, nil); r.code != http.StatusNotFound {
			t.Errorf("alpha token %s %s: %d %s, want 404", req.method, req.path, r.code, r.body)
		}
	}
	// The 404 says nothing more than for a VM that does not exist.
	missing := w.do("GET", "/api/v1/vms/nope-1", alpha, nil)
	other := w.do("GET", "/api/v1/vms/b-1", alpha, nil)
	if missing.code != 404 || strings.Contains(string(other.body), "beta") {
		t.Errorf("missing VM: %d %s; other profile's: %s (must not name the profile)", missing.code, missing.body, other.body)
	}
	var ps struct{ Profiles []profileView }
	w.do("GET", "/api/v1/profiles", alpha, nil).json(t, &ps)
	if len(ps.Profiles) != 1 || ps.Profiles[0].Profile != "alpha" {
		t.Errorf("alpha token's profiles: %+v", ps.Profiles)
	}
}

func TestActionsAreAuditedAndShown(t *testing.T) {
	w := newWorld(t)
	tester := w.token(RoleTester)
	ctx := context.Background()
	var a actionView
	r := w.do("POST", "/api/v1/vms/a-1/snapshots", tester, map[string]string{"name": "before-test"})
	if r.code != http.StatusAccepted {
		t.Fatalf("snapshot: %d %s", r.code, r.body)
	}
	r.json(t, &a)
	if a = w.waitAction(a.ID, tester); a.Status != "done" {
		t.Fatalf("snapshot action: %+v", a)
	}
	snaps, _ := w.h.ListSnapshots(ctx, "a-1")
	if len(snaps) != 2 {
		t.Errorf("snapshots after create: %+v", snaps)
	}
	steps := []string{}
	for _, r := range []struct {
		path string
		body any
	}{
		{"/api/v1/vms/a-1/reset", nil},
		{"/api/v1/vms/a-1/revert", map[string]string{"snapshot": "before-test"}},
		{"/api/v1/vms/a-1/stop", nil},
		{"/api/v1/vms/a-1/start", nil},
		{"/api/v1/vms/a-1/revert", map[string]string{"snapshot": "no-such"}},
	} {
		res := w.do("POST", r.path, tester, r.body)
		if res.code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", r.path, res.code, res.body)
		}
		res.json(t, &a)
		a = w.waitAction(a.ID, tester)
		steps = append(steps, a.Kind+":"+a.Status)
		if len(a.Events) < 2 || a.Events[0].Phase != "begin" {
			t.Errorf("%s: events %+v, want begin ... done/failed", a.Kind, a.Events)
		}
	}
	if got := strings.Join(steps, " "); got != "reset:done revert:done stop:done start:done revert:failed" {
		t.Errorf("actions: %s", got)
	}
	var audited []string
	for _, e := range w.auditLines() {
		if e.Who == "" || e.Time.IsZero() || e.VM != "a-1" {
			t.Errorf("audit line without who/when/vm: %+v", e)
		}
		audited = append(audited, e.Action+":"+e.Result)
	}
	if got := strings.Join(audited, " "); got != "snapshot:ok reset:ok revert:ok stop:ok start:ok revert:failed" {
		t.Errorf("audit log: %s", got)
	}
	var one struct{ VM vmView }
	w.do("GET", "/api/v1/vms/a-1", tester, nil).json(t, &one)
	if one.VM.LastReset == nil || one.VM.SinceReset == nil || one.VM.License != "lab-alpha" || one.VM.State != "running" {
		t.Errorf("VM after actions: %+v", one.VM)
	}
	// Bytes written count from the last start or reset.
	w.h.GuestDiskWrite("a-1", 4096)
	w.do("GET", "/api/v1/vms/a-1", tester, nil).json(t, &one)
	if one.VM.BytesWritten == nil || *one.VM.BytesWritten != 4096 {
		t.Errorf("bytes written after the guest wrote 4096: %v", one.VM.BytesWritten)
	}
	w.do("POST", "/api/v1/vms/a-1/reset", tester, nil).json(t, &a)
	w.waitAction(a.ID, tester)
	w.do("GET", "/api/v1/vms/a-1", tester, nil).json(t, &one)
	if one.VM.BytesWritten == nil || *one.VM.BytesWritten != 0 {
		t.Errorf("bytes written after a reset: %v, want 0", one.VM.BytesWritten)
	}
	fi, err := os.Stat(filepath.Join(w.dir, "audit.log"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode: %v %v, want 0600", fi.Mode(), err)
	}
}

func TestTokensStoredHashedAndNeverLogged(t *testing.T) {
	w := newWorld(t)
	secrets := []string{w.token(RoleViewer), w.token(RoleTester, "alpha"), w.token(RoleAdmin)}
	for _, s := range secrets {
		w.do("GET", "/api/v1/vms", s, nil)
		w.do("POST", "/api/v1/vms/b-1/reset", s, nil)
		w.do("POST", "/api/v1/login", "", map[string]string{"token": s})
	}
	w.do("POST", "/api/v1/login", "", map[string]string{"token": secrets[0] + "x"})
	w.srv.Close()
	data, err := os.ReadFile(w.tokens.Path())
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(w.tokens.Path())
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token store mode %v, want 0600", fi.Mode().Perm())
	}
	audit, _ := os.ReadFile(filepath.Join(w.dir, "audit.log"))
	for _, s := range secrets {
		_, key, _ := strings.Cut(strings.TrimPrefix(s, tokenPrefix), "_")
		for what, text := range map[string]string{"token store": string(data), "audit log": string(audit), "server log": w.logs.String()} {
			if strings.Contains(text, key) {
				t.Errorf("%s holds a token's secret", what)
			}
		}
		if !strings.Contains(string(data), hashToken(s)) {
			t.Errorf("token store lacks the token's SHA-256")
		}
	}
	if !strings.Contains(w.logs.String(), "/api/v1/vms") {
		t.Errorf("server log has no request lines: %s", w.logs.String())
	}
}

func TestPageSessionNeedsCSRFHeader(t *testing.T) {
	w := newWorld(t)
	tester := w.token(RoleTester)
	r := w.do("POST", "/api/v1/login", "", map[string]string{"token": tester})
	if r.code != 200 {
		t.Fatalf("login: %d %s", r.code, r.body)
	}
	var me whoami
	r.json(t, &me)
	cookie := r.hdr.Get("Set-Cookie")
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") || me.CSRFToken == "" {
		t.Fatalf("login: cookie %q, csrf %q", cookie, me.CSRFToken)
	}
	sess := strings.Split(cookie, ";")[0]
	if r := w.do("GET", "/api/v1/vms", "", nil, "Cookie", sess); r.code != 200 {
		t.Errorf("GET with the session: %d", r.code)
	}
	if r := w.do("POST", "/api/v1/vms/a-1/start", "", nil, "Cookie", sess); r.code != http.StatusForbidden {
		t.Errorf("POST with the session but no CSRF header: %d, want 403", r.code)
	}
	if r := w.do("POST", "/api/v1/vms/a-1/start", "", nil, "Cookie", sess, csrfHeader, "wrong"); r.code != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF header: %d, want 403", r.code)
	}
	if r := w.do("POST", "/api/v1/vms/a-1/start", "", nil, "Cookie", sess, csrfHeader, me.CSRFToken); r.code != http.StatusAccepted {
		t.Errorf("POST with the CSRF header: %d %s, want 202", r.code, r.body)
	}
	// Revoking the token ends its sessions.
	if _, err := w.tokens.Revoke(me.ID); err != nil {
		t.Fatal(err)
	}
	if r := w.do("GET", "/api/v1/vms", "", nil, "Cookie", sess); r.code != http.StatusUnauthorized {
		t.Errorf("GET after the token was revoked: %d, want 401", r.code)
	}
}

func TestPageHeadersAndAssets(t *testing.T) {
	w := newWorld(t)
	r := w.do("GET", "/", "", nil)
	if r.code != 200 || !strings.Contains(string(r.body), `<script type="module" src="app.js">`) {
		t.Fatalf("page: %d %s", r.code, r.body)
	}
	csp := r.hdr.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(string(r.body), "<script>") || strings.Contains(string(r.body), " on") && strings.Contains(string(r.body), "onclick") {
		t.Errorf("the page has inline script")
	}
	if r := w.do("GET", "/app.js", "", nil); r.code != 200 {
		t.Errorf("app.js: %d", r.code)
	}
	if r := w.do("GET", "/api/v1/nothing", "", nil); r.code != 404 {
		t.Errorf("unknown API route: %d", r.code)
	}
}

func TestScreenshotIsPNG(t *testing.T) {
	w := newWorld(t)
	viewer := w.token(RoleViewer)
	r := w.do("GET", "/api/v1/vms/a-1/screenshot", viewer, nil)
	if r.code != 200 || r.hdr.Get("Content-Type") != "image/png" || !bytes.HasPrefix(r.body, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %d %s %q", r.code, r.hdr.Get("Content-Type"), r.body[:min(16, len(r.body))])
	}
	if err := w.h.DestroyDomain(context.Background(), "a-1"); err != nil {
		t.Fatal(err)
	}
	if r := w.do("GET", "/api/v1/vms/a-1/screenshot", viewer, nil); r.code != http.StatusConflict {
		t.Errorf("screenshot of a shut-off VM: %d %s, want 409", r.code, r.body)
	}
}

func TestEventsStream(t *testing.T) {
	w := newWorld(t)
	tester := w.token(RoleTester)
	betaViewer := w.token(RoleViewer, "beta")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type stream struct {
		body *io.PipeReader
		done chan struct{}
	}
	// Each stream is read continuously (a blocked writer would hold the
	// handler); beta's into a buffer.
	open := func(tok string) stream {
		pr, pw := io.Pipe()
		req := httptest.NewRequest("GET", "/api/v1/events", nil).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer "+tok)
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.srv.ServeHTTP(&pipeWriter{h: http.Header{}, w: pw}, req)
			pw.Close()
		}()
		return stream{pr, done}
	}
	all, beta := open(tester), open(betaViewer)
	// Both streams are subscribed once their opening comment is read.
	sc := bufio.NewScanner(all.body)
	betaSc := bufio.NewScanner(beta.body)
	if !sc.Scan() || !betaSc.Scan() || sc.Text() != ": legacyvm events" || betaSc.Text() != ": legacyvm events" {
		t.Fatalf("opening lines %q, %q", sc.Text(), betaSc.Text())
	}
	var betaBuf bytes.Buffer
	betaRead := make(chan struct{})
	go func() {
		for betaSc.Scan() {
			betaBuf.WriteString(betaSc.Text() + "\n")
		}
		close(betaRead)
	}()
	defer func() { go io.Copy(io.Discard, all.body) }()
	var a actionView
	w.do("POST", "/api/v1/vms/a-1/reset", tester, nil).json(t, &a)
	w.waitAction(a.ID, tester)
	var got []string
	for sc.Scan() && len(got) < 3 {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var se streamEvent
		if err := json.Unmarshal([]byte(line), &se); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		got = append(got, fmt.Sprintf("%s/%s/%s", se.Event.Object, se.Event.Step, se.Event.Phase))
	}
	if len(got) < 3 || got[0] != "a-1/revert/begin" {
		t.Errorf("events: %v, want a-1/revert/begin first", got)
	}
	// A guest that powers itself off is a lifecycle event on the stream.
	if err := w.h.GuestPowerOff("a-1"); err != nil {
		t.Fatal(err)
	}
	sawStop := false
	for !sawStop && sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var se streamEvent
		if err := json.Unmarshal([]byte(line), &se); err != nil {
			t.Fatal(err)
		}
		sawStop = se.Action == "" && se.Profile == "alpha" && se.Event.Object == "a-1" && se.Event.Step == "stop" && se.Event.Phase == "note"
	}
	if !sawStop {
		t.Error("no lifecycle event for the guest's power-off")
	}
	// The beta-scoped stream got nothing of alpha's VM.
	cancel()
	<-beta.done
	<-betaRead
	if strings.Contains(betaBuf.String(), "a-1") {
		t.Errorf("beta's stream: %q, want nothing of alpha's VM", betaBuf.String())
	}
}

// pipeWriter is a streaming http.ResponseWriter for SSE tests.
type pipeWriter struct {
	h http.Header
	w io.Writer
}

func (p *pipeWriter) Header() http.Header         { return p.h }
func (p *pipeWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeWriter) WriteHeader(int)             {}
func (p *pipeWriter) Flush()                      {}

// exec runs a command in the guest through its agent; the action's result
// has the exit code and output; the audit log names the program only.
func TestExec(t *testing.T) {
	w := newWorld(t)
	tester := w.token(RoleTester)
	var a actionView
	r := w.do("POST", "/api/v1/vms/a-1/exec", tester, map[string]any{"argv": []string{"echo", "hello", "s3cr3t-arg"}})
	if r.code != http.StatusAccepted {
		t.Fatalf("exec: %d %s", r.code, r.body)
	}
	r.json(t, &a)
	a = w.waitAction(a.ID, tester)
	res, _ := json.Marshal(a.Result)
	var er ExecResult
	_ = json.Unmarshal(res, &er)
	if a.Status != "done" || er.ExitCode != 0 || er.Stdout != "hello s3cr3t-arg\n" {
		t.Errorf("exec: %+v, result %s", a.actionInfo, res)
	}
	w.do("POST", "/api/v1/vms/b-1/exec", tester, map[string]any{"argv": []string{"echo"}}).json(t, &a)
	if a = w.waitAction(a.ID, tester); a.Status != "failed" || !strings.Contains(a.Error, "no guest agent channel") {
		t.Errorf("exec without an agent: %+v", a.actionInfo)
	}
	if r := w.do("POST", "/api/v1/vms/a-1/exec", tester, map[string]any{"argv": []string{}}); r.code != http.StatusBadRequest {
		t.Errorf("empty argv: %d", r.code)
	}
	if r := w.do("POST", "/api/v1/vms/a-1/exec", w.token(RoleViewer), map[string]any{"argv": []string{"echo"}}); r.code != http.StatusForbidden {
		t.Errorf("viewer exec: %d, want 403", r.code)
	}
	audit, _ := os.ReadFile(filepath.Join(w.dir, "audit.log"))
	if !strings.Contains(string(audit), `"action":"exec","profile":"alpha","vm":"a-1","target":"echo","result":"ok"`) || strings.Contains(string(audit), "s3cr3t-arg") {
		t.Errorf("audit log:\n%s", audit)
	}
}
