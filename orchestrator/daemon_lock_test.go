package orchestrator

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// TestDaemonTakesVMLock: the daemon takes the VM lock other commands take
// before it reverts a VM; while a command holds it the daemon leaves the
// VM alone (and says so), and once it is free the daemon works again.
func TestDaemonTakesVMLock(t *testing.T) {
	h := newFakeHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := loadProfile(t, "testers", revertProfile, "%MEMORY%", "false")
	apply(t, plan(t, p, h))
	d, _ := h.GetDomain(ctx, "t")
	disk := d.Disks[0].Path
	gen0, _ := h.DiskGeneration(disk)

	lockDir := filepath.Join(t.TempDir(), "locks")
	const uri = "test:///fake"
	held, err := lock.AcquireVMIn(ctx, lockDir, uri, "t", "reset", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	dm := &Daemon{
		Connect: func(ctx context.Context) (virt.Hypervisor, error) { return nopClose{h}, nil },
		Tick:    time.Hour,
		Log:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		LockVM: func(ctx context.Context, vm string) (func(), error) {
			l, err := lock.AcquireVMIn(ctx, lockDir, uri, vm, "daemon", 0, nil)
			if err != nil {
				return nil, err
			}
			return l.Release, nil
		},
	}
	done := make(chan error, 1)
	go func() { done <- dm.Run(ctx) }()
	waitFor(t, "daemon connected", func() bool { return strings.Contains(logs.String(), "connected to libvirt") })

	if err := h.WriteDisk("t"); err != nil {
		t.Fatal(err)
	}
	if err := h.GuestPowerOff("t"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "busy logged", func() bool { return strings.Contains(logs.String(), "VM busy with another command") })
	if strings.Contains(logs.String(), "reverted to baseline") {
		t.Fatalf("the daemon reverted a VM whose lock another command holds:\n%s", logs.String())
	}
	if g, _ := h.DiskGeneration(disk); g == gen0 {
		t.Errorf("the disk was reverted while the lock was held")
	}

	held.Release()
	if err := h.StartDomain(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := h.GuestPowerOff("t"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revert after release", func() bool { return strings.Contains(logs.String(), "reverted to baseline") })
	if g, _ := h.DiskGeneration(disk); g != gen0 {
		t.Errorf("disk generation %d after revert, want %d", g, gen0)
	}
	cancel()
	<-done
}
