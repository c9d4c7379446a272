package orchestrator

import (
	"slices"
	"testing"
	"time"

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
	auto := func(t time.Time) SnapshotInfo {
		desc := SnapshotDescription{Kind: SnapshotAuto, Policy: "hourly"}
		return Classify(virt.Snapshot{Name: AutoSnapshotName("hourly", t), Description: desc.String(), Created: host}, "clean")
	}
	snaps := []SnapshotInfo{
		Classify(virt.Snapshot{Name: "clean", Created: host}, "clean"),
		auto(at(2, 0)), auto(at(0, 0)), auto(at(1, 0)),
	}
	for _, c := range []struct {
		s    SnapshotInfo
		want time.Time
	}{
		{snaps[1], at(2, 0)},
		{snaps[0], host}, // not scheduled: libvirt's time
		{Classify(virt.Snapshot{Name: "auto-hourly-garbage", Description: SnapshotDescription{Kind: SnapshotAuto, Policy: "hourly"}.String(), Created: host}, ""), host},
	} {
		if got := ScheduledAt(c.s); !got.Equal(c.want) {
			t.Errorf("ScheduledAt(%s) = %s, want %s", c.s.Name, got, c.want)
		}
	}

	s, _, err := ResolveSchedule(p.Schedule, "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		now  time.Time
		want bool
	}{{at(2, 30), false}, {at(2, 59), false}, {at(3, 0), true}} {
		if got := DueSnapshot(s, "hourly", host.Add(-time.Hour), snaps, c.now); got != c.want {
			t.Errorf("due at %s = %v, want %v", c.now.Format("15:04"), got, c.want)
		}
	}

	var pruned []string
	for _, x := range Retention(p, snaps, at(3, 0), 1) {
		pruned = append(pruned, x.Name)
	}
	if want := []string{AutoSnapshotName("hourly", at(0, 0)), AutoSnapshotName("hourly", at(1, 0))}; !slices.Equal(pruned, want) {
		t.Errorf("retention (keep 2, room 1) prunes %v, want the two oldest by schedule %v", pruned, want)
	}
}
