package orchestrator

import (
	"slices"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// On a real host, libvirt records when a snapshot was created by its own
// clock, to the second; run-due --now (or a client whose clock differs)
// schedules by another. Schedules and retention must follow the time in
// the scheduled snapshot's name.
func TestScheduledAtFollowsTheSchedulersClock(t *testing.T) {
	host := time.Date(2026, 11, 25, 14, 0, 7, 0, time.UTC) // libvirt's clock: every snapshot in one second
	at := func(h, m int) time.Time { return time.Date(2026, 11, 26, h, m, 0, 0, time.UTC) }
	p := &virt.PolicyRef{Name: "hourly", Baseline: "clean", Schedule: "0 * * * *", Keep: 2}
	auto := func(t time.Time) snapmeta.Info {
		desc := snapmeta.Description{Kind: snapmeta.Auto, Policy: "hourly"}
		return snapmeta.Classify(virt.Snapshot{Name: autoSnapshotName("hourly", t), Description: desc.String(), Created: host}, "clean")
	}
	snaps := []snapmeta.Info{
		snapmeta.Classify(virt.Snapshot{Name: "clean", Created: host}, "clean"),
		auto(at(2, 0)), auto(at(0, 0)), auto(at(1, 0)),
	}
	for _, c := range []struct {
		s    snapmeta.Info
		want time.Time
	}{
		{snaps[1], at(2, 0)},
		{snaps[0], host}, // not scheduled: libvirt's time
		{snapmeta.Classify(virt.Snapshot{Name: "auto-hourly-garbage", Description: snapmeta.Description{Kind: snapmeta.Auto, Policy: "hourly"}.String(), Created: host}, ""), host},
	} {
		if got := scheduledAt(c.s); !got.Equal(c.want) {
			t.Errorf("ScheduledAt(%s) = %s, want %s", c.s.Name, got, c.want)
		}
	}

	s, _, err := resolveSchedule(p.Schedule, "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		now  time.Time
		want bool
	}{{at(2, 30), false}, {at(2, 59), false}, {at(3, 0), true}} {
		if got := dueSnapshot(s, "hourly", host.Add(-time.Hour), snaps, c.now); got != c.want {
			t.Errorf("due at %s = %v, want %v", c.now.Format("15:04"), got, c.want)
		}
	}

	var pruned []string
	for _, x := range retention(p, snaps, at(3, 0), 1) {
		pruned = append(pruned, x.Name)
	}
	if want := []string{autoSnapshotName("hourly", at(0, 0)), autoSnapshotName("hourly", at(1, 0))}; !slices.Equal(pruned, want) {
		t.Errorf("retention (keep 2, room 1) prunes %v, want the two oldest by schedule %v", pruned, want)
	}
}

func TestScheduleNotes(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 26, h, m, 0, 0, time.UTC) }
	auto := func(policy string, tt time.Time, expires *time.Time) virt.Snapshot {
		d := snapmeta.Description{Kind: snapmeta.Auto, Policy: policy, Expires: expires}
		return virt.Snapshot{Name: autoSnapshotName(policy, tt), Description: d.String(), Created: tt}
	}
	exp := at(1, 30)
	md := func(p *virt.PolicyRef, provisioned bool) *virt.Metadata {
		return &virt.Metadata{Profile: "lab", Policy: p, Created: at(0, 0).Add(-time.Hour), Provisioned: provisioned}
	}
	hourly := &virt.PolicyRef{Name: "h", Baseline: "clean", Schedule: "0 * * * *", Keep: 2}
	aged := &virt.PolicyRef{Name: "a", Baseline: "clean", Keep: 5, MaxAge: "1h30m0s"}
	o := &observation{
		Domains: map[string]virt.Domain{
			"a-1":   {Name: "a-1", Metadata: md(hourly, true)},
			"b-1":   {Name: "b-1", Metadata: md(hourly, true)},
			"c-1":   {Name: "c-1", Metadata: md(aged, true)},
			"d-1":   {Name: "d-1", Metadata: md(hourly, false)},                                // not provisioned yet
			"e-1":   {Name: "e-1", Metadata: &virt.Metadata{Profile: "other", Policy: hourly}}, // another profile
			"f-1":   {Name: "f-1", Metadata: md(nil, true)},                                    // no policy
			"plain": {Name: "plain"},
		},
		Snapshots: map[string][]virt.Snapshot{
			"a-1": {{Name: "clean", Created: at(0, 0)}, auto("h", at(1, 0), nil), auto("h", at(2, 0), nil)},
			"c-1": {auto("a", at(0, 0), &exp)},
		},
	}
	got := scheduleNotes(o, "lab", at(2, 10))
	want := []string{
		"a-1: next scheduled snapshot auto-h-20261126T030000Z at 2026-11-26T03:00:00Z; retention then deletes auto-h-20261126T010000Z",
		"b-1: next scheduled snapshot auto-h-20261126T021000Z at 2026-11-26T02:10:00Z (due now)",
		"c-1: the next tick deletes auto-a-20261126T000000Z (retention of policy a)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ScheduleNotes:\n got %q\nwant %q", got, want)
	}
}
