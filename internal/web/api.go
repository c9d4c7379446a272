package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// vmView is a VM with what the server adds.
type vmView struct {
	VM
	// LastReset is when this server last reset or reverted the VM (nil:
	// not since it started).
	LastReset *time.Time `json:"last_reset"`
	// SinceReset is the number of seconds since LastReset (nil with it).
	SinceReset *float64 `json:"seconds_since_reset"`
}

func (s *Server) view(v VM) vmView {
	out := vmView{VM: v}
	s.mu.Lock()
	t, ok := s.lastReset[v.Name]
	s.mu.Unlock()
	if ok {
		secs := s.opts.Now().Sub(t).Seconds()
		out.LastReset, out.SinceReset = &t, &secs
	}
	return out
}

// visibleVMs lists the VMs the caller may see.
func (s *Server) visibleVMs(ctx context.Context, c *caller) ([]vmView, error) {
	vms, err := s.opts.Backend.VMs(ctx)
	if err != nil {
		return nil, err
	}
	out := []vmView{}
	for _, v := range vms {
		if c.Sees(v.Profile) {
			out = append(out, s.view(v))
		}
	}
	return out, nil
}

// lookup returns the VM of the request's {vm} if the caller may see it;
// otherwise it has written 404 (a VM of another profile does not exist
// for a scoped token).
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, c *caller) (VM, bool) {
	name := r.PathValue("vm")
	v, err := s.opts.Backend.VM(r.Context(), name)
	if err != nil {
		backendError(w, err)
		return VM{}, false
	}
	if !c.Sees(v.Profile) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("VM %q: %v", name, virt.ErrNotFound))
		return VM{}, false
	}
	return v, true
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ *caller) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
}

// maxSessions bounds the page sessions held in memory.
const maxSessions = 10000

type loginRequest struct {
	Token string `json:"token"`
}

type whoami struct {
	FormatVersion int      `json:"format_version"`
	ID            string   `json:"id"`
	Name          string   `json:"name,omitempty"`
	Role          Role     `json:"role"`
	Profiles      []string `json:"profiles"`
	// CSRFToken is the value of the X-CSRF-Token header the page sends
	// (only for a page session).
	CSRFToken string `json:"csrf_token,omitempty"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, _ *caller) {
	var req loginRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	t, ok := s.opts.Tokens.Authenticate(req.Token)
	if !ok {
		s.audit(r, nil, AuditEntry{Action: "login", Result: "denied", Error: "unknown or revoked token"})
		writeError(w, http.StatusUnauthorized, "unknown or revoked token")
		return
	}
	sess := &session{id: randomString(32), tokenID: t.ID, csrf: randomString(32), expires: s.opts.Now().Add(s.opts.SessionTTL)}
	s.mu.Lock()
	now := s.opts.Now()
	for id, old := range s.sessions {
		if now.After(old.expires) {
			delete(s.sessions, id)
		}
	}
	if len(s.sessions) >= maxSessions {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "too many open sessions: log out elsewhere or wait for sessions to expire")
		return
	}
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.id, Path: "/", HttpOnly: true, Secure: s.opts.Secure,
		SameSite: http.SameSiteStrictMode, Expires: sess.expires})
	c := &caller{Token: t, session: sess}
	s.audit(r, c, AuditEntry{Action: "login", Result: "ok"})
	writeJSON(w, http.StatusOK, s.whoami(c))
}

func (s *Server) whoami(c *caller) whoami {
	out := whoami{FormatVersion: FormatVersion, ID: c.ID, Name: c.Name, Role: c.Role, Profiles: c.Profiles}
	if out.Profiles == nil {
		out.Profiles = []string{}
	}
	if c.session != nil {
		out.CSRFToken = c.session.csrf
	}
	return out
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, c *caller) {
	if c.session != nil {
		s.mu.Lock()
		delete(s.sessions, c.session.id)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.opts.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	s.audit(r, c, AuditEntry{Action: "logout", Result: "ok"})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request, c *caller) {
	writeJSON(w, http.StatusOK, s.whoami(c))
}

type profileView struct {
	Profile string `json:"profile"`
	// Served is true when the server holds the profile's files (legacyvm
	// serve --profile): it may be planned, applied and destroyed.
	Served bool     `json:"served"`
	VMs    []vmView `json:"vms"`
}

func (s *Server) handleProfiles(w http.ResponseWriter, r *http.Request, c *caller) {
	vms, err := s.visibleVMs(r.Context(), c)
	if err != nil {
		backendError(w, err)
		return
	}
	ps := []profileView{}
	for _, v := range vms {
		if len(ps) == 0 || ps[len(ps)-1].Profile != v.Profile {
			ps = append(ps, profileView{Profile: v.Profile})
		}
		ps[len(ps)-1].VMs = append(ps[len(ps)-1].VMs, v)
	}
	var served []string
	if s.opts.Profiles != nil {
		served = s.opts.Profiles.Names()
	}
	for _, name := range served {
		if !c.Sees(name) {
			continue
		}
		i := slices.IndexFunc(ps, func(p profileView) bool { return p.Profile == name })
		if i < 0 {
			ps = append(ps, profileView{Profile: name, VMs: []vmView{}})
			i = len(ps) - 1
		}
		ps[i].Served = true
	}
	slices.SortFunc(ps, func(a, b profileView) int { return compare(a.Profile, b.Profile) })
	writeJSON(w, http.StatusOK, map[string]any{"format_version": FormatVersion, "profiles": ps})
}

func (s *Server) handleVMs(w http.ResponseWriter, r *http.Request, c *caller) {
	vms, err := s.visibleVMs(r.Context(), c)
	if err != nil {
		backendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"format_version": FormatVersion, "vms": vms})
}

func (s *Server) handleVM(w http.ResponseWriter, r *http.Request, c *caller) {
	v, ok := s.lookup(w, r, c)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"format_version": FormatVersion, "vm": s.view(v)})
}

func (s *Server) handleSnapshots(w http.ResponseWriter, r *http.Request, c *caller) {
	v, ok := s.lookup(w, r, c)
	if !ok {
		return
	}
	snaps, err := s.opts.Backend.Snapshots(r.Context(), v.Name)
	if err != nil {
		backendError(w, err)
		return
	}
	if snaps == nil {
		snaps = []Snapshot{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"format_version": FormatVersion, "vm": v.Name, "snapshots": snaps})
}

// snapshotName is what a snapshot created through the API may be called.
var snapshotName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

type snapshotRequest struct {
	Name string `json:"name"`
}

func (s *Server) handleCreateSnapshot(w http.ResponseWriter, r *http.Request, c *caller) {
	var req snapshotRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !snapshotName.MatchString(req.Name) {
		writeError(w, http.StatusBadRequest, "name: 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit")
		return
	}
	s.startAction(w, r, c, "snapshot", req.Name, func(ctx context.Context, vm string, hook event.Hook) error {
		return s.opts.Backend.CreateSnapshot(ctx, vm, req.Name, hook)
	})
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request, c *caller) {
	s.startAction(w, r, c, "reset", "", s.opts.Backend.Reset)
}

type revertRequest struct {
	Snapshot string `json:"snapshot"`
}

func (s *Server) handleRevert(w http.ResponseWriter, r *http.Request, c *caller) {
	var req revertRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Snapshot == "" || len(req.Snapshot) > 200 {
		writeError(w, http.StatusBadRequest, "snapshot: name the snapshot to revert to")
		return
	}
	s.startAction(w, r, c, "revert", req.Snapshot, func(ctx context.Context, vm string, hook event.Hook) error {
		return s.opts.Backend.Revert(ctx, vm, req.Snapshot, hook)
	})
}

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request, c *caller) {
	s.startAction(w, r, c, "start", "", s.opts.Backend.Start)
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request, c *caller) {
	s.startAction(w, r, c, "stop", "", s.opts.Backend.Stop)
}

// action is one action the API started; it runs in the server's context.
type action struct {
	actionInfo
	rec event.Recorder
}

// actionInfo is what the API shows of an action.
type actionInfo struct {
	ID      string    `json:"id"`
	Kind    string    `json:"action"`
	VM      string    `json:"vm"`
	Profile string    `json:"profile"`
	Target  string    `json:"target,omitempty"`
	Who     string    `json:"who"`
	Started time.Time `json:"started"`
	// Status is "running", "done" or "failed".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Result is what the action gave (exec: an ExecResult).
	Result any `json:"result,omitempty"`
}

type actionView struct {
	FormatVersion int `json:"format_version"`
	actionInfo
	Events []event.Event `json:"events"`
}

func (s *Server) actionView(a *action) actionView {
	s.mu.Lock()
	v := actionView{FormatVersion: FormatVersion, actionInfo: a.actionInfo}
	s.mu.Unlock()
	v.Events = a.rec.Events()
	if v.Events == nil {
		v.Events = []event.Event{}
	}
	return v
}

// maxActions bounds the finished actions kept for GET /actions/{id}.
const maxActions = 200

// startAction starts kind on the request's VM and answers 202 with the
// action; the audit line is written when it ends.
func (s *Server) startAction(w http.ResponseWriter, r *http.Request, c *caller, kind, target string, run func(context.Context, string, event.Hook) error) {
	s.startActionResult(w, r, c, kind, target, func(ctx context.Context, vm string, hook event.Hook) (any, error) {
		return nil, run(ctx, vm, hook)
	})
}

// startActionResult is startAction for an action with a result (exec).
func (s *Server) startActionResult(w http.ResponseWriter, r *http.Request, c *caller, kind, target string, run func(context.Context, string, event.Hook) (any, error)) {
	v, ok := s.lookup(w, r, c)
	if !ok {
		return
	}
	s.runAction(w, r, c, kind, v.Profile, v.Name, target, func(ctx context.Context, hook event.Hook) (any, error) {
		return run(ctx, v.Name, hook)
	})
}

// runAction starts an action on a VM (vm set) or on a whole profile and
// answers 202 with it; the audit line is written when it ends.
func (s *Server) runAction(w http.ResponseWriter, r *http.Request, c *caller, kind, profile, vm, target string, run func(context.Context, event.Hook) (any, error)) {
	s.mu.Lock()
	s.nextID++
	a := &action{actionInfo: actionInfo{ID: strconv.Itoa(s.nextID), Kind: kind, VM: vm, Profile: profile, Target: target,
		Who: c.Who(), Started: s.opts.Now().UTC(), Status: "running"}}
	s.actions[a.ID] = a
	if len(s.actions) > maxActions {
		for id, old := range s.actions {
			if old.Status != "running" && id != a.ID {
				delete(s.actions, id)
				break
			}
		}
	}
	s.mu.Unlock()
	remote := r.RemoteAddr
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		result, err := run(s.ctx, s.hookFor(a))
		e := AuditEntry{Action: kind, Profile: profile, VM: vm, Target: target, Result: "ok", Remote: remote}
		s.mu.Lock()
		a.Status, a.Result = "done", result
		if err != nil {
			a.Status, a.Error = "failed", err.Error()
			e.Result, e.Error = "failed", err.Error()
		} else if kind == "reset" || kind == "revert" {
			s.lastReset[vm] = s.opts.Now().UTC()
		}
		status := a.Status
		s.mu.Unlock()
		s.audit(nil, c, e)
		end := event.Event{Time: s.opts.Now().UTC(), Kind: event.KindVM, Object: vm, Step: event.StepOperation, Phase: event.Note, Message: "action " + status}
		if vm == "" {
			end.Kind, end.Object = event.KindHost, profile
		}
		s.events.publish(streamEvent{Action: a.ID, Profile: a.Profile, Event: end})
	}()
	writeJSON(w, http.StatusAccepted, s.actionView(a))
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request, c *caller) {
	s.mu.Lock()
	a := s.actions[r.PathValue("id")]
	s.mu.Unlock()
	if a == nil || !c.Sees(a.Profile) {
		writeError(w, http.StatusNotFound, "no such action")
		return
	}
	writeJSON(w, http.StatusOK, s.actionView(a))
}

func (s *Server) handleScreenshot(w http.ResponseWriter, r *http.Request, c *caller) {
	v, ok := s.lookup(w, r, c)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	shot, err := s.opts.Backend.Screenshot(ctx, v.Name)
	if err != nil {
		backendError(w, err)
		return
	}
	img, err := toPNG(shot)
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("screenshot of %s: %v", v.Name, err))
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(img)))
	_, _ = w.Write(img)
}

type execRequest struct {
	Argv []string `json:"argv"`
	// TimeoutSeconds kills the program after this long (default 600, at
	// most 3600).
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

func (s *Server) handleExec(w http.ResponseWriter, r *http.Request, c *caller) {
	var req execRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Argv) == 0 || len(req.Argv) > 256 || req.Argv[0] == "" {
		writeError(w, http.StatusBadRequest, "argv: the program and its arguments (1 to 256 strings)")
		return
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > 3600 {
		writeError(w, http.StatusBadRequest, "timeout_seconds: 1 to 3600 (default 600)")
		return
	}
	timeout := 600 * time.Second
	if req.TimeoutSeconds > 0 {
		timeout = time.Duration(req.TimeoutSeconds) * time.Second
	}
	// The audit log names the program only: arguments may hold what the
	// caller would not want logged.
	s.startActionResult(w, r, c, "exec", req.Argv[0], func(ctx context.Context, vm string, hook event.Hook) (any, error) {
		return s.opts.Backend.Exec(ctx, vm, req.Argv, timeout, hook)
	})
}
