package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// Errors of commands on one VM, to be tested with errors.Is.
var (
	// ErrNotManaged is returned for domains without legacyvm metadata:
	// they are never started, stopped or changed.
	ErrNotManaged = errors.New("not managed by legacyvm")
	// ErrOtherProfile is returned for a VM that another profile manages
	// when a command is scoped to a profile (--profile).
	ErrOtherProfile = errors.New("outside the profile")
)

// managedDomain looks a domain up and checks that legacyvm owns it.
func (e *engine) managedDomain(ctx context.Context, name string) (virt.Domain, error) {
	d, err := e.HV.GetDomain(ctx, name)
	if err != nil {
		return d, err
	}
	if d.Metadata == nil {
		return d, fmt.Errorf("domain %q: %w", name, ErrNotManaged)
	}
	if e.Profile != "" && d.Metadata.Profile != e.Profile {
		return d, fmt.Errorf("domain %q belongs to profile %s, not %s: %w", name, d.Metadata.Profile, e.Profile, ErrOtherProfile)
	}
	return d, nil
}

// Managed lists the managed domains names refers to, sorted by name; no
// names means every managed domain (of Profile, when set). An unknown or
// unmanaged name is an error.
func (e *engine) Managed(ctx context.Context, names []string) ([]virt.Domain, error) {
	return e.selectManaged(ctx, names)
}

// forEach runs fn for each name with bounded parallelism and collects a
// result per name, in input order.
func (e *engine) forEach(ctx context.Context, names []string, action Action, fn func(ctx context.Context, name string) error) []Result {
	res := make([]Result, len(names))
	var g errgroup.Group
	g.SetLimit(e.parallelism())
	for i, name := range names {
		i, name := i, name
		g.Go(func() error {
			start := time.Now()
			r := Result{Object: name, Kind: KindVM, Action: action}
			if err := ctx.Err(); err != nil {
				r.Err = err.Error()
			} else if err := fn(ctx, name); err != nil {
				r.Err = err.Error()
			}
			r.Took = time.Since(start)
			var err error
			if r.Err != "" {
				err = errors.New(r.Err)
			}
			e.finish(event.KindVM, name, start, err)
			res[i] = r
			return nil
		})
	}
	_ = g.Wait()
	return res
}

// Start starts managed VMs and waits until they run.
func (e *engine) Start(ctx context.Context, names []string) []Result {
	return e.forEach(ctx, names, "start", func(ctx context.Context, name string) error {
		d, err := e.managedDomain(ctx, name)
		if err != nil {
			return err
		}
		if d.State == virt.StateRunning {
			e.note(event.KindVM, name, event.StepStart, "already running")
			return nil
		}
		if d.State == virt.StatePaused {
			return fmt.Errorf("domain %q is paused; resume it with virsh resume %s", name, name)
		}
		return e.ensureRunning(ctx, name)
	})
}

// Stop asks each guest to shut down (ACPI power button) and waits up to
// timeout; guests still running then are powered off, unless noForce.
// force skips the polite request.
func (e *engine) Stop(ctx context.Context, names []string, timeout time.Duration, force, noForce bool) []Result {
	return e.forEach(ctx, names, "stop", func(ctx context.Context, name string) error {
		d, err := e.managedDomain(ctx, name)
		if err != nil {
			return err
		}
		if d.State == virt.StateShutoff {
			e.note(event.KindVM, name, event.StepStop, "already shut off")
			return nil
		}
		if !force {
			// Record that this shutdown is ours, so the daemon does not
			// take it for the guest's own and revert (on_shutdown).
			md := *d.Metadata
			now := e.now()
			md.StopRequested = &now
			if err := e.HV.SetMetadata(ctx, name, &md); err != nil {
				return err
			}
			e.begin(event.KindVM, name, event.StepStop, "asking the guest to shut down (up to %s)", timeout)
			if err := e.HV.ShutdownDomain(ctx, name); err != nil && !errors.Is(err, virt.ErrInvalidState) {
				return err
			}
			_, err := e.waitState(ctx, name, timeout, func(w time.Duration) {
				// A guest that was still booting (or busy) may have missed
				// the power button: press it again, as a person would.
				e.going(event.KindVM, name, event.StepStop, w, "still running after %s; asking again", w.Round(time.Second))
				_ = e.HV.ShutdownDomain(ctx, name)
			}, virt.StateShutoff)
			if err == nil {
				return nil
			}
			if noForce || ctx.Err() != nil {
				return err
			}
			e.begin(event.KindVM, name, event.StepStop, "guest did not shut down in %s; powering off", timeout)
		}
		if err := e.HV.DestroyDomain(ctx, name); err != nil && !errors.Is(err, virt.ErrInvalidState) {
			return err
		}
		_, err = e.waitState(ctx, name, 30*time.Second, nil, virt.StateShutoff)
		return err
	})
}
