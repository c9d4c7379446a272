package orchestrator

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/relay"
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
	// Hook receives the events of the work the daemon does (scheduled
	// snapshots, reverts); nil discards.
	Hook event.Hook
	Log  *slog.Logger
	// Parallelism bounds concurrent VM work per tick.
	Parallelism int
	// ReconnectMax caps the reconnect backoff (default 30s).
	ReconnectMax time.Duration
	// LockVM, when set, takes the VM lock other legacyvm commands take
	// (lock.AcquireVM) without waiting; the daemon leaves a VM that another
	// command works on to a later tick.
	LockVM func(ctx context.Context, vm string) (release func(), err error)
	// VerifyEvery is how often isolation is verified and repaired live
	// (enforceIsolation); <= 0 means DefaultVerifyEvery.
	VerifyEvery time.Duration
	// URI and System are what verify reports on and reads host conditions
	// from.
	URI    string
	System hostcheck.System
	// Relay, when set, carries the doors recorded in libvirt: they are
	// read again at every tick and isolation check.
	Relay *relay.Relay
	// StatePath, when set, is where the daemon publishes its state
	// (DaemonState) for verify, status and plan.
	StatePath string

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

	mu         sync.Mutex
	doorProbs  []string
	lastVerify *daemonstate.VerifySummary
	repairs    uint64
	vmStats    map[string]vmStat
	resets     map[string]time.Time
}

// vmStat is what the daemon last saw of one managed VM (metrics).
type vmStat struct {
	profile   string
	snapshots int
	newest    time.Time
}

func (d *Daemon) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

// lock takes the VM's lock within the daemon and, with LockVM, against
// other commands; ok is false (and nothing is held) when another command
// holds it.
func (d *Daemon) lock(ctx context.Context, vm string) (unlock func(), ok bool) {
	m, _ := d.locks.LoadOrStore(vm, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	if d.LockVM == nil {
		return mu.Unlock, true
	}
	release, err := d.LockVM(ctx, vm)
	if err != nil {
		mu.Unlock()
		// Debug: during an apply the setup shutdowns of its VMs arrive
		// here every time, and are none of the daemon's business.
		d.Log.Debug("VM busy with another command: left for a later tick", "vm", vm, "err", err)
		return nil, false
	}
	return func() { release(); mu.Unlock() }, true
}

// stateEvery is how often the daemon's state file is rewritten between
// ticks (door counters).
const stateEvery = 5 * time.Second

// DefaultVerifyEvery is the daemon's isolation check period.
const DefaultVerifyEvery = 5 * time.Minute

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
	unhealthy := false
	for {
		if ctx.Err() != nil {
			if d.Relay != nil {
				d.Relay.Close()
			}
			if d.StatePath != "" {
				_ = os.Remove(d.StatePath)
			}
			d.Log.Info("daemon stopped")
			return nil
		}
		hv, err := d.Connect(ctx)
		if err != nil {
			// The first failure marks the host unhealthy (health=unhealthy);
			// retries say so again only in their level.
			if !unhealthy {
				unhealthy = true
				d.Log.Error("cannot connect to libvirt; retrying", "health", "unhealthy", "err", err, "retry_in", wait)
			} else {
				d.Log.Warn("cannot connect to libvirt; retrying", "err", err, "retry_in", wait)
			}
			select {
			case <-ctx.Done():
				continue
			case <-time.After(wait):
			}
			wait = min(wait*2, maxWait)
			continue
		}
		wait = time.Second
		if unhealthy {
			unhealthy = false
			d.Log.Info("host healthy again", "health", "healthy")
		}
		d.Log.Info("connected to libvirt")
		err = d.serve(ctx, hv, tick)
		_ = hv.Close()
		if ctx.Err() != nil {
			continue
		}
		unhealthy = true
		d.Log.Warn("lost the libvirt connection; reconnecting", "health", "unhealthy", "err", err)
	}
}

// RunDaemons serves several hosts at once, one Daemon each (with its own
// connection, keepalive, events and reconnect backoff): a host that goes
// away is reported unhealthy and retried while the others go on being
// served. It returns when ctx ends and every daemon has stopped.
func RunDaemons(ctx context.Context, ds []*Daemon) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
	e := OnHost(hv, d.URI, SessionOptions{Parallelism: max(d.Parallelism, 1), Now: d.Now, Hook: d.Hook})
	var wg sync.WaitGroup
	defer wg.Wait()
	d.tick(sctx, e)
	d.enforce(sctx, hv)
	t := time.NewTicker(tick)
	defer t.Stop()
	every := d.VerifyEvery
	if every <= 0 {
		every = DefaultVerifyEvery
	}
	vt := time.NewTicker(every)
	defer vt.Stop()
	// The relay's counters change with every connection: the state file
	// follows them closely.
	st := time.NewTicker(stateEvery)
	defer st.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-st.C:
			d.writeState()
		case <-vt.C:
			d.enforce(sctx, hv)
		case <-t.C:
			d.tick(sctx, e)
		case ev, ok := <-events:
			if !ok {
				return errors.New("event stream closed")
			}
			if ev.Detail == "from-snapshot" {
				d.noteReset(ev.Domain, ev.Time)
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

// enforce verifies isolation and repairs what it can live, logging each
// repair and each failure it cannot repair.
func (d *Daemon) enforce(ctx context.Context, hv virt.Hypervisor) {
	res, err := enforceIsolation(ctx, hv, VerifyOptions{URI: d.URI, System: d.System,
		DaemonState: func() (*daemonstate.State, error) { return d.State(), nil }})
	if err != nil {
		d.Log.Error("verify isolation", "err", err)
		return
	}
	for _, r := range res.Repaired {
		vm, mac, _ := strings.Cut(r, " ")
		d.Log.Warn("traffic filter was not bound: bound it again, live", "vm", vm, "mac", mac)
	}
	for _, u := range res.Unrepaired {
		d.Log.Error("isolation check failed; cannot repair it live", "finding", u)
	}
	d.Log.Info("isolation verified", "ok", res.Verification.OK, "vms", len(res.Verification.VMs), "repaired", len(res.Repaired), "unrepaired", len(res.Unrepaired))
	sum := &daemonstate.VerifySummary{At: res.At, OK: res.Verification.OK, VMs: len(res.Verification.VMs),
		Repaired: res.Repaired, Unrepaired: res.Unrepaired, Isolated: map[string]bool{}}
	for _, vm := range res.Verification.VMs {
		sum.Isolated[vm.Name] = vm.OK
	}
	d.mu.Lock()
	d.lastVerify = sum
	d.repairs += uint64(len(res.Repaired))
	d.mu.Unlock()
	d.syncDoors(ctx, hv)
}

// noteReset records when a VM was last reverted to a snapshot.
func (d *Daemon) noteReset(vm string, at time.Time) {
	if at.IsZero() {
		at = d.now()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.resets == nil {
		d.resets = map[string]time.Time{}
	}
	d.resets[vm] = at
}

// syncDoors gives the relay the doors libvirt records and publishes the
// daemon's state.
func (d *Daemon) syncDoors(ctx context.Context, hv virt.Hypervisor) {
	if d.Relay != nil {
		doors, probs, err := hostDoors(ctx, hv)
		if err != nil {
			d.Log.Error("read doors", "err", err)
		} else {
			for _, p := range probs {
				d.Log.Warn("door cannot be relayed", "problem", p)
			}
			d.Relay.Sync(doors)
			d.mu.Lock()
			d.doorProbs = probs
			d.mu.Unlock()
		}
	}
	d.writeState()
}

// collectVMStats reads every managed VM's snapshots (metrics).
func (d *Daemon) collectVMStats(ctx context.Context, hv virt.Hypervisor, doms []virt.Domain) {
	stats := map[string]vmStat{}
	for _, dom := range doms {
		if ctx.Err() != nil {
			return
		}
		st := vmStat{profile: dom.Metadata.Profile}
		snaps, err := hv.ListSnapshots(ctx, dom.Name)
		if err != nil {
			continue
		}
		st.snapshots = len(snaps)
		for _, s := range snaps {
			if s.Created.After(st.newest) {
				st.newest = s.Created
			}
		}
		stats[dom.Name] = st
	}
	d.mu.Lock()
	d.vmStats = stats
	d.mu.Unlock()
}

// State returns what the daemon publishes (see daemonstate.State).
func (d *Daemon) State() *daemonstate.State {
	st := &daemonstate.State{PID: os.Getpid(), URI: d.URI, Updated: d.now(), Doors: []relay.DoorStatus{}}
	if d.Relay != nil {
		st.Doors = d.Relay.Status()
	}
	d.mu.Lock()
	st.DoorProblems = append([]string(nil), d.doorProbs...)
	st.LastVerify = d.lastVerify
	d.mu.Unlock()
	return st
}

func (d *Daemon) writeState() {
	if d.StatePath == "" {
		return
	}
	if err := daemonstate.Write(d.StatePath, d.State()); err != nil {
		d.Log.Warn("publish daemon state", "err", err)
	}
}

// tick runs one scheduler pass: every managed VM with a policy, each under
// its VM lock. A VM whose guest shut down while no event reached the daemon
// (it was not running, or disconnected from libvirtd) is reverted first
// (missedGuestShutdown); the first tick runs right after every connect.
func (d *Daemon) tick(ctx context.Context, e *Session) {
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
		unlock, ok := d.lock(ctx, name)
		if !ok {
			return nil
		}
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
	d.collectVMStats(ctx, e.HV, doms)
	d.syncDoors(ctx, e.HV)
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
func (d *Daemon) onGuestShutdown(ctx context.Context, e *Session, name string) {
	unlock, ok := d.lock(ctx, name)
	if !ok {
		return
	}
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
func (d *Daemon) revertToBaseline(ctx context.Context, e *Session, dom virt.Domain, caughtUp bool) {
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
