package orchestrator

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

const revertProfile = `
snapshot_policy "tester" {
  memory      = %MEMORY%
  on_shutdown = "revert"
}
vm "t" {
  os     = "win7-x64"
  memory = "2GiB"
  disk {
    image   = "/images/golden.qcow2"
    prepare = "none"
  }
  snapshot_policy = snapshot_policy.tester
}
`

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDaemonRevertsOnGuestShutdownAndSurvivesReconnect(t *testing.T) {
	for _, memory := range []string{"true", "false"} {
		t.Run("memory="+memory, func(t *testing.T) {
			h := newFakeHost(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := loadProfile(t, "testers", revertProfile, "%MEMORY%", memory)
			apply(t, plan(t, p, h))
			d, _ := h.GetDomain(ctx, "t")
			disk := d.Disks[0].Path
			gen0, _ := h.DiskGeneration(disk)

			var logs syncBuffer
			connects := 0
			var cmu sync.Mutex
			dm := &Daemon{
				Connect: func(ctx context.Context) (virt.Hypervisor, error) {
					cmu.Lock()
					connects++
					cmu.Unlock()
					return nopClose{h}, nil
				},
				Tick:         time.Hour,
				Log:          slog.New(slog.NewTextHandler(&logs, nil)),
				ReconnectMax: 10 * time.Millisecond,
			}
			done := make(chan error, 1)
			go func() { done <- dm.Run(ctx) }()
			waitFor(t, "daemon connected", func() bool { return strings.Contains(logs.String(), "connected to libvirt") })

			// The tester's guest writes to its disk, then shuts itself down.
			if err := h.WriteDisk("t"); err != nil {
				t.Fatal(err)
			}
			if g, _ := h.DiskGeneration(disk); g == gen0 {
				t.Fatal("WriteDisk did not change the disk")
			}
			if err := h.GuestPowerOff("t"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "revert logged", func() bool { return strings.Contains(logs.String(), "reverted to baseline") })
			d, _ = h.GetDomain(ctx, "t")
			if d.State != virt.StateRunning {
				t.Errorf("after revert the VM is %s, want running", d.State)
			}
			if g, _ := h.DiskGeneration(disk); g != gen0 {
				t.Errorf("disk generation %d after revert, want %d", g, gen0)
			}

			// libvirtd "restarts": the event stream closes, the daemon
			// reconnects and still reverts.
			h.Disconnect()
			h.Reconnect()
			waitFor(t, "reconnect", func() bool { cmu.Lock(); defer cmu.Unlock(); return connects >= 2 })
			waitFor(t, "connected again", func() bool { return strings.Count(logs.String(), "connected to libvirt") >= 2 })
			_ = h.WriteDisk("t")
			if err := h.GuestPowerOff("t"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "second revert", func() bool { return strings.Count(logs.String(), "reverted to baseline") >= 2 })
			if g, _ := h.DiskGeneration(disk); g != gen0 {
				t.Errorf("disk generation %d after second revert, want %d", g, gen0)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon returned %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("daemon did not stop")
			}
		})
	}
}

func TestDaemonIgnoresKeepPolicyAndForeignShutdowns(t *testing.T) {
	h := newFakeHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := strings.Replace(revertProfile, `on_shutdown = "revert"`, `on_shutdown = "keep"`, 1)
	apply(t, plan(t, loadProfile(t, "keepers", src, "%MEMORY%", "false"), h))
	var logs syncBuffer
	dm := &Daemon{Connect: func(ctx context.Context) (virt.Hypervisor, error) { return nopClose{h}, nil }, Tick: time.Hour, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	go func() { _ = dm.Run(ctx) }()
	waitFor(t, "daemon connected", func() bool { return strings.Contains(logs.String(), "connected to libvirt") })
	if err := h.GuestPowerOff("t"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	d, _ := h.GetDomain(ctx, "t")
	if d.State != virt.StateShutoff || strings.Contains(logs.String(), "reverted") {
		t.Errorf("keep policy VM was touched: state %s, logs %s", d.State, logs.String())
	}
}

// A busy domain (another job holds its lock) is retried, not skipped.
func TestRunDueRetriesBusyDomain(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	src := strings.Replace(revertProfile, "on_shutdown", "schedule = \"*/5 * * * *\"\n  on_shutdown", 1)
	apply(t, plan(t, loadProfile(t, "busy", src, "%MEMORY%", "true"), h))
	h.FailTimes("CreateSnapshot", "t", 2, virt.ErrBusy)
	e := &engine{HV: h}
	now := time.Now().UTC().Add(time.Hour).Truncate(5 * time.Minute)
	res, err := e.RunDue(ctx, nil, now, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Err != "" || res[0].Created == "" {
		t.Fatalf("tick result %+v", res)
	}
	_ = fake.New
}

// legacyvm stop of a revert-on-shutdown VM is not taken for the guest's
// own shutdown; after a start, the guest's own shutdown reverts again.
func TestDaemonLeavesRequestedStopsAlone(t *testing.T) {
	h := newFakeHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	apply(t, plan(t, loadProfile(t, "stoppers", revertProfile, "%MEMORY%", "false"), h))
	var logs syncBuffer
	dm := &Daemon{Connect: func(ctx context.Context) (virt.Hypervisor, error) { return nopClose{h}, nil }, Tick: time.Hour, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	go func() { _ = dm.Run(ctx) }()
	waitFor(t, "daemon connected", func() bool { return strings.Contains(logs.String(), "connected to libvirt") })

	e := &engine{HV: h, PollInterval: time.Millisecond}
	if r := e.Stop(ctx, []string{"t"}, 5*time.Second, false, true); r[0].Err != "" {
		t.Fatalf("stop: %s", r[0].Err)
	}
	waitFor(t, "skip logged", func() bool { return strings.Contains(logs.String(), "not reverting") })
	if d, _ := h.GetDomain(ctx, "t"); d.State != virt.StateShutoff {
		t.Fatalf("stopped VM is %s, want shutoff", d.State)
	}
	if r := e.Start(ctx, []string{"t"}); r[0].Err != "" {
		t.Fatalf("start: %s", r[0].Err)
	}
	if d, _ := h.GetDomain(ctx, "t"); d.Metadata.StopRequested != nil {
		t.Fatal("start did not clear the stop request")
	}
	if err := h.GuestPowerOff("t"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revert after the guest's own shutdown", func() bool { return strings.Contains(logs.String(), "reverted to baseline") })
}

// A memory baseline waits for settle after the VM starts.
func TestMemoryBaselineSettles(t *testing.T) {
	h := newFakeHost(t)
	src := strings.Replace(revertProfile, `on_shutdown = "revert"`, `settle      = "1s"`, 1)
	p := loadProfile(t, "settlers", src, "%MEMORY%", "true")
	hp := plan(t, p, h)
	var mu sync.Mutex
	var lines []string
	e := &engine{HV: h, PollInterval: time.Millisecond, Hook: event.Func(func(ev event.Event) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, ev.Message)
	})}
	start := time.Now()
	if _, err := e.Apply(context.Background(), hp.Plan); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second {
		t.Errorf("apply took %s, less than the settle time", time.Since(start))
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "settle for 1s before its memory baseline") {
		t.Errorf("no settle step in progress:\n%s", all)
	}
	snaps, _ := h.ListSnapshots(context.Background(), "t")
	if len(snaps) != 1 || !snapmeta.Classify(snaps[0], "clean").Memory {
		t.Errorf("baseline %+v, want one memory baseline", snaps)
	}
}
