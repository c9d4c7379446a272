package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Engine executes plans and lifecycle operations on one host.
type Engine struct {
	HV virt.Hypervisor
	// Parallelism bounds how many VMs are worked on at once (>= 1).
	Parallelism int
	// Progress receives one line per step; it must be safe for concurrent
	// use. nil discards.
	Progress func(object, message string)
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
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) progress(object, format string, a ...any) {
	if e.Progress != nil {
		e.Progress(object, fmt.Sprintf(format, a...))
	}
}

func (e *Engine) parallelism() int {
	if e.Parallelism < 1 {
		return 1
	}
	return e.Parallelism
}

func (e *Engine) poll() time.Duration {
	if e.PollInterval <= 0 {
		return 500 * time.Millisecond
	}
	return e.PollInterval
}

// waitState polls until the domain reaches one of the states or timeout.
// report, when set, is called every ~10s with the time waited so far.
func (e *Engine) waitState(ctx context.Context, name string, timeout time.Duration, report func(time.Duration), want ...virt.DomainState) (virt.DomainState, error) {
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
