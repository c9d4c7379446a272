package orchestrator

import (
	"context"
	"sort"
	"time"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/profiles"
)

// Locks are the locks a profile session took (LockProfile, LockPlanned)
// so that two commands on this machine (apply, destroy, a reset, a
// snapshot, the daemon, the web console) never work on the same profile
// or VM at once. Release drops them; a nil *Locks holds nothing.
type Locks struct {
	held []*lock.Lock
}

// Release drops every lock, the last taken first (a profile's VM locks
// before its profile locks).
func (ls *Locks) Release() {
	if ls == nil {
		return
	}
	for i := len(ls.held) - 1; i >= 0; i-- {
		ls.held[i].Release()
	}
	ls.held = nil
}

// locker takes locks for one purpose, waiting up to wait for each and
// calling waiting (when set) once per busy lock with what kind of lock
// it is ("profile" or "VM"), its name and what its holder recorded.
type locker struct {
	purpose string
	wait    time.Duration
	waiting func(kind, name, holder string)
	Locks
}

func (k *locker) tell(kind, name string) func(string) {
	if k.waiting == nil {
		return nil
	}
	return func(holder string) { k.waiting(kind, name, holder) }
}

// vms takes the VM locks of names on uri, in lock.VMOrder.
func (k *locker) vms(ctx context.Context, uri string, names []string) error {
	for _, n := range lock.VMOrder(names) {
		l, err := lock.AcquireVM(ctx, uri, n, k.purpose, k.wait, k.tell("VM", n))
		if err != nil {
			return err
		}
		k.held = append(k.held, l)
	}
	return nil
}

// done returns the locks taken, or releases them all and returns err.
func (k *locker) done(err error) (*Locks, error) {
	if err != nil {
		k.Release()
		return nil, err
	}
	return &Locks{held: k.held}, nil
}

// LockProfile takes the locks apply and destroy hold while they plan and
// change the profile: the profile's lock on every host it uses, in URI
// order (so that two commands never wait on each other crosswise), then
// the VM lock of every instance on each host it may live on (hosts in
// lock.VMOrder, VMs in lock.VMOrder on each), which keeps a reset, a
// snapshot or the daemon off the profile's VMs. Each lock waits up to
// wait (0: does not wait); waiting, when set, is told once per busy lock
// (kind "profile" or "VM", the profile's or VM's name, and what the
// holder recorded). On failure nothing stays locked.
//
// LockPlanned then takes, after planning, the VM locks of the VMs the
// plans delete that are no longer instances of the profile (their locks
// were not taken before planning), host after host in hps' order; hosts
// without a plan are skipped.
func (s *Session) LockProfile(ctx context.Context, purpose string, wait time.Duration, waiting func(kind, name, holder string)) (*Locks, error) {
	if s.profile == nil {
		return nil, errNoProfile
	}
	p := s.profile
	k := &locker{purpose: purpose, wait: wait, waiting: waiting}
	seen := map[string]bool{}
	var uris []string
	for _, h := range p.Hosts {
		if u := s.o.Plan.HostURI(h); !seen[u] {
			seen[u] = true
			uris = append(uris, u)
		}
	}
	sort.Strings(uris)
	for _, u := range uris {
		l, err := lock.Acquire(ctx, p.Name, u, purpose, wait, k.tell("profile", p.Name))
		if err != nil {
			return k.done(err)
		}
		k.held = append(k.held, l)
	}
	byURI := map[string][]string{}
	uris = nil
	for _, in := range p.Instances {
		for _, u := range s.instanceURIs(in) {
			if _, ok := byURI[u]; !ok {
				uris = append(uris, u)
			}
			byURI[u] = append(byURI[u], in.Name)
		}
	}
	for _, u := range lock.VMOrder(uris) {
		if err := k.vms(ctx, u, byURI[u]); err != nil {
			return k.done(err)
		}
	}
	return k.done(nil)
}

// LockPlanned: see LockProfile.
func (s *Session) LockPlanned(ctx context.Context, hps []*HostPlan, purpose string, wait time.Duration, waiting func(kind, name, holder string)) (*Locks, error) {
	if s.profile == nil {
		return nil, errNoProfile
	}
	inProfile := map[string]bool{}
	for _, in := range s.profile.Instances {
		for _, u := range s.instanceURIs(in) {
			inProfile[u+"\x00"+in.Name] = true
		}
	}
	k := &locker{purpose: purpose, wait: wait, waiting: waiting}
	for _, hp := range hps {
		if !hp.Planned() {
			continue
		}
		var extra []string
		for _, c := range hp.Plan.Changes {
			if c.Kind == KindVM && !inProfile[hp.URI+"\x00"+c.Name] {
				extra = append(extra, c.Name)
			}
		}
		if err := k.vms(ctx, hp.URI, extra); err != nil {
			return k.done(err)
		}
	}
	return k.done(nil)
}

// instanceURIs are the hosts an instance may live on before placement
// runs: its vm's host, or every candidate host of a placed vm (its VM
// lock is taken on each, so that whichever holds it is covered).
func (s *Session) instanceURIs(in *profiles.Instance) []string {
	if in.VM.Placement == profiles.PlacementFixed || len(in.VM.Candidates) == 0 {
		return []string{s.o.Plan.HostURI(in.VM.Host)}
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range in.VM.Candidates {
		if u := s.o.Plan.HostURI(h); !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}
