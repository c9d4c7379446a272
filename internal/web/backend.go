package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/guestagent"
	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// Backend is everything the server asks of the engine. Today's
// implementation (EngineBackend) drives an orchestrator.Session on one host;
// the orchestrator's profile session replaces it in this file only.
// Every method is safe for concurrent use. VM names are libvirt domain
// names of VMs legacyvm manages; an unknown or unmanaged name is an error
// wrapping virt.ErrNotFound.
type Backend interface {
	// VMs lists every managed VM on the host, sorted by profile then name.
	VMs(ctx context.Context) ([]VM, error)
	// VM returns one managed VM.
	VM(ctx context.Context, name string) (VM, error)
	// Snapshots lists a VM's snapshots, parents before children.
	Snapshots(ctx context.Context, vm string) ([]Snapshot, error)
	// Reset reverts the VM to its baseline; Revert to the named snapshot.
	Reset(ctx context.Context, vm string, hook event.Hook) error
	Revert(ctx context.Context, vm, snapshot string, hook event.Hook) error
	// CreateSnapshot takes a snapshot (with memory when the VM runs).
	CreateSnapshot(ctx context.Context, vm, name string, hook event.Hook) error
	Start(ctx context.Context, vm string, hook event.Hook) error
	// Stop asks the guest to shut down and powers it off after a while.
	Stop(ctx context.Context, vm string, hook event.Hook) error
	// Screenshot returns a picture of the VM's display as the hypervisor
	// produced it (untrusted bytes).
	Screenshot(ctx context.Context, vm string) (virt.Screenshot, error)
	// OpenDisplay connects to the VM's VNC display.
	OpenDisplay(ctx context.Context, vm string) (net.Conn, error)
	// Exec runs argv in the running guest through its guest agent (the VM
	// needs guest_agent = true) and returns its exit code and output,
	// each stream bounded (the guest's output is untrusted).
	Exec(ctx context.Context, vm string, argv []string, timeout time.Duration, hook event.Hook) (ExecResult, error)
	// Watch delivers the host's domain lifecycle events (a guest that
	// powers itself off, a VM started elsewhere) as Note events until ctx
	// ends or the connection is lost (the channel is then closed).
	Watch(ctx context.Context) (<-chan event.Event, error)
}

// ExecResult is what a command run in a guest gave.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
}

// maxExecOutput bounds a command's stdout and stderr together: the guest
// is killed when it prints more.
const maxExecOutput = 1 << 20

// VM is a managed VM as the API shows it.
type VM struct {
	Name        string `json:"vm"`
	Profile     string `json:"profile"`
	State       string `json:"state"`
	Provisioned bool   `json:"provisioned"`
	// Address is the guest's IPv4 address (DHCP lease or reservation).
	Address string `json:"address,omitempty"`
	// License is the licence label (never the key).
	License   string `json:"license,omitempty"`
	Baseline  string `json:"baseline,omitempty"`
	Snapshots int    `json:"snapshots"`
	// Display is true when the VM has an active VNC display.
	Display bool `json:"display"`
	// BytesWritten is what the guest wrote to its disks since its QEMU
	// process started, which every reset does: after a reset, the bytes
	// written since the baseline. nil when the VM is not running.
	BytesWritten *int64 `json:"bytes_written"`
}

// Snapshot is one snapshot of a VM; Parent links make the tree.
type Snapshot struct {
	Name    string    `json:"name"`
	Parent  string    `json:"parent,omitempty"`
	Created time.Time `json:"created"`
	// Kind is "baseline", "auto" or "manual".
	Kind    string `json:"kind"`
	State   string `json:"state"`
	Memory  bool   `json:"memory"`
	Current bool   `json:"current"`
}

// EngineBackend drives an orchestrator.Session on one host connection.
type EngineBackend struct {
	HV  virt.Hypervisor
	URI string
	// Local is true when HV's connection is local (OpenGraphics works);
	// otherwise the display is dialled at its loopback VNC address.
	Local bool
	// LockWait bounds the wait for another command working on a VM.
	LockWait time.Duration
	// StopTimeout is how long Stop waits for the guest before powering
	// it off.
	StopTimeout time.Duration
	// Dial connects to a loopback VNC address (nil: net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// VMs implements Backend.
func (b *EngineBackend) VMs(ctx context.Context) ([]VM, error) {
	st, err := b.engine(nil).Status(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]VM, 0, len(st))
	for _, s := range st {
		v := VM{
			Name: s.Name, Profile: s.Profile, State: string(s.State), Provisioned: s.Provisioned,
			Address: s.IP, License: s.License, Baseline: s.Baseline, Snapshots: s.Snapshots, Display: s.VNC != "",
		}
		if s.State == virt.StateRunning || s.State == virt.StatePaused {
			// A VM that stopped meanwhile has no count: nil.
			if n, err := b.HV.DiskWrites(ctx, s.Name); err == nil {
				v.BytesWritten = &n
			} else if !errors.Is(err, virt.ErrInvalidState) && !errors.Is(err, virt.ErrNotFound) {
				return nil, err
			}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b VM) int {
		if a.Profile != b.Profile {
			return compare(a.Profile, b.Profile)
		}
		return compare(a.Name, b.Name)
	})
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// VM implements Backend.
func (b *EngineBackend) VM(ctx context.Context, name string) (VM, error) {
	vms, err := b.VMs(ctx)
	if err != nil {
		return VM{}, err
	}
	for _, v := range vms {
		if v.Name == name {
			return v, nil
		}
	}
	return VM{}, fmt.Errorf("VM %q: %w", name, virt.ErrNotFound)
}

// Snapshots implements Backend.
func (b *EngineBackend) Snapshots(ctx context.Context, vm string) ([]Snapshot, error) {
	ls, err := b.engine(nil).ListSnapshots(ctx, []string{vm})
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, l := range ls {
		for _, s := range l.Snapshots {
			out = append(out, Snapshot{Name: s.Name, Parent: s.Parent, Created: s.Created, Kind: string(s.Kind),
				State: string(s.State), Memory: s.Memory, Current: s.Current})
		}
	}
	return out, nil
}

// engine opens an orchestrator session on the host that reports its typed
// events on hook.
func (b *EngineBackend) engine(hook event.Hook) *orchestrator.Session {
	return orchestrator.OnHost(b.HV, b.URI, orchestrator.SessionOptions{Parallelism: 1, Hook: hook})
}

// locked runs fn holding the VM's lock (the one the CLI and the daemon
// take), reporting the operation's begin and end on hook.
func (b *EngineBackend) locked(ctx context.Context, vm, purpose string, step event.Step, hook event.Hook, fn func(*orchestrator.Session) error) error {
	if _, err := b.engine(nil).Managed(ctx, []string{vm}); err != nil {
		return notFound(vm, err)
	}
	start := time.Now()
	hook.Event(event.Event{Time: start.UTC(), Kind: event.KindVM, Object: vm, Step: step, Phase: event.Begin, Message: purpose})
	wait := b.LockWait
	if wait <= 0 {
		wait = time.Minute
	}
	l, err := lock.AcquireVM(ctx, b.URI, vm, "legacyvm serve: "+purpose, wait, func(holder string) {
		hook.Event(event.Event{Time: time.Now().UTC(), Kind: event.KindVM, Object: vm, Step: event.StepWait, Phase: event.Progress,
			Message: "waiting for the VM's lock (" + holder + ")"})
	})
	// The session ends each VM of a batch operation (reset, start, stop)
	// with its own StepOperation event; single-VM operations do not, and
	// a lock that was not taken is ours to report.
	var mu sync.Mutex
	finished := false
	watch := event.Func(func(e event.Event) {
		if e.Kind == event.KindVM && e.Object == vm && e.Step == event.StepOperation && (e.Phase == event.Done || e.Phase == event.Failed) {
			mu.Lock()
			finished = true
			mu.Unlock()
		}
		hook.Event(e)
	})
	if err == nil {
		err = fn(b.engine(watch))
		l.Release()
	}
	mu.Lock()
	defer mu.Unlock()
	if finished {
		return err
	}
	ev := event.Event{Time: time.Now().UTC(), Kind: event.KindVM, Object: vm, Step: event.StepOperation, Phase: event.Done,
		Message: purpose, Elapsed: time.Since(start)}
	if err != nil {
		ev.Phase, ev.Err = event.Failed, err
	}
	hook.Event(ev)
	return err
}

// notFound makes "not managed" and "outside the profile" read as missing:
// the API never says more about a VM the caller may not see.
func notFound(vm string, err error) error {
	if errors.Is(err, orchestrator.ErrNotManaged) || errors.Is(err, orchestrator.ErrOtherProfile) {
		return fmt.Errorf("VM %q: %w", vm, virt.ErrNotFound)
	}
	return err
}

func resultErr(res []orchestrator.Result) error {
	for _, r := range res {
		if r.Err != "" {
			return errors.New(r.Err)
		}
	}
	return nil
}

// Reset implements Backend.
func (b *EngineBackend) Reset(ctx context.Context, vm string, hook event.Hook) error {
	return b.locked(ctx, vm, "reset", event.StepRevert, hook, func(e *orchestrator.Session) error {
		rs, err := e.Reset(ctx, []string{vm}, "")
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Err != "" {
				return errors.New(r.Err)
			}
		}
		return nil
	})
}

// Revert implements Backend.
func (b *EngineBackend) Revert(ctx context.Context, vm, snapshot string, hook event.Hook) error {
	return b.locked(ctx, vm, "revert to "+snapshot, event.StepRevert, hook, func(e *orchestrator.Session) error {
		_, err := e.RevertSnapshot(ctx, vm, snapshot)
		return err
	})
}

// CreateSnapshot implements Backend.
func (b *EngineBackend) CreateSnapshot(ctx context.Context, vm, name string, hook event.Hook) error {
	return b.locked(ctx, vm, "snapshot "+name, event.StepSnapshot, hook, func(e *orchestrator.Session) error {
		_, err := e.CreateSnapshot(ctx, vm, name, true, "taken from the web console")
		return err
	})
}

// Start implements Backend.
func (b *EngineBackend) Start(ctx context.Context, vm string, hook event.Hook) error {
	return b.locked(ctx, vm, "start", event.StepStart, hook, func(e *orchestrator.Session) error {
		return resultErr(e.Start(ctx, []string{vm}))
	})
}

// Stop implements Backend.
func (b *EngineBackend) Stop(ctx context.Context, vm string, hook event.Hook) error {
	timeout := b.StopTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	return b.locked(ctx, vm, "stop", event.StepStop, hook, func(e *orchestrator.Session) error {
		return resultErr(e.Stop(ctx, []string{vm}, timeout, false, false))
	})
}

// Screenshot implements Backend.
func (b *EngineBackend) Screenshot(ctx context.Context, vm string) (virt.Screenshot, error) {
	if _, err := b.engine(nil).Managed(ctx, []string{vm}); err != nil {
		return virt.Screenshot{}, notFound(vm, err)
	}
	return b.HV.Screenshot(ctx, vm)
}

// OpenDisplay implements Backend: libvirt's display socket on a local
// connection, or the VM's loopback VNC port when libvirt cannot hand one
// over (legacyvm's domains listen on 127.0.0.1 only; any other address is
// refused). A remote host's loopback is not this machine's: there the
// console needs legacyvm serve on the libvirt host itself.
func (b *EngineBackend) OpenDisplay(ctx context.Context, vm string) (net.Conn, error) {
	ds, err := b.engine(nil).Managed(ctx, []string{vm})
	if err != nil {
		return nil, notFound(vm, err)
	}
	if !b.Local {
		return nil, fmt.Errorf("open the display of %q: %w: the libvirt connection %s is remote; run legacyvm serve on that host", vm, virt.ErrUnsupported, b.URI)
	}
	c, err := b.HV.OpenGraphics(ctx, vm)
	if err == nil || !errors.Is(err, virt.ErrUnsupported) {
		return c, err
	}
	addr := ds[0].VNC
	if addr == "" {
		return nil, fmt.Errorf("open the display of %q: %w: it has no active VNC display", vm, virt.ErrInvalidState)
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("open the display of %q: VNC listens on %q, not on loopback: refused", vm, addr)
	}
	dial := b.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	return dial(ctx, "tcp", addr)
}

// Watch implements Backend with the hypervisor's lifecycle events.
func (b *EngineBackend) Watch(ctx context.Context) (<-chan event.Event, error) {
	in, err := b.HV.Events(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan event.Event, 64)
	go func() {
		defer close(out)
		for ev := range in {
			step := event.StepWait
			switch ev.Kind {
			case virt.EventStarted, virt.EventResumed:
				step = event.StepStart
			case virt.EventStopped, virt.EventShutdown, virt.EventCrashed:
				step = event.StepStop
			case virt.EventDefined, virt.EventUndefined:
				step = event.StepDefine
			}
			msg := string(ev.Kind)
			if ev.Detail != "" {
				msg += " (" + ev.Detail + ")"
			}
			e := event.Event{Time: ev.Time.UTC(), Kind: event.KindVM, Object: ev.Domain, Step: step, Phase: event.Note, Message: msg}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Exec implements Backend with the guest agent client legacyvm exec uses.
func (b *EngineBackend) Exec(ctx context.Context, vm string, argv []string, timeout time.Duration, hook event.Hook) (ExecResult, error) {
	ds, err := b.engine(nil).Managed(ctx, []string{vm})
	if err != nil {
		return ExecResult{}, notFound(vm, err)
	}
	start := time.Now()
	hook.Event(event.Event{Time: start.UTC(), Kind: event.KindVM, Object: vm, Step: event.StepExec, Phase: event.Begin, Message: "exec " + argv[0]})
	res, err := func() (ExecResult, error) {
		d := ds[0]
		if !d.GuestAgent {
			return ExecResult{}, fmt.Errorf("%s has no guest agent channel (guest_agent = true in its vm block): %w", vm, virt.ErrUnsupported)
		}
		if d.State != virt.StateRunning {
			return ExecResult{}, fmt.Errorf("%s is %s: %w", vm, d.State, virt.ErrInvalidState)
		}
		c := guestagent.New(b.HV, vm)
		fl, err := guestagent.DetectFlavor(ctx, c)
		if err != nil {
			return ExecResult{}, fmt.Errorf("%s: %w", vm, err)
		}
		var out, errb bytes.Buffer
		code, err := c.Run(ctx, fl, guestagent.RunOptions{Argv: argv, Timeout: timeout, MaxOutput: maxExecOutput, Stdout: &out, Stderr: &errb})
		return ExecResult{ExitCode: code, Stdout: out.String(), Stderr: errb.String()}, err
	}()
	ev := event.Event{Time: time.Now().UTC(), Kind: event.KindVM, Object: vm, Step: event.StepOperation, Phase: event.Done,
		Message: fmt.Sprintf("exec %s: exit code %d", argv[0], res.ExitCode), Elapsed: time.Since(start)}
	if err != nil {
		ev.Phase, ev.Err, ev.Message = event.Failed, err, "exec "+argv[0]
	}
	hook.Event(ev)
	return res, err
}
