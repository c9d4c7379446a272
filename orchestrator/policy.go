package orchestrator

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// autoSnapshotPrefix starts the name of every scheduled snapshot:
// auto-<policy>-<UTC timestamp>.
const autoSnapshotPrefix = "auto-"

// autoTimeFormat is the UTC timestamp in scheduled snapshot names; it sorts
// like time.
const autoTimeFormat = "20060102T150405Z"

// autoSnapshotName names a scheduled snapshot of policy taken at t.
func autoSnapshotName(policy string, t time.Time) string {
	return autoSnapshotPrefix + policy + "-" + t.UTC().Format(autoTimeFormat)
}

// vmSchedule is a policy schedule resolved for one VM: the @ aliases are
// turned into a fixed minute (and hour, weekday, day) derived from the VM's
// identity, so a fleet with @daily does not snapshot at the same second,
// and the same VM always snapshots at the same time.
type vmSchedule struct {
	// Spec is the cron expression after jitter ("17 3 * * *").
	Spec  string
	sched cron.Schedule
}

// Next is the first scheduled instant strictly after t, reading the
// schedule in the host's local time (as documented) whatever t's location
// (metadata times are UTC; the cron library would use UTC for them). The
// zero time means never.
func (s vmSchedule) Next(t time.Time) time.Time { return s.sched.Next(t.In(time.Local)) }

// resolveSchedule applies the per-VM jitter to expr (within the default
// window) and parses it with the profile language's parser. An empty expr
// has no schedule (ok false).
func resolveSchedule(expr, vmKey string) (vmSchedule, bool, error) {
	return resolveScheduleWindow(expr, "", vmKey)
}

// resolveScheduleWindow is resolveSchedule with the policy's window: the
// time of day that @daily, @weekly and @monthly pick for a VM falls in
// window ("01:00-05:00", host local time; empty: profiles.DefaultWindow).
// @hourly jitters the minute only; cron expressions are used as written.
func resolveScheduleWindow(expr, window, vmKey string) (vmSchedule, bool, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return vmSchedule{}, false, nil
	}
	if window == "" {
		window = profiles.DefaultWindow
	}
	start, length, err := profiles.ParseWindow(window)
	if err != nil {
		return vmSchedule{}, false, fmt.Errorf("schedule %q: %w", expr, err)
	}
	h := fnv.New64a()
	h.Write([]byte(vmKey))
	v := h.Sum64()
	tod := (start + int(v%uint64(length))) % 1440
	minute, hour, wday, mday := uint64(tod%60), uint64(tod/60), (v/1440)%7, 1+(v/10080)%28
	if expr == "@hourly" {
		minute = v % 60
	}
	spec := expr
	switch expr {
	case "@hourly":
		spec = fmt.Sprintf("%d * * * *", minute)
	case "@daily", "@midnight":
		spec = fmt.Sprintf("%d %d * * *", minute, hour)
	case "@weekly":
		spec = fmt.Sprintf("%d %d * * %d", minute, hour, wday)
	case "@monthly":
		spec = fmt.Sprintf("%d %d %d * *", minute, hour, mday)
	}
	s, err := profiles.ParseSchedule(spec)
	if err != nil {
		return vmSchedule{}, false, fmt.Errorf("schedule %q: %w", expr, err)
	}
	return vmSchedule{Spec: spec, sched: s}, true, nil
}

// policyExpiry is when retention of p removes the scheduled snapshot s:
// its scheduled instant plus p's current max_age. ok is false when s is
// not one of p's scheduled snapshots or p has no max_age. The expiry
// recorded in the snapshot's description at creation is deliberately not
// used: a max_age removed, shortened or lengthened later applies to the
// snapshots that exist.
func policyExpiry(p *virt.PolicyRef, s snapmeta.Info) (time.Time, bool) {
	if p == nil || s.Kind != snapmeta.Auto || s.Policy != p.Name {
		return time.Time{}, false
	}
	age := policyMaxAge(p)
	if age <= 0 {
		return time.Time{}, false
	}
	return scheduledAt(s).Add(age).UTC(), true
}

// withPolicyExpiry sets each snapshot's Expires from p (policyExpiry):
// nil for snapshots the current policy does not expire.
func withPolicyExpiry(infos []snapmeta.Info, p *virt.PolicyRef) []snapmeta.Info {
	for i := range infos {
		if infos[i].Kind != snapmeta.Auto {
			continue
		}
		infos[i].Expires = nil
		if exp, ok := policyExpiry(p, infos[i]); ok {
			infos[i].Expires = &exp
		}
	}
	return infos
}

// scheduledAt is the instant the scheduler took a snapshot for: the UTC
// time in the name of a scheduled snapshot (auto-<policy>-<UTC>, from the
// scheduler's clock), else libvirt's creation time. Schedules and
// retention order snapshots by it, so they follow the clock that made them
// (run-due --now, a client whose clock differs from the host's) and are not
// confused by snapshots created within the same second.
func scheduledAt(s snapmeta.Info) time.Time {
	if s.Kind == snapmeta.Auto && s.Policy != "" {
		if ts, ok := strings.CutPrefix(s.Name, autoSnapshotPrefix+s.Policy+"-"); ok {
			if t, err := time.Parse(autoTimeFormat, ts); err == nil {
				return t
			}
		}
	}
	return s.Created
}

// dueSnapshot says whether a VM's policy wants a scheduled snapshot at
// now: the first scheduled instant after the newest scheduled snapshot of
// the policy (or after the VM was provisioned, if none) has passed. Missed
// instants (a daemon that was down) are caught up once, not repeatedly.
func dueSnapshot(s vmSchedule, policy string, created time.Time, snaps []snapmeta.Info, now time.Time) bool {
	ref := created
	for _, sn := range snaps {
		if at := scheduledAt(sn); sn.Kind == snapmeta.Auto && sn.Policy == policy && at.After(ref) {
			ref = at
		}
	}
	next := s.Next(ref)
	// The cron library answers the zero time for an instant that never
	// comes; never treat that as due (it would fire on every tick).
	return !next.IsZero() && !next.After(now)
}

// retention lists the scheduled snapshots of policy that retention
// removes at now: those past their expiry under p's current max_age
// (policyExpiry, not the expiry recorded at creation) and those beyond the
// newest keep. room reserves places for snapshots about to be taken
// (room = 1 lists what retention removes once the due snapshot exists).
// The baseline and manual snapshots are never listed. The result is
// oldest first.
func retention(p *virt.PolicyRef, snaps []snapmeta.Info, now time.Time, room int) []snapmeta.Info {
	var autos []snapmeta.Info
	for _, s := range snaps {
		if s.Kind == snapmeta.Auto && s.Policy == p.Name && s.Name != p.Baseline {
			autos = append(autos, s)
		}
	}
	// Newest first.
	sort.SliceStable(autos, func(i, j int) bool { return scheduledAt(autos[i]).After(scheduledAt(autos[j])) })
	keep := p.Keep - room
	if keep < 0 {
		keep = 0
	}
	var out []snapmeta.Info
	kept := 0
	for _, s := range autos {
		exp, ok := policyExpiry(p, s)
		expired := ok && !exp.After(now)
		if expired || kept >= keep {
			out = append(out, s)
			continue
		}
		kept++
	}
	sort.SliceStable(out, func(i, j int) bool { return scheduledAt(out[i]).Before(scheduledAt(out[j])) })
	return out
}

// policyMaxAge is the recorded max_age (0: none).
func policyMaxAge(p *virt.PolicyRef) time.Duration {
	if p.MaxAge == "" {
		return 0
	}
	d, err := time.ParseDuration(p.MaxAge)
	if err != nil {
		return 0
	}
	return d
}
