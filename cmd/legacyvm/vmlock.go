package main

import (
	"context"
	"fmt"
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

// lockProfileVMs takes the VM locks of every instance of the profile on its
// host, after the profile lock: apply and destroy exclude a reset, a
// snapshot or the daemon working on one of their VMs.
func (f *Factory) lockProfileVMs(ctx context.Context, p *profiles.Profile, purpose string, wait time.Duration) (profileLocks, error) {
	byURI := map[string][]string{}
	var uris []string
	for _, in := range p.Instances {
		for _, u := range f.instanceURIs(in) {
			if _, ok := byURI[u]; !ok {
				uris = append(uris, u)
			}
			byURI[u] = append(byURI[u], in.Name)
		}
	}
	var all profileLocks
	for _, u := range lock.VMOrder(uris) {
		ls, err := f.lockVMs(ctx, u, byURI[u], purpose, wait)
		if err != nil {
			all.Release()
			return nil, err
		}
		all = append(all, ls...)
	}
	return all, nil
}

// lockPlannedVMs takes the VM locks of VMs a plan deletes that are no
// longer instances of the profile (their locks were not taken before
// planning).
func (f *Factory) lockPlannedVMs(ctx context.Context, p *profiles.Profile, hps []*orchestrator.HostPlan, purpose string, wait time.Duration) (profileLocks, error) {
	inProfile := map[string]bool{}
	for _, in := range p.Instances {
		for _, u := range f.instanceURIs(in) {
			inProfile[u+"\x00"+in.Name] = true
		}
	}
	var all profileLocks
	for _, hp := range hps {
		var extra []string
		for _, c := range hp.Plan.Changes {
			if c.Kind == orchestrator.KindVM && !inProfile[hp.URI+"\x00"+c.Name] {
				extra = append(extra, c.Name)
			}
		}
		ls, err := f.lockVMs(ctx, hp.URI, extra, purpose, wait)
		if err != nil {
			all.Release()
			return nil, fmt.Errorf("%w", err)
		}
		all = append(all, ls...)
	}
	return all, nil
}

// instanceURIs are the hosts an instance may live on, before placement
// runs: its vm's host, or every candidate host of a placed vm (its VM lock
// is taken on each, so that whichever holds it is covered).
func (f *Factory) instanceURIs(in *profiles.Instance) []string {
	if in.VM.Placement == profiles.PlacementFixed || len(in.VM.Candidates) == 0 {
		return []string{f.planOptions().HostURI(in.VM.Host)}
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range in.VM.Candidates {
		u := f.planOptions().HostURI(h)
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}
