package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/profiles"
)

// apply and destroy take the profile's lock, then its VMs' locks
// (orchestrator Session.LockProfile): while another command holds one,
// they say whose it is, wait --lock-wait, and fail without changing
// anything; once it is free they run.
func TestApplyAndDestroyWaitForProfileAndVMLocks(t *testing.T) {
	w := newFakeWorld(t)
	ctx := context.Background()
	dir := filepath.Join(w.dir, "locks")
	t.Setenv(lock.DirEnv, dir) // w.run sets it too, but the test locks first
	hold := func(take func() (*lock.Lock, error)) *lock.Lock {
		t.Helper()
		l, err := take()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	uri := profiles.DefaultURI
	for _, c := range []struct {
		name string
		take func() (*lock.Lock, error)
		want string
	}{
		{"profile", func() (*lock.Lock, error) {
			return lock.Acquire(ctx, "single-vm", uri, "another apply", 0, nil)
		}, "waiting for the lock on profile single-vm (pid "},
		{"VM", func() (*lock.Lock, error) {
			return lock.AcquireVM(ctx, uri, "legacy-app", "a reset by someone else", 0, nil)
		}, "waiting for the lock on VM legacy-app (pid "},
	} {
		l := hold(c.take)
		r := w.run(cliOpts{}, "apply", "--auto-approve", "--lock-wait", "300ms", "examples/single-vm")
		l.Release()
		if r.code == 0 || !strings.Contains(r.err, c.want) || !strings.Contains(r.err, "is locked by another legacyvm command") {
			t.Errorf("apply while the %s lock is held: exit %d, stderr:\n%s", c.name, r.code, r.err)
		}
		if doms, _ := w.h.ListDomains(ctx); len(doms) != 0 {
			t.Errorf("apply blocked by the %s lock created %d domains", c.name, len(doms))
		}
	}
	if r := w.run(cliOpts{}, "apply", "--auto-approve", "examples/single-vm"); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s", r.code, r.err)
	}
	l := hold(func() (*lock.Lock, error) {
		return lock.AcquireVM(ctx, uri, "legacy-app", "a snapshot by someone else", 0, nil)
	})
	r := w.run(cliOpts{}, "destroy", "--auto-approve", "--lock-wait", "300ms", "examples/single-vm")
	l.Release()
	if r.code == 0 || !strings.Contains(r.err, "waiting for the lock on VM legacy-app (pid ") {
		t.Errorf("destroy while the VM lock is held: exit %d, stderr:\n%s", r.code, r.err)
	}
	if doms, _ := w.h.ListDomains(ctx); len(doms) != 1 {
		t.Errorf("a blocked destroy left %d domains, want 1", len(doms))
	}
	if r := w.run(cliOpts{}, "destroy", "--auto-approve", "examples/single-vm"); r.code != 0 {
		t.Fatalf("destroy: exit %d\n%s", r.code, r.err)
	}
}
