package orchestrator

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// Session is the engine's one entry point for every front end (the CLI,
// the daemon, the web console). Opened on a profile (Open), it plans,
// applies, destroys and verifies the profile on all its hosts, and owns
// the host connections it makes; opened on one connected host (OnHost),
// it works on that host's VMs: Start, Stop, Reset, RevertSnapshot,
// CreateSnapshot, ListSnapshots, DeleteSnapshot, Prune, RunDue, Status,
// Verify and the golden-image operations.
//
// Every operation reports through SessionOptions.Hook as typed events
// (internal/event): the steps on each object and a final StepOperation
// Done or Failed per object. Methods may be called from several
// goroutines; Close ends the session and closes the connections it made
// (never the one given to OnHost).
type Session struct {
	*engine
	profile *profiles.Profile
	o       SessionOptions

	mu    sync.Mutex
	plans []*HostPlan // whose connections Close closes
}

// SessionOptions configure a session.
type SessionOptions struct {
	// Connect reaches a host by libvirt URI (profile sessions).
	Connect Connector
	// Plan are the planning settings (profile sessions).
	Plan Options
	// Hook receives the events; nil discards. It must be safe for
	// concurrent use.
	Hook event.Hook
	// Parallelism bounds how many VMs are worked on at once (< 1: one).
	Parallelism int
	// Getenv reads environment variables for secret sources (nil: os).
	Getenv func(string) (string, bool)
	// Fingerprint computes the keyed fingerprint of a product key; nil
	// records none (tests).
	Fingerprint FingerprintFunc
	// PollInterval is how often waits poll the host (0: 500ms).
	PollInterval time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Profile scopes a host session's VM operations to the VMs of this
	// profile ("": every VM legacyvm manages on the host).
	Profile string
}

// Open opens a session on profile p. Nothing is connected until an
// operation needs a host.
func Open(p *profiles.Profile, o SessionOptions) *Session {
	s := OnHost(nil, "", o)
	s.profile = p
	if p != nil && s.Profile == "" {
		s.engine.Profile = p.Name
	}
	return s
}

// OnHost opens a session on the connected host hv at uri. The caller keeps
// hv: Close does not close it.
func OnHost(hv virt.Hypervisor, uri string, o SessionOptions) *Session {
	return &Session{o: o, engine: &engine{
		HV: hv, Host: uri, Hook: o.Hook, Parallelism: o.Parallelism, Getenv: o.Getenv,
		Fingerprint: o.Fingerprint, PollInterval: o.PollInterval, Now: o.Now, Profile: o.Profile,
	}}
}

// onHost is a session sharing s's settings on another connected host.
func (s *Session) onHost(hv virt.Hypervisor, uri string) *Session {
	e := *s.engine
	e.HV, e.Host = hv, uri
	return &Session{engine: &e, profile: s.profile, o: s.o}
}

// WithHook is the session with its events going to h instead (a front end
// that renders each host on its own board). It shares s's connections.
func (s *Session) WithHook(h event.Hook) *Session {
	e := *s.engine
	e.Hook = h
	return &Session{engine: &e, profile: s.profile, o: s.o}
}

// SetProfile scopes the session's VM operations to the VMs of profile
// ("": every VM legacyvm manages on the host).
func (s *Session) SetProfile(profile string) { s.engine.Profile = profile }

var errNoProfile = errors.New("the session has no profile")

// Plan connects to every host of the profile, observes them and plans
// (see planProfile). The connections stay open for Apply until Close.
func (s *Session) Plan(ctx context.Context) ([]*HostPlan, hcl.Diagnostics, error) {
	if s.profile == nil {
		return nil, nil, errNoProfile
	}
	po := s.o.Plan
	if po.ReadKeys && !po.keys.on {
		po.keys = sourceKeys(s.o.Getenv, s.o.Fingerprint)
	}
	hps, diags, err := planProfile(ctx, s.profile, s.o.Connect, po)
	s.keep(hps)
	return hps, diags, err
}

// PlanDestroy plans the removal of what the profile owns on its hosts
// (only: just these instances; see planProfileDestroy). Apply carries it out.
func (s *Session) PlanDestroy(ctx context.Context, only []string) ([]*HostPlan, error) {
	if s.profile == nil {
		return nil, errNoProfile
	}
	hps, err := planProfileDestroy(ctx, s.profile, s.o.Connect, s.o.Plan, only)
	s.keep(hps)
	return hps, err
}

func (s *Session) keep(hps []*HostPlan) {
	s.mu.Lock()
	s.plans = append(s.plans, hps...)
	s.mu.Unlock()
}

// Apply carries out one host's plan (made by Plan or PlanDestroy): pools,
// networks and filters, then VMs in parallel, then what is no longer
// declared. The error is an *ApplyError when some objects failed.
func (s *Session) Apply(ctx context.Context, hp *HostPlan) ([]Result, error) {
	if hp.Plan == nil {
		if hp.Err != nil {
			return nil, hp.Err
		}
		return nil, errors.New("apply: host plan without a plan")
	}
	return s.onHost(hp.HV, hp.URI).engine.Apply(ctx, hp.Plan)
}

// Verify checks isolation: of the profile on each of its hosts (a profile
// session; vo.Profile is set per host), or of every VM legacyvm manages on
// the session's host.
func (s *Session) Verify(ctx context.Context, vo VerifyOptions) ([]*Verification, error) {
	if s.profile != nil && s.HV == nil {
		return verifyProfile(ctx, s.profile, s.o.Connect, s.o.Plan, vo)
	}
	if vo.URI == "" {
		vo.URI = s.Host
	}
	v, err := verifyHost(ctx, s.HV, vo)
	if err != nil {
		return nil, err
	}
	return []*Verification{v}, nil
}

// Status lists the VMs of the session's profile (all managed VMs without
// one) on the session's host, sorted by profile, then name.
func (s *Session) Status(ctx context.Context) ([]VMStatus, error) {
	now := time.Now()
	if s.engine.Now != nil {
		now = s.engine.Now()
	}
	return hostStatusAt(ctx, s.HV, s.engine.Profile, now)
}

// ListImages lists the registered versions of image ("": every image) in
// pool on the session's host, with the domains that use each.
func (s *Session) ListImages(ctx context.Context, pool, image string) (*ImageInventory, error) {
	return listImages(ctx, s.HV, pool, image)
}

// Close closes the connections the session made. The session must not be
// used after.
func (s *Session) Close() {
	s.mu.Lock()
	hps := s.plans
	s.plans = nil
	s.mu.Unlock()
	closeAll(hps)
}
