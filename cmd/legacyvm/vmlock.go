package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// defaultVMLockWait is how long commands wait for another command working
// on the same VM (a reset, a snapshot, an apply) before giving up.
const defaultVMLockWait = 5 * time.Minute

// addLockWaitFlag adds --lock-wait to a command that takes VM locks.
func addLockWaitFlag(cmd *cobra.Command, wait *time.Duration) {
	cmd.Flags().DurationVar(wait, "lock-wait", defaultVMLockWait, "how long to wait for another command working on the same VM")
}

// lockVMs takes the VM locks of names on uri, in lock.VMOrder,
// telling the user when another command holds one. A command holding a
// profile lock takes it before these.
func (f *Factory) lockVMs(ctx context.Context, uri string, names []string, purpose string, wait time.Duration) (profileLocks, error) {
	var locks profileLocks
	for _, n := range lock.VMOrder(names) {
		l, err := lock.AcquireVM(ctx, uri, n, purpose, wait, func(holder string) {
			f.IO.Status("waiting for the lock on VM %s (%s)...", n, holder)
		})
		if err != nil {
			locks.Release()
			return nil, err
		}
		locks = append(locks, l)
	}
	return locks, nil
}

// lockNamedOrAll locks the VMs named, or every managed VM on the engine's
// host when names is empty, and returns the names locked (the set the
// command must work on, so that a VM created meanwhile is left alone).
// The locks are taken on the command's scope host (--profile's, else
// --connect's).
func (f *Factory) lockNamedOrAll(ctx context.Context, profilePath string, e *orchestrator.Session, names []string, purpose string, wait time.Duration) ([]string, profileLocks, error) {
	sc, err := f.resolveScope(profilePath)
	if err != nil {
		return nil, nil, err
	}
	return f.lockNamedOrAllOn(ctx, sc.URI, e, names, purpose, wait)
}

// lockNamedOrAllOn is lockNamedOrAll for the host at uri (e's host).
func (f *Factory) lockNamedOrAllOn(ctx context.Context, uri string, e *orchestrator.Session, names []string, purpose string, wait time.Duration) ([]string, profileLocks, error) {
	if len(names) == 0 {
		all, err := e.ManagedVMs(ctx)
		if err != nil {
			return nil, nil, err
		}
		if len(all) == 0 {
			return nil, nil, nil
		}
		names = all
	}
	locks, err := f.lockVMs(ctx, uri, names, purpose, wait)
	return names, locks, err
}

// lockProfile takes the locks apply and destroy hold (the profile's on
// each host, then its instances' VM locks: orchestrator
// Session.LockProfile), telling the user when another command holds one.
// It locks through a session of its own, without progress, so that the
// command's session (and its progress clock) starts after the wait.
func (f *Factory) lockProfile(ctx context.Context, p *profiles.Profile, purpose string, wait time.Duration) (*orchestrator.Locks, error) {
	s := orchestrator.Open(p, orchestrator.SessionOptions{Plan: f.planOptions()})
	defer s.Close()
	return s.LockProfile(ctx, purpose, wait, f.lockWaiting)
}

// lockWaiting tells the user that a lock is busy (the waiting callback of
// Session.LockProfile and LockPlanned).
func (f *Factory) lockWaiting(kind, name, holder string) {
	f.IO.Status("waiting for the lock on %s %s (%s)...", kind, name, holder)
}
