package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// FormatVersion is the version of the API's JSON documents.
const FormatVersion = 1

// Options configure a Server.
type Options struct {
	Backend Backend
	// Profiles plans, applies and destroys the served profiles (nil:
	// none is served; the profile routes answer 404).
	Profiles ProfileRunner
	Tokens   *TokenStore
	Audit    *AuditLog
	// Log receives one line per request (never a token); nil discards.
	Log *slog.Logger
	// Secure marks the session cookie Secure (the server speaks TLS).
	Secure bool
	// SessionTTL bounds a page session (default 12 hours).
	SessionTTL time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server is the web console and API. Create it with New; it is an
// http.Handler. Close stops running actions' event streams.
type Server struct {
	opts   Options
	mux    *http.ServeMux
	events *broker
	log    *slog.Logger

	// ctx outlives requests: actions run in it (a client that goes away
	// does not stop a reset half-way); Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	sessions  map[string]*session
	lastReset map[string]time.Time
	actions   map[string]*action
	nextID    int
}

// route is one API route: the single list both the mux and the OpenAPI
// test read.
type route struct {
	method  string
	pattern string // net/http pattern path, e.g. /api/v1/vms/{vm}
	// need is the least role; "" means no token is needed.
	need    Role
	handler func(*Server, http.ResponseWriter, *http.Request, *caller)
}

// routes lists every API route. The OpenAPI document (openapi.json) lists
// the same ones (TestOpenAPIRoutes).
var routes = []route{
	{"GET", "/api/v1/openapi.json", "", (*Server).handleOpenAPI},
	{"POST", "/api/v1/login", "", (*Server).handleLogin},
	{"POST", "/api/v1/logout", RoleViewer, (*Server).handleLogout},
	{"GET", "/api/v1/whoami", RoleViewer, (*Server).handleWhoami},
	{"GET", "/api/v1/profiles", RoleViewer, (*Server).handleProfiles},
	{"POST", "/api/v1/profiles/{profile}/plan", RoleViewer, (*Server).handlePlan},
	{"POST", "/api/v1/profiles/{profile}/apply", RoleAdmin, (*Server).handleApply},
	{"POST", "/api/v1/profiles/{profile}/destroy", RoleAdmin, (*Server).handleDestroy},
	{"GET", "/api/v1/vms", RoleViewer, (*Server).handleVMs},
	{"GET", "/api/v1/vms/{vm}", RoleViewer, (*Server).handleVM},
	{"GET", "/api/v1/vms/{vm}/snapshots", RoleViewer, (*Server).handleSnapshots},
	{"POST", "/api/v1/vms/{vm}/snapshots", RoleTester, (*Server).handleCreateSnapshot},
	{"POST", "/api/v1/vms/{vm}/reset", RoleTester, (*Server).handleReset},
	{"POST", "/api/v1/vms/{vm}/revert", RoleTester, (*Server).handleRevert},
	{"POST", "/api/v1/vms/{vm}/start", RoleTester, (*Server).handleStart},
	{"POST", "/api/v1/vms/{vm}/stop", RoleTester, (*Server).handleStop},
	{"POST", "/api/v1/vms/{vm}/exec", RoleTester, (*Server).handleExec},
	{"GET", "/api/v1/vms/{vm}/screenshot", RoleViewer, (*Server).handleScreenshot},
	{"GET", "/api/v1/vms/{vm}/console", RoleTester, (*Server).handleConsole},
	{"GET", "/api/v1/actions/{id}", RoleViewer, (*Server).handleAction},
	{"GET", "/api/v1/events", RoleViewer, (*Server).handleEvents},
}

// New makes a server.
func New(opts Options) *Server {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, mux: http.NewServeMux(), events: newBroker(), log: log, ctx: ctx, cancel: cancel,
		sessions: map[string]*session{}, lastReset: map[string]time.Time{}, actions: map[string]*action{}}
	for _, rt := range routes {
		s.mux.HandleFunc(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route")
	})
	page := pageHandler()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		page.ServeHTTP(w, r)
	})
	s.wg.Add(1)
	go s.watch()
	return s
}

// watch relays the host's lifecycle events to the event streams (the page
// refreshes a VM's row on them), reconnecting every few seconds when the
// stream ends, until Close. Events of VMs legacyvm does not manage are
// dropped; each carries the VM's profile for the streams' scoping.
func (s *Server) watch() {
	defer s.wg.Done()
	for s.ctx.Err() == nil {
		ch, err := s.opts.Backend.Watch(s.ctx)
		if err == nil {
			for e := range ch {
				ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
				v, err := s.opts.Backend.VM(ctx, e.Object)
				cancel()
				if err != nil {
					continue
				}
				s.events.publish(streamEvent{Profile: v.Profile, Event: e})
			}
		} else {
			s.log.Warn("lifecycle events", "err", err)
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// Close cancels running actions and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// ServeHTTP implements http.Handler: security headers, then the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if s.opts.Secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	start := time.Now()
	s.mux.ServeHTTP(rec, r)
	// The path only: no query string (tokens are never in URLs anyway),
	// no headers.
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"who", rec.who, "took", time.Since(start).Round(time.Millisecond).String())
}

// contentSecurityPolicy allows only the server's own scripts, styles and
// connections: no inline script or style, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type statusRecorder struct {
	http.ResponseWriter
	status int
	who    string
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController and the websocket upgrade reach the
// underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// caller is the authenticated token of a request.
type caller struct {
	Token
	// session is set when the request came with the page's cookie.
	session *session
}

// session is a page login.
type session struct {
	id      string
	tokenID string
	csrf    string
	expires time.Time
}

const sessionCookie = "legacyvm_session"

// csrfHeader carries the page session's CSRF token on every request that
// changes something.
const csrfHeader = "X-CSRF-Token"

// wrap authenticates and authorises a request for rt.
func (s *Server) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			w.Header().Set("Cache-Control", "no-store")
		}
		if rt.need == "" {
			rt.handler(s, w, r, nil)
			return
		}
		c, status, msg := s.authenticate(r)
		if c == nil {
			writeError(w, status, msg)
			return
		}
		if rec, ok := w.(*statusRecorder); ok {
			rec.who = c.ID
		}
		if !c.Role.Allows(rt.need) {
			s.audit(r, c, AuditEntry{Action: actionName(rt), Profile: r.PathValue("profile"), VM: r.PathValue("vm"), Result: "denied",
				Error: fmt.Sprintf("role %s may not do this (needs %s)", c.Role, rt.need)})
			writeError(w, http.StatusForbidden, fmt.Sprintf("a %s token may not do this (needs %s)", c.Role, rt.need))
			return
		}
		rt.handler(s, w, r, c)
	}
}

// actionName names a route in the audit log: the last path element.
func actionName(rt route) string {
	i := strings.LastIndex(rt.pattern, "/")
	name := rt.pattern[i+1:]
	if rt.method == "POST" && name == "snapshots" {
		return "snapshot"
	}
	return name
}

// authenticate finds the caller: a bearer token, or the page's session
// cookie (with its CSRF header on unsafe methods).
func (s *Server) authenticate(r *http.Request) (*caller, int, string) {
	if h := r.Header.Get("Authorization"); h != "" {
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, http.StatusUnauthorized, "the Authorization header must be Bearer <token>"
		}
		t, ok := s.opts.Tokens.Authenticate(strings.TrimSpace(secret))
		if !ok {
			return nil, http.StatusUnauthorized, "unknown or revoked token"
		}
		return &caller{Token: t}, 0, ""
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, http.StatusUnauthorized, "log in: send Authorization: Bearer <token>"
	}
	s.mu.Lock()
	sess := s.sessions[ck.Value]
	if sess != nil && s.opts.Now().After(sess.expires) {
		delete(s.sessions, ck.Value)
		sess = nil
	}
	s.mu.Unlock()
	if sess == nil {
		return nil, http.StatusUnauthorized, "the session ended: log in again"
	}
	// The token behind the session may have been revoked meanwhile.
	ts, err := s.opts.Tokens.List()
	if err != nil {
		return nil, http.StatusInternalServerError, "cannot read the token store"
	}
	var tok *Token
	for i := range ts {
		if ts[i].ID == sess.tokenID {
			tok = &ts[i]
		}
	}
	if tok == nil {
		return nil, http.StatusUnauthorized, "the token of this session was revoked"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if got := r.Header.Get(csrfHeader); got == "" || got != sess.csrf {
			return nil, http.StatusForbidden, "missing or wrong " + csrfHeader + " header"
		}
	}
	return &caller{Token: *tok, session: sess}, 0, ""
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// audit writes an audit line; a failure to write is logged.
func (s *Server) audit(r *http.Request, c *caller, e AuditEntry) {
	if c != nil {
		e.Who, e.Role = c.Who(), c.Role
	}
	if r != nil {
		e.Remote = r.RemoteAddr
	}
	e.Time = s.opts.Now().UTC()
	if s.opts.Audit == nil {
		return
	}
	if err := s.opts.Audit.Write(e); err != nil {
		s.log.Error("audit log", "err", err)
	}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiError is every error document.
type apiError struct {
	FormatVersion int    `json:"format_version"`
	Error         string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{FormatVersion: FormatVersion, Error: msg})
}

// backendError maps a backend error to a status.
func backendError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, virt.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, virt.ErrInvalidState):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, virt.ErrUnsupported):
		writeError(w, http.StatusNotImplemented, err.Error())
	default:
		writeError(w, http.StatusBadGateway, err.Error())
	}
}

// decodeBody decodes a small JSON body strictly.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return errors.New("send Content-Type: application/json")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON body: %v", err)
	}
	return nil
}

// hookFor is the hook of an action: its recorder and the event stream.
func (s *Server) hookFor(a *action) event.Hook {
	return event.Func(func(e event.Event) {
		a.rec.Event(e)
		s.events.publish(streamEvent{Action: a.ID, Profile: a.Profile, Event: e})
	})
}
