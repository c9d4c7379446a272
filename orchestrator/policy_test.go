package orchestrator

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

func TestResolveScheduleJitterIsStableAndSpread(t *testing.T) {
	a1, _, err := resolveSchedule("@daily", "uuid-a/acct-1")
	if err != nil {
		t.Fatal(err)
	}
	a2, _, _ := resolveSchedule("@daily", "uuid-a/acct-1")
	if a1.Spec != a2.Spec {
		t.Fatalf("jitter not stable: %q vs %q", a1.Spec, a2.Spec)
	}
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		s, _, _ := resolveSchedule("@daily", fmt.Sprintf("uuid-%d/vm-%d", i, i))
		seen[s.Spec] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 VMs share only %d distinct @daily times", len(seen))
	}
	if s, _, _ := resolveSchedule("*/15 * * * *", "x"); s.Spec != "*/15 * * * *" {
		t.Errorf("cron expression changed: %q", s.Spec)
	}
	if _, ok, _ := resolveSchedule("", "x"); ok {
		t.Error("empty schedule resolved")
	}
	if _, _, err := resolveSchedule("61 * * * *", "x"); err == nil {
		t.Error("bad cron accepted")
	}
}

// matches is an independent oracle for the cron forms used below: five
// fields, each "*", "*/n" or a number.
func matches(spec string, t time.Time) bool {
	f := strings.Fields(spec)
	vals := []int{t.Minute(), t.Hour(), t.Day(), int(t.Month()), int(t.Weekday())}
	for i, field := range f {
		switch {
		case field == "*":
		case strings.HasPrefix(field, "*/"):
			n, _ := strconv.Atoi(field[2:])
			if vals[i]%n != 0 {
				return false
			}
		default:
			n, _ := strconv.Atoi(field)
			if vals[i] != n {
				return false
			}
		}
	}
	return true
}

// TestRetentionOverThousandTicks runs the scheduler once a minute for 1000
// simulated minutes over VMs with different policies and checks after every
// tick that exactly the expected scheduled snapshots exist, and that the
// baseline and manual snapshots are never touched.
func TestRetentionOverThousandTicks(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := fake.New(fake.WithFile("/img/g.qcow2", "qcow2", 1<<30), fake.WithClock(clock))
	if _, err := h.EnsurePool(ctx, "default", "/pool"); err != nil {
		t.Fatal(err)
	}
	policies := map[string]*virt.PolicyRef{
		"hourly":  {Name: "hourly", Baseline: "clean", Schedule: "@hourly", Keep: 5},
		"quarter": {Name: "quarter", Baseline: "clean", Schedule: "*/15 * * * *", Keep: 3, MaxAge: (time.Hour).String()},
		"daily":   {Name: "daily", Baseline: "clean", Schedule: "@daily", Keep: 2, MaxAge: (30 * time.Hour).String()},
		"aged":    {Name: "aged", Baseline: "base", Schedule: "*/10 * * * *", Keep: 100, MaxAge: (45 * time.Minute).String()},
	}
	specs := map[string]string{}
	created := t0.Add(-time.Minute)
	for name, p := range policies {
		vm := "vm-" + name
		uuid := fmt.Sprintf("6a0b8e4e-1f6a-4c1e-9f55-0d6a3c2b1a%02d", len(specs))
		disk := "/pool/" + vm + ".qcow2"
		if _, err := h.CreateVolume(ctx, virt.VolumeSpec{Pool: "default", Name: vm + ".qcow2", Format: "qcow2", CapacityBytes: 1 << 30, BackingPath: "/img/g.qcow2", BackingFormat: "qcow2"}); err != nil {
			t.Fatal(err)
		}
		_, err := h.DefineDomain(ctx, virt.DomainSpec{Name: vm, UUID: uuid, Accel: virt.AccelTCG, Arch: "x86_64", Machine: "pc", VCPUs: 1, MemoryBytes: 1 << 30,
			Disks:    []virt.DiskSpec{{Device: virt.DeviceDisk, Bus: "sata", Target: "sda", Path: disk, Format: "qcow2"}},
			Metadata: &virt.Metadata{Profile: "sim", VM: vm, Instance: vm, Created: created, Provisioned: true, Policy: p}})
		if err != nil {
			t.Fatal(err)
		}
		base := snapmeta.Description{Kind: snapmeta.Baseline, Policy: name}
		if _, err := h.CreateSnapshot(ctx, vm, virt.SnapshotSpec{Name: p.Baseline, Description: base.String()}); err != nil {
			t.Fatal(err)
		}
		man := snapmeta.Description{Kind: snapmeta.Manual}
		if _, err := h.CreateSnapshot(ctx, vm, virt.SnapshotSpec{Name: "before-upgrade", Description: man.String()}); err != nil {
			t.Fatal(err)
		}
		s, _, err := resolveSchedule(p.Schedule, uuid+"/"+vm)
		if err != nil {
			t.Fatal(err)
		}
		specs[name] = s.Spec
	}
	e := &engine{HV: h, Parallelism: 2}
	createdN, prunedN := map[string]int{}, map[string]int{}
	for i := 0; i < 1000; i++ {
		mu.Lock()
		now = t0.Add(time.Duration(i) * time.Minute)
		tickAt := now
		mu.Unlock()
		res, err := e.RunDue(ctx, nil, tickAt, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != "" {
				t.Fatalf("tick %d: %s: %s", i, r.VM, r.Err)
			}
			if r.Created != "" {
				createdN[r.Policy]++
			}
			prunedN[r.Policy] += len(r.Pruned)
		}
		for name, p := range policies {
			vm := "vm-" + name
			snaps, err := h.ListSnapshots(ctx, vm)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			hasBase, hasManual := false, false
			for _, s := range snaps {
				switch {
				case s.Name == p.Baseline:
					hasBase = true
				case s.Name == "before-upgrade":
					hasManual = true
				default:
					got = append(got, s.Name)
				}
			}
			if !hasBase || !hasManual {
				t.Fatalf("tick %d: %s lost its baseline or manual snapshot: %+v", i, vm, snaps)
			}
			sort.Strings(got)
			want := expectedAutos(name, specs[name], p, created, tickAt)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("tick %d (%s): %s has\n  %v\nwant\n  %v", i, tickAt.Format(time.RFC3339), vm, got, want)
			}
		}
	}
	// The run exercised both count and age retention.
	for name, want := range map[string][2]int{"hourly": {16, 11}, "quarter": {66, 63}, "daily": {0, 0}, "aged": {100, 95}} {
		if createdN[name] < want[0] || prunedN[name] < want[1] {
			t.Errorf("%s: created %d, pruned %d; want at least %d and %d", name, createdN[name], prunedN[name], want[0], want[1])
		}
	}
}

// expectedAutos: every scheduled minute after created up to now, of which
// those not expired (created+max_age > now), newest keep.
func expectedAutos(policy, spec string, p *virt.PolicyRef, created, now time.Time) []string {
	maxAge, _ := time.ParseDuration(p.MaxAge)
	var ts []time.Time
	for m := created.Add(time.Minute); !m.After(now); m = m.Add(time.Minute) {
		if matches(spec, m) && (maxAge == 0 || m.Add(maxAge).After(now)) {
			ts = append(ts, m)
		}
	}
	if len(ts) > p.Keep {
		ts = ts[len(ts)-p.Keep:]
	}
	var out []string
	for _, t := range ts {
		out = append(out, autoSnapshotName(policy, t))
	}
	sort.Strings(out)
	return out
}

func TestRetentionNeverListsBaselineOrManual(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := now.Add(-1000 * time.Hour)
	p := &virt.PolicyRef{Name: "p", Baseline: "clean", Keep: 1, MaxAge: time.Hour.String()}
	exp := old.Add(time.Hour)
	snaps := []snapmeta.Info{
		{Snapshot: virt.Snapshot{Name: "clean", Created: old}, Kind: snapmeta.Baseline, Policy: "p"},
		{Snapshot: virt.Snapshot{Name: "mine", Created: old}, Kind: snapmeta.Manual},
		{Snapshot: virt.Snapshot{Name: "auto-p-1", Created: old}, Kind: snapmeta.Auto, Policy: "p", Expires: &exp},
		{Snapshot: virt.Snapshot{Name: "auto-q-1", Created: old}, Kind: snapmeta.Auto, Policy: "q", Expires: &exp},
	}
	got := retention(p, snaps, now, 1)
	if len(got) != 1 || got[0].Name != "auto-p-1" {
		t.Fatalf("retention = %+v, want only auto-p-1", got)
	}
}

func TestClassifyForeignSnapshotsAreManual(t *testing.T) {
	if c := snapmeta.Classify(virt.Snapshot{Name: "x", Description: "made with virsh"}, "clean"); c.Kind != snapmeta.Manual {
		t.Errorf("foreign snapshot classified %s", c.Kind)
	}
	if c := snapmeta.Classify(virt.Snapshot{Name: "clean"}, "clean"); c.Kind != snapmeta.Baseline {
		t.Errorf("baseline by name classified %s", c.Kind)
	}
}

// Issue 10: @daily used to be jittered over the whole day (a memory
// snapshot at 14:00 pauses someone's work); it now falls in the policy's
// window, by default the night hours of profiles.DefaultWindow.
func TestResolveScheduleWindowBoundsJitter(t *testing.T) {
	for _, c := range []struct {
		expr, window string
		hours        map[int]bool
	}{
		{"@daily", "", map[int]bool{1: true, 2: true, 3: true, 4: true}},
		{"@weekly", "", map[int]bool{1: true, 2: true, 3: true, 4: true}},
		{"@daily", "22:00-02:00", map[int]bool{22: true, 23: true, 0: true, 1: true}},
		{"@monthly", "12:30-13:00", map[int]bool{12: true}},
	} {
		seen := map[string]bool{}
		for i := 0; i < 200; i++ {
			s, ok, err := resolveScheduleWindow(c.expr, c.window, fmt.Sprintf("uuid-%d/vm-%d", i, i))
			if err != nil || !ok {
				t.Fatalf("%s %q: ok=%v err=%v", c.expr, c.window, ok, err)
			}
			var minute, hour int
			if _, err := fmt.Sscanf(s.Spec, "%d %d", &minute, &hour); err != nil {
				t.Fatalf("spec %q: %v", s.Spec, err)
			}
			if !c.hours[hour] {
				t.Errorf("%s window %q: spec %q is outside the window", c.expr, c.window, s.Spec)
			}
			if c.window == "12:30-13:00" && minute < 30 {
				t.Errorf("spec %q starts before 12:30", s.Spec)
			}
			seen[s.Spec] = true
		}
		if len(seen) < 20 {
			t.Errorf("%s %q: 200 VMs share only %d times", c.expr, c.window, len(seen))
		}
	}
	if _, _, err := resolveScheduleWindow("@daily", "25:00-03:00", "x"); err == nil {
		t.Error("bad window accepted")
	}
}

// Issue 10: a schedule that never matches made the cron library return the
// zero time, which dueSnapshot treated as due on every tick.
func TestDueSnapshotNeverForZeroTime(t *testing.T) {
	never, err := cron.ParseStandard("0 0 31 2 *")
	if err != nil {
		t.Fatal(err)
	}
	s := vmSchedule{Spec: "0 0 31 2 *", sched: never}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if dueSnapshot(s, "p", now.Add(-48*time.Hour), nil, now) {
		t.Fatal("a schedule that never matches is due")
	}
}

// Schedules and windows are host local time (docs/reference.md), also for
// reference times in UTC as libvirt metadata holds them.
func TestScheduleIsHostLocalTime(t *testing.T) {
	loc := time.FixedZone("UTC+3", 3*3600)
	old := time.Local
	time.Local = loc
	defer func() { time.Local = old }()
	s, _, err := resolveSchedule("30 2 * * *", "x")
	if err != nil {
		t.Fatal(err)
	}
	ref := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	next := s.Next(ref)
	if want := time.Date(2026, 3, 2, 2, 30, 0, 0, loc); !next.Equal(want) {
		t.Errorf("next %v, want %v (02:30 host time)", next, want)
	}
}
