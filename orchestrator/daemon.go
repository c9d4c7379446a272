package orchestrator

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Daemon runs snapshot schedules and reacts to guests shutting down. It
// keeps no state of its own: policies, baselines and schedules are read from
// libvirt at every tick, so it can be restarted (or run on another machine)
// at any time.
type Daemon struct {
	// Connect opens the hypervisor; called again after the connection is
	// lost (libvirtd restarted).
	Connect func(ctx context.Context) (virt.Hypervisor, error)
	// Tick is the scheduler period (default one minute).
	Tick time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	Log *slog.Logger
	// Parallelism bounds concurrent VM work per tick.
	Parallelism int
	// ReconnectMax caps the reconnect backoff (default 30s).
	ReconnectMax time.Duration
	// CatchUpAfter is how long a tick must have seen a VM off by a guest
	// shutdown nobody handled before it reverts it (default 30s; see
	// missedGuestShutdown): apply leaves a VM it provisions in that state
	// for a moment (marked provisioned, its baseline being taken, not yet
	// started).
	CatchUpAfter time.Duration

	locks sync.Map // VM name -> *sync.Mutex
	// suspects are VMs a tick saw off by a guest shutdown nobody handled,
	// with when it first saw them (real time).
	suspects sync.Map // VM name -> time.Time
}

func (d *Daemon) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Daemon) lock(vm string) func() {
	m, _ := d.locks.LoadOrStore(vm, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Run serves until ctx ends (SIGTERM). It returns nil on a clean stop.
func (d *Daemon) Run(ctx context.Context) error {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	tick := d.Tick
	if tick <= 0 {
		tick = time.Minute
	}
	maxWait := d.ReconnectMax
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	wait := time.Second
	for {
		if ctx.Err() != nil {
			d.Log.Info("daemon stopped")
			return nil
		}
		hv, err := d.Connect(ctx)
		if err != nil {
			d.Log.Warn("cannot connect to libvirt; retrying", "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				continue
			case <-time.After(wait):
			}
			wait = min(wait*2, maxWait)
			continue
		}
		wait = time.Second
		d.Log.Info("connected to libvirt")
		err = d.serve(ctx, hv, tick)
		_ = hv.Close()
		if ctx.Err() != nil {
			continue
		}
		d.Log.Warn("lost the libvirt connection; reconnecting", "err", err)
	}
}

// serve runs ticks and handles events on one connection until it is lost
// (the events channel closes) or ctx ends.
func (d *Daemon) serve(ctx context.Context, hv virt.Hypervisor, tick time.Duration) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := hv.Events(sctx)
	if err != nil {
		return err
	}
	e := &Engine{HV: hv, Parallelism: max(d.Parallelism, 1), Now: d.Now}
	var wg sync.WaitGroup
	defer wg.Wait()
	d.tick(sctx, e)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.tick(sctx, e)
		case ev, ok := <-events:
			if !ok {
				return errors.New("event stream closed")
			}
			if ev.Kind == virt.EventStopped && ev.Detail == "shutdown" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d.onGuestShutdown(sctx, e, ev.Domain)
				}()
			}
		}
	}
}

// tick runs one scheduler pass: every managed VM with a policy, each under
// its VM lock. A VM whose guest shut down while no event reached the daemon
// (it was not running, or disconnected from libvirtd) is reverted first
// (missedGuestShutdown); the first tick runs right after every connect.
func (d *Daemon) tick(ctx context.Context, e *Engine) {
	now := d.now().Truncate(time.Minute)
	doms, err := e.selectManaged(ctx, nil)
	if err != nil {
		d.Log.Error("tick: list domains", "err", err)
		return
	}
	var names []string
	for _, dom := range doms {
		if dom.Metadata.Policy != nil && dom.Metadata.Provisioned {
			names = append(names, dom.Name)
		}
	}
	e.forEach(ctx, names, "tick", func(ctx context.Context, name string) error {
		unlock := d.lock(name)
		defer unlock()
		dom, err := e.HV.GetDomain(ctx, name)
		if err != nil {
			d.Log.Error("tick", "vm", name, "err", err)
			return err
		}
		if d.confirmMissedShutdown(dom) {
			d.revertToBaseline(ctx, e, dom, true)
			if dom, err = e.HV.GetDomain(ctx, name); err != nil {
				d.Log.Error("tick", "vm", name, "err", err)
				return err
			}
		}
		r := e.tickVM(ctx, dom, now, false, true)
		switch {
		case r.Err != "":
			d.Log.Error("snapshot tick failed", "vm", name, "policy", r.Policy, "err", r.Err)
		case r.Created != "" || len(r.Pruned) > 0:
			d.Log.Info("snapshot tick", "vm", name, "policy", r.Policy, "created", r.Created, "pruned", r.Pruned)
		}
		return nil
	})
}

// stopRequestWindow is how long after `legacyvm stop` a shutdown counts as
// requested rather than the guest's own (start clears the request anyway;
// this covers VMs started by other tools).
const stopRequestWindow = time.Hour

// missedGuestShutdown reports whether dom is a provisioned VM with
// on_shutdown = "revert" that is shut off because its guest shut down
// (libvirt's shutoff reason: not destroyed, not left off by a revert) with
// no stop request recorded: a guest shutdown whose event the daemon never
// handled. Any recorded stop request counts here, however old (start
// clears it): a VM someone stopped stays off. libvirt forgets the reason
// when libvirtd restarts (it reads unknown), so a guest that shut down
// just before a libvirtd restart is not recognised and stays off.
func missedGuestShutdown(dom virt.Domain) bool {
	m := dom.Metadata
	return m != nil && m.Provisioned && m.Policy != nil && m.Policy.OnShutdown == "revert" &&
		dom.State == virt.StateShutoff && dom.StopReason == virt.StopShutdown && m.StopRequested == nil
}

// confirmMissedShutdown reports whether the tick should revert dom: it is
// in the missedGuestShutdown state and an earlier tick, at least
// CatchUpAfter ago, saw it so too. The first sighting only records it: a
// VM that apply is provisioning is in that state for a moment (its setup
// pass powered it off; it is marked provisioned before its baseline is
// taken and started after).
func (d *Daemon) confirmMissedShutdown(dom virt.Domain) bool {
	if !missedGuestShutdown(dom) {
		d.suspects.Delete(dom.Name)
		return false
	}
	after := d.CatchUpAfter
	if after <= 0 {
		after = 30 * time.Second
	}
	first, seen := d.suspects.LoadOrStore(dom.Name, time.Now())
	if !seen {
		d.Log.Debug("guest shut down while nobody listened: reverting at a later tick unless it starts meanwhile", "vm", dom.Name, "after", after)
		return false
	}
	if time.Since(first.(time.Time)) < after {
		return false
	}
	d.suspects.Delete(dom.Name)
	return true
}

// onGuestShutdown reverts a VM whose policy says on_shutdown = "revert"
// to its baseline after the guest powered itself off, and starts it again
// when the baseline was taken with the VM off.
func (d *Daemon) onGuestShutdown(ctx context.Context, e *Engine, name string) {
	unlock := d.lock(name)
	defer unlock()
	dom, err := e.HV.GetDomain(ctx, name)
	// A VM apply is still provisioning powers off on purpose (setup);
	// apply takes the baseline and starts it itself.
	if err != nil || dom.Metadata == nil || dom.Metadata.Policy == nil || !dom.Metadata.Provisioned {
		return
	}
	p := dom.Metadata.Policy
	if p.OnShutdown != "revert" {
		return
	}
	if sr := dom.Metadata.StopRequested; sr != nil && d.now().Sub(*sr) < stopRequestWindow {
		d.Log.Info("shutdown requested with legacyvm stop: not reverting", "vm", name, "requested", sr.Format(time.RFC3339))
		return
	}
	// The tick may have caught this shutdown up already (the event was
	// queued while it ran): only a VM still off from its guest shutdown
	// is reverted.
	if dom.State != virt.StateShutoff || dom.StopReason != virt.StopShutdown {
		return
	}
	d.revertToBaseline(ctx, e, dom, false)
}

// revertToBaseline reverts dom to its policy's baseline and starts it when
// the baseline left it off; the caller holds the VM lock. caughtUp says
// that a tick found the shutdown, not its event: the daemon was not
// listening then (or the tick came first; the event then finds the VM
// running and does nothing).
func (d *Daemon) revertToBaseline(ctx context.Context, e *Engine, dom virt.Domain, caughtUp bool) {
	name, p := dom.Name, dom.Metadata.Policy
	start := time.Now()
	state, err := e.RevertSnapshot(ctx, name, p.Baseline)
	if err != nil {
		d.Log.Error("revert on shutdown failed", "vm", name, "baseline", p.Baseline, "err", err)
		return
	}
	if state == virt.StateShutoff {
		if err := e.ensureRunning(ctx, name); err != nil {
			d.Log.Error("start after revert failed", "vm", name, "err", err)
			return
		}
	}
	d.Log.Info("guest shut down: reverted to baseline", "vm", name, "baseline", p.Baseline, "took", time.Since(start).Round(time.Millisecond), "caught_up", caughtUp)
}
