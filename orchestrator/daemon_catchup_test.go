package orchestrator

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// A guest that shuts down while the daemon is not running (or not
// connected) is reverted when the daemon connects: the event was never
// seen, so the first tick finds the VM off by its guest's shutdown.
func TestDaemonRevertsGuestShutdownsItMissed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newFakeHost(t)
	apply(t, plan(t, loadProfile(t, "catchup", revertProfile, "%MEMORY%", "false"), h))
	d, _ := h.GetDomain(ctx, "t")
	disk := d.Disks[0].Path
	gen0, _ := h.DiskGeneration(disk)

	// No daemon: the guest writes and shuts itself down.
	if err := h.WriteDisk("t"); err != nil {
		t.Fatal(err)
	}
	if err := h.GuestPowerOff("t"); err != nil {
		t.Fatal(err)
	}
	if d, _ := h.GetDomain(ctx, "t"); d.State != virt.StateShutoff || d.StopReason != virt.StopShutdown {
		t.Fatalf("after the guest's shutdown: %s (%s)", d.State, d.StopReason)
	}

	var logs syncBuffer
	dm := &Daemon{Connect: func(ctx context.Context) (virt.Hypervisor, error) { return nopClose{h}, nil }, Tick: 20 * time.Millisecond, CatchUpAfter: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	go func() { _ = dm.Run(ctx) }()
	waitFor(t, "missed shutdown reverted on connect", func() bool {
		return strings.Contains(logs.String(), `msg="guest shut down: reverted to baseline" vm=t baseline=clean`) && strings.Contains(logs.String(), "caught_up=true")
	})
	d, _ = h.GetDomain(ctx, "t")
	if d.State != virt.StateRunning {
		t.Errorf("after the catch-up the VM is %s, want running", d.State)
	}
	if g, _ := h.DiskGeneration(disk); g != gen0 {
		t.Errorf("disk generation %d after the catch-up, want the baseline's %d", g, gen0)
	}
	if n := strings.Count(logs.String(), "reverted to baseline"); n != 1 {
		t.Errorf("%d reverts logged, want 1:\n%s", n, logs.String())
	}
}

// Every tick catches up too, and leaves alone what is off on purpose:
// legacyvm stop (a recorded request, however old), a forced stop
// (destroyed), and a VM left off by a revert.
func TestTickCatchUpOnlyRevertsGuestShutdowns(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		stop   func(t *testing.T, h interface{ GuestPowerOff(string) error }, e *engine)
		revert bool
	}{
		{"guest shutdown", func(t *testing.T, h interface{ GuestPowerOff(string) error }, e *engine) {
			if err := h.GuestPowerOff("t"); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"legacyvm stop", func(t *testing.T, h interface{ GuestPowerOff(string) error }, e *engine) {
			if r := e.Stop(ctx, []string{"t"}, 5*time.Second, false, true); r[0].Err != "" {
				t.Fatal(r[0].Err)
			}
		}, false},
		{"forced stop", func(t *testing.T, h interface{ GuestPowerOff(string) error }, e *engine) {
			if err := e.HV.DestroyDomain(ctx, "t"); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newFakeHost(t)
			apply(t, plan(t, loadProfile(t, "catchup", revertProfile, "%MEMORY%", "false"), h))
			e := &Session{engine: &engine{HV: h, Parallelism: 1, PollInterval: time.Millisecond}}
			c.stop(t, h, e.engine)
			var logs syncBuffer
			dm := &Daemon{Log: slog.New(slog.NewTextHandler(&logs, nil)), CatchUpAfter: time.Millisecond}
			// Long after a stop request: still not taken for the guest's.
			dm.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
			dm.tick(ctx, e) // first sighting
			time.Sleep(5 * time.Millisecond)
			dm.tick(ctx, e)
			d, _ := h.GetDomain(ctx, "t")
			reverted := strings.Contains(logs.String(), "reverted to baseline")
			if reverted != c.revert || (d.State == virt.StateRunning) != c.revert {
				t.Fatalf("after a tick: reverted %v, state %s (%s); want reverted %v\n%s", reverted, d.State, d.StopReason, c.revert, logs.String())
			}
			// A second tick does nothing more.
			dm.tick(ctx, e)
			if n := strings.Count(logs.String(), "reverted to baseline"); n > 1 {
				t.Fatalf("%d reverts after two ticks", n)
			}
		})
	}
}

// apply provisions a VM in steps: its setup pass powers it off, it is
// marked provisioned, its baseline is taken and only then is it started. A
// tick in between sees a provisioned VM off by a guest shutdown: it must
// not revert it (the first sighting only records it), and once the VM
// runs, it is forgotten.
func TestTickCatchUpWaitsForASecondSighting(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	apply(t, plan(t, loadProfile(t, "catchup", revertProfile, "%MEMORY%", "false"), h))
	e := &Session{engine: &engine{HV: h, Parallelism: 1, PollInterval: time.Millisecond}}
	if err := h.GuestPowerOff("t"); err != nil { // as the setup pass does
		t.Fatal(err)
	}
	var logs syncBuffer
	dm := &Daemon{Log: slog.New(slog.NewTextHandler(&logs, nil)), CatchUpAfter: time.Millisecond}
	dm.tick(ctx, e)
	if strings.Contains(logs.String(), "reverted to baseline") {
		t.Fatalf("the first tick reverted a VM apply may be starting:\n%s", logs.String())
	}
	if err := h.StartDomain(ctx, "t"); err != nil { // apply starts it
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	dm.tick(ctx, e)
	if err := h.GuestPowerOff("t"); err != nil { // much later, the guest's own shutdown
		t.Fatal(err)
	}
	dm.tick(ctx, e)
	if strings.Contains(logs.String(), "reverted to baseline") {
		t.Fatalf("a sighting from before the VM ran counted:\n%s", logs.String())
	}
	time.Sleep(5 * time.Millisecond)
	dm.tick(ctx, e)
	if !strings.Contains(logs.String(), "caught_up=true") {
		t.Fatalf("the second sighting did not revert:\n%s", logs.String())
	}
	if d, _ := h.GetDomain(ctx, "t"); d.State != virt.StateRunning {
		t.Errorf("after the catch-up the VM is %s", d.State)
	}
}
