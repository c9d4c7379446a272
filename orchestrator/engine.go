package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// engine executes plans and lifecycle operations on one host.
type engine struct {
	HV virt.Hypervisor
	// Parallelism bounds how many VMs are worked on at once (>= 1).
	Parallelism int
	// Hook receives the engine's events (steps on objects, with timing and
	// errors, and each object's final StepOperation Done or Failed); it
	// must be safe for concurrent use. nil discards.
	Hook event.Hook
	// Host labels the events with the host's libvirt URI ("" = the only
	// host).
	Host string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Getenv reads environment variables for secret sources (nil: os).
	Getenv func(string) (string, bool)
	// Fingerprint computes the keyed fingerprint of a product key and the
	// id of the secret that made it. nil records no fingerprint (tests).
	Fingerprint FingerprintFunc
	// PollInterval is how often waits poll the host (default 500ms).
	PollInterval time.Duration
	// SetupTimeout bounds the wait for a specialize pass to power the guest
	// off (installs use their own timeout); default 30 minutes.
	SetupTimeout time.Duration
	// ReportInterval is how often long waits report progress (and stop
	// presses the power button again); default 10 seconds.
	ReportInterval time.Duration

	// undoPause is the pause between attempts of a failed undo (tests;
	// 0: half a second).
	undoPause time.Duration
	// Profile, when set, scopes commands that take VM names to that
	// profile's VMs: a named VM of another profile is an error, and "all
	// VMs" means all VMs of this profile.
	Profile string
}

func (e *engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// emit sends ev to the hook, stamped with the time and host.
func (e *engine) emit(ev event.Event) {
	if e.Hook == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.Host == "" {
		ev.Host = e.Host
	}
	e.Hook.Event(ev)
}

// begin reports that step starts on an object, with a sentence saying
// what it does.
func (e *engine) begin(k event.Kind, object string, step event.Step, format string, a ...any) {
	e.emit(event.Event{Kind: k, Object: object, Step: step, Phase: event.Begin, Message: fmt.Sprintf(format, a...)})
}

// going reports how far a running step is.
func (e *engine) going(k event.Kind, object string, step event.Step, elapsed time.Duration, format string, a ...any) {
	e.emit(event.Event{Kind: k, Object: object, Step: step, Phase: event.Progress, Elapsed: elapsed, Message: fmt.Sprintf(format, a...)})
}

// stepDone reports that a step finished (with what came of it).
func (e *engine) stepDone(k event.Kind, object string, step event.Step, elapsed time.Duration, format string, a ...any) {
	e.emit(event.Event{Kind: k, Object: object, Step: step, Phase: event.Done, Elapsed: elapsed, Message: fmt.Sprintf(format, a...)})
}

// note reports something worth knowing that is not a step.
func (e *engine) note(k event.Kind, object string, step event.Step, format string, a ...any) {
	e.emit(event.Event{Kind: k, Object: object, Step: step, Phase: event.Note, Message: fmt.Sprintf(format, a...)})
}

// finish reports the end of the whole operation on an object: Done, or
// Failed with err. Front ends stop the object's clock on it.
func (e *engine) finish(k event.Kind, object string, start time.Time, err error) {
	ev := event.Event{Kind: k, Object: object, Step: event.StepOperation, Phase: event.Done, Elapsed: time.Since(start)}
	if err != nil {
		ev.Phase, ev.Err = event.Failed, err
	}
	e.emit(ev)
}

func (e *engine) parallelism() int {
	if e.Parallelism < 1 {
		return 1
	}
	return e.Parallelism
}

func (e *engine) poll() time.Duration {
	if e.PollInterval <= 0 {
		return 500 * time.Millisecond
	}
	return e.PollInterval
}

// waitState polls until the domain reaches one of the states or timeout.
// report, when set, is called every ~10s with the time waited so far.
func (e *engine) waitState(ctx context.Context, name string, timeout time.Duration, report func(time.Duration), want ...virt.DomainState) (virt.DomainState, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	lastReport := start
	for {
		d, err := e.HV.GetDomain(ctx, name)
		if err != nil {
			return "", err
		}
		for _, w := range want {
			if d.State == w {
				return d.State, nil
			}
		}
		if time.Now().After(deadline) {
			return d.State, fmt.Errorf("domain %q is %s after %s, expected %v", name, d.State, timeout.Round(time.Second), want)
		}
		every := e.ReportInterval
		if every <= 0 {
			every = 10 * time.Second
		}
		if report != nil && time.Since(lastReport) >= every {
			report(time.Since(start))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return d.State, ctx.Err()
		case <-time.After(e.poll()):
		}
	}
}
