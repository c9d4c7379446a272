package web

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// ProfileRunner plans, applies and destroys the profiles the server was
// started with (legacyvm serve --profile PATH). Every method is safe for
// concurrent use; an unknown profile is an error wrapping virt.ErrNotFound.
type ProfileRunner interface {
	// Names lists the profiles served, sorted.
	Names() []string
	// Plan plans the profile without changing anything and without
	// reading a secret.
	Plan(ctx context.Context, profile string, hook event.Hook) ([]HostPlan, error)
	// Apply plans (reading the product keys of the VMs it creates, once)
	// and carries the plan out; Destroy removes what the profile owns.
	// Both hold the profile's lock and its VMs' locks, like the CLI.
	Apply(ctx context.Context, profile string, hook event.Hook) ([]HostPlan, error)
	Destroy(ctx context.Context, profile string, hook event.Hook) ([]HostPlan, error)
}

// HostPlan is one host's plan as the API shows it: the plan's printed
// form, which never holds a secret.
type HostPlan struct {
	Host    string                `json:"host"`
	URI     string                `json:"uri"`
	Error   string                `json:"error,omitempty"`
	Changes []orchestrator.Change `json:"changes"`
}

// EngineProfiles is the ProfileRunner that drives orchestrator sessions.
type EngineProfiles struct {
	// Profiles are the served profiles, loaded and validated.
	Profiles []*profiles.Profile
	// Session are the engine settings (Connect, Getenv, Fingerprint,
	// Parallelism, Plan...); the Hook is the action's.
	Session orchestrator.SessionOptions
	// LockWait bounds the wait for another command working on the profile
	// or one of its VMs (0: five minutes).
	LockWait time.Duration
}

// Names implements ProfileRunner.
func (e *EngineProfiles) Names() []string {
	var out []string
	for _, p := range e.Profiles {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func (e *EngineProfiles) profile(name string) (*profiles.Profile, error) {
	for _, p := range e.Profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("profile %q is not served (legacyvm serve --profile PATH): %w", name, virt.ErrNotFound)
}

func (e *EngineProfiles) open(p *profiles.Profile, readKeys bool, hook event.Hook) *orchestrator.Session {
	o := e.Session
	o.Hook = hook
	o.Plan.ReadKeys = readKeys
	return orchestrator.Open(p, o)
}

// Plan implements ProfileRunner.
func (e *EngineProfiles) Plan(ctx context.Context, name string, hook event.Hook) ([]HostPlan, error) {
	p, err := e.profile(name)
	if err != nil {
		return nil, err
	}
	s := e.open(p, false, hook)
	defer s.Close()
	hps, diags, err := s.Plan(ctx)
	if err == nil && diags.HasErrors() {
		err = diagError(diags.Errs())
	}
	return hostPlans(hps), err
}

// Apply implements ProfileRunner.
func (e *EngineProfiles) Apply(ctx context.Context, name string, hook event.Hook) ([]HostPlan, error) {
	return e.change(ctx, name, "apply", hook, func(s *orchestrator.Session) ([]*orchestrator.HostPlan, error) {
		hps, diags, err := s.Plan(ctx)
		if err == nil && diags.HasErrors() {
			err = diagError(diags.Errs())
		}
		return hps, err
	})
}

// Destroy implements ProfileRunner.
func (e *EngineProfiles) Destroy(ctx context.Context, name string, hook event.Hook) ([]HostPlan, error) {
	return e.change(ctx, name, "destroy", hook, func(s *orchestrator.Session) ([]*orchestrator.HostPlan, error) {
		return s.PlanDestroy(ctx, nil)
	})
}

func diagError(errs []error) error {
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// change takes the locks apply and destroy take on the command line (the
// profile's on each host, then its VMs', then those of VMs the plan
// deletes that the profile no longer declares), plans with plan and
// carries out each host's plan.
func (e *EngineProfiles) change(ctx context.Context, name, purpose string, hook event.Hook, plan func(*orchestrator.Session) ([]*orchestrator.HostPlan, error)) ([]HostPlan, error) {
	p, err := e.profile(name)
	if err != nil {
		return nil, err
	}
	if hook == nil {
		hook = event.Func(func(event.Event) {})
	}
	purpose = "legacyvm serve: " + purpose
	wait := e.LockWait
	if wait <= 0 {
		wait = 5 * time.Minute
	}
	waiting := func(kind, name, holder string) {
		what := name
		if kind != "VM" {
			what = kind + " " + name
		}
		hook.Event(event.Event{Time: time.Now().UTC(), Kind: event.KindHost, Object: what, Step: event.StepWait,
			Phase: event.Progress, Message: "waiting for the lock on " + what + " (" + holder + ")"})
	}
	s := e.open(p, purpose == "legacyvm serve: apply", hook)
	// The profile's lock on each of its hosts, then the VM locks of every
	// instance on each host it may live on; released after s is closed.
	locks, err := s.LockProfile(ctx, purpose, wait, waiting)
	if err != nil {
		s.Close()
		return nil, err
	}
	defer locks.Release()
	defer s.Close()
	hps, err := plan(s)
	out := hostPlans(hps)
	if err != nil {
		return out, err
	}
	var planned []*orchestrator.HostPlan
	for _, hp := range hps {
		if hp.Planned() {
			planned = append(planned, hp)
		}
	}
	// The VMs the plans delete that the profile no longer declares.
	extra, err := s.LockPlanned(ctx, planned, purpose, wait, waiting)
	if err != nil {
		return out, err
	}
	defer extra.Release()
	var errs []error
	for _, hp := range hps {
		if hp.Err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", hp.URI, hp.Err))
		}
	}
	for _, hp := range planned {
		if !hp.Plan.HasChanges() {
			continue
		}
		if _, err := s.Apply(ctx, hp); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", hp.URI, err))
		}
	}
	return out, errors.Join(errs...)
}

func hostPlans(hps []*orchestrator.HostPlan) []HostPlan {
	out := []HostPlan{}
	for _, hp := range hps {
		v := HostPlan{URI: hp.URI, Changes: []orchestrator.Change{}}
		if hp.Host != nil {
			v.Host = hp.Host.Name
		}
		if hp.Err != nil {
			v.Error = hp.Err.Error()
		}
		if hp.Plan != nil {
			for _, c := range hp.Plan.Changes {
				if c.Action != orchestrator.ActionNoop {
					v.Changes = append(v.Changes, c)
				}
			}
		}
		out = append(out, v)
	}
	return out
}
