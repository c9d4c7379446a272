package snapshots

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/lock"
)

// TestVMLockExcludesResetSnapshotApply: while something holds a VM's lock
// (here the test itself, as another legacyvm command would), reset,
// snapshot create and apply of that VM refuse with --lock-wait 0 naming
// the holder and change nothing; a reset that waits goes on as soon as the
// lock is released. Against the real libvirtd.
func TestVMLockExcludesResetSnapshotApply(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "lockx", `
snapshot_policy "clean" {
  baseline = "clean"
}
`, vmBlock(h, "lockx", 1, "clean"))
	apply(t, h, dir)
	before := names(snapsOf(t, h, "lockx"))

	ctx := context.Background()
	l, err := lock.AcquireVMIn(ctx, h.LockDir, h.URI, "lockx", "test holder", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	holder := fmt.Sprintf("held by pid %d: test holder", os.Getpid())
	for _, args := range [][]string{
		{"reset", "--lock-wait", "0", "lockx"},
		{"snapshot", "create", "--lock-wait", "0", "lockx", "during-lock"},
		{"snapshot", "revert", "--lock-wait", "0", "lockx", "clean"},
		{"stop", "--lock-wait", "0", "lockx"},
		{"apply", "--auto-approve", "--lock-wait", "0", dir},
	} {
		r := h.Run(t, args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "VM lockx on "+h.URI+" is locked by another legacyvm command") || !strings.Contains(r.Stderr, holder) {
			t.Errorf("%s while the VM lock is held: want exit 1 naming the holder\n%s", args[0], r)
		}
		if strings.Contains(r.Stdout, "reverted") {
			t.Errorf("%s worked without the lock:\n%s", args[0], r)
		}
	}
	if got := names(snapsOf(t, h, "lockx")); strings.Join(got, " ") != strings.Join(before, " ") {
		t.Errorf("snapshots changed while the lock was held: %v, before %v", got, before)
	}
	if st := domState(t, h, "lockx"); st != "running" {
		t.Errorf("the VM is %q, want it left running", st)
	}

	// A reset that may wait says so, then runs once the lock is free.
	cmd, stdout, stderr := h.Start(t, nil, "reset", "--lock-wait", "5m", "lockx")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "waiting for the lock on VM lockx (pid ") {
		if time.Now().After(deadline) {
			t.Fatalf("the waiting reset never said it waits:\n%s", stderr)
		}
		select {
		case err := <-done:
			t.Fatalf("reset ended while the lock was held: %v\n%s\n%s", err, stdout, stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if strings.Contains(stdout.String(), "reverted") {
		t.Fatalf("reset reverted while the lock was held:\n%s", stdout)
	}
	l.Release()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(stdout.String(), "lockx: reverted to clean") {
			t.Fatalf("reset after the release: %v\n%s\n%s", err, stdout, stderr)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("reset did not finish after the lock was released")
	}
}
