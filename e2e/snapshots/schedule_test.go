package snapshots

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// autoName is the name a scheduled snapshot of policy gets at t.
func autoName(policy string, t time.Time) string {
	return "auto-" + policy + "-" + t.UTC().Format("20060102T150405Z")
}

// Schedules and retention on the real host, with simulated times (run-due
// --now): two VMs with hourly policies, one pruned by count (keep = 2,
// running, so its snapshots hold memory), one by age (max_age = 150m, shut
// off, so its snapshots are disk-only). Each also has its baseline and a
// manual snapshot, which no tick may remove. A tick that cannot serve a VM
// exits 1 naming it and still serves the other; the next tick catches up
// once. --dry-run changes nothing; plan says what the next tick does.
func TestScheduleAndRetention(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "sched", `
snapshot_policy "bycount" {
  schedule = "0 * * * *"
  keep     = 2
}
snapshot_policy "byage" {
  schedule = "0 * * * *"
  keep     = 10
  max_age  = "150m"
}
`, vmBlock(h, "skeep", 1, "bycount"), vmBlock(h, "sage", 1, "byage"))
	apply(t, h, dir)
	h.MustRun(t, []string{"stop", "--force", "sage"})
	h.MustRun(t, []string{"snapshot", "create", "skeep", "keepme"})
	h.MustRun(t, []string{"snapshot", "create", "sage", "keepme"})

	// Simulated times: tomorrow, from 00:00 UTC (after the VMs were made).
	base := time.Now().UTC().Add(24 * time.Hour).Truncate(24 * time.Hour)
	at := func(hours, minutes int) time.Time {
		return base.Add(time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute)
	}
	K := func(h int) string { return autoName("bycount", at(h, 0)) }
	A := func(h int) string { return autoName("byage", at(h, 0)) }
	tick := func(now time.Time, want ...string) e2eutil.Result {
		t.Helper()
		r := h.MustRun(t, []string{"snapshot", "run-due", "--now", now.Format(time.RFC3339)})
		got := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
		if r.Stdout == "" {
			got = nil
		}
		if !slices.Equal(got, want) {
			t.Errorf("run-due --now %s:\n got %q\nwant %q\n%s", now.Format(time.RFC3339), got, want, r)
		}
		return r
	}
	// hold checks that each VM has exactly these snapshots, in legacyvm's
	// list, in libvirt's records and inside its qcow2 image.
	hold := func(when string, vm string, want ...string) {
		t.Helper()
		want = append(want, "clean", "keepme")
		slices.Sort(want)
		if got := names(snapsOf(t, h, vm)); !slices.Equal(got, want) {
			t.Errorf("%s: %s has %v, want %v", when, vm, got, want)
		}
		if got := virshSnapshots(t, h, vm); !slices.Equal(got, want) {
			t.Errorf("%s: libvirt records %v for %s, want %v", when, got, vm, want)
		}
		if got := qcowSnapshots(t, systemDisk(h, vm)); !slices.Equal(got, want) {
			t.Errorf("%s: the image of %s holds %v, want %v", when, vm, got, want)
		}
	}

	tick(at(0, 0), "sage: created "+A(0), "skeep: created "+K(0))
	tick(at(0, 30)) // not due before 01:00
	tick(at(1, 0), "sage: created "+A(1), "skeep: created "+K(1))

	// --dry-run says what a tick would do and does nothing.
	r := h.MustRun(t, []string{"snapshot", "run-due", "--dry-run", "--now", at(2, 0).Format(time.RFC3339)})
	if want := "sage: would create " + A(2) + "\nskeep: would create " + K(2) + "\nskeep: would prune " + K(0) + "\n"; r.Stdout != want {
		t.Errorf("run-due --dry-run:\n got %q\nwant %q", r.Stdout, want)
	}
	hold("after --dry-run", "skeep", K(0), K(1))
	hold("after --dry-run", "sage", A(0), A(1))

	// sage's disk goes missing: the tick fails for sage, names it, exits
	// 1, and still serves skeep (keep = 2, create then prune: room for
	// the new one). Nothing of sage has expired yet: libvirt 9.0 drops the
	// record of an internal snapshot of a shut off VM even when qemu-img
	// cannot delete it from a missing disk, so a prune here would leave it
	// in the image.
	disk := systemDisk(h, "sage")
	if err := os.Rename(disk, disk+".away"); err != nil {
		t.Fatal(err)
	}
	r = h.MustRun(t, []string{"snapshot", "run-due", "--now", at(2, 0).Format(time.RFC3339)}, 1)
	if want := "skeep: created " + K(2) + "\nskeep: pruned " + K(0) + "\n"; r.Stdout != want {
		t.Errorf("failing tick: stdout %q, want %q", r.Stdout, want)
	}
	if !strings.Contains(r.Stderr, "Error: sage: create "+A(2)+": ") || strings.Contains(r.Stderr, "skeep") {
		t.Errorf("failing tick: stderr does not name sage alone:\n%s", r)
	}
	if err := os.Rename(disk+".away", disk); err != nil {
		t.Fatal(err)
	}
	// Catch-up: one snapshot for the missed hour; A(0) expired at 02:30.
	tick(at(3, 0), "sage: created "+A(3), "sage: pruned "+A(0), "skeep: created "+K(3), "skeep: pruned "+K(1))
	hold("at 03:00", "skeep", K(2), K(3))
	hold("at 03:00", "sage", A(1), A(3))

	// What libvirt stores: kind, policy, content and expiry, as JSON in
	// the snapshot's description (snapshot list shows them parsed).
	for _, s := range snapsOf(t, h, "sage") {
		if !strings.HasPrefix(s.Name, "auto-") {
			continue
		}
		out, err := h.Env.Virsh(t.Context(), "snapshot-dumpxml", "sage", s.Name)
		if err != nil {
			t.Fatal(err)
		}
		var sx struct {
			Description string `xml:"description"`
		}
		if err := xml.Unmarshal(out, &sx); err != nil {
			t.Fatalf("%s: snapshot XML: %v", s.Name, err)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(sx.Description), &d); err != nil {
			t.Fatalf("%s: description %q is not JSON: %v", s.Name, sx.Description, err)
		}
		if s.Description != "" {
			t.Errorf("%s: snapshot list shows a note %q for a scheduled snapshot", s.Name, s.Description)
		}
		taken, _ := time.Parse("20060102T150405Z", strings.TrimPrefix(s.Name, "auto-byage-"))
		if d["legacyvm"] != "auto" || d["policy"] != "byage" || d["expires"] != taken.Add(150*time.Minute).Format(time.RFC3339) {
			t.Errorf("%s: description %v", s.Name, d)
		}
		if s.Kind != "auto" || s.Policy != "byage" || s.Expires == nil || !s.Expires.Equal(taken.Add(150*time.Minute)) || s.State != "shutoff" || s.Memory {
			t.Errorf("%s: listed as %+v", s.Name, s)
		}
	}
	for _, s := range snapsOf(t, h, "skeep") {
		if strings.HasPrefix(s.Name, "auto-") && (s.Kind != "auto" || s.Policy != "bycount" || s.Expires != nil || s.State != "running" || !s.Memory) {
			t.Errorf("%s: listed as %+v (a running VM's scheduled snapshot holds its memory; no max_age, no expiry)", s.Name, s)
		}
	}

	tick(at(4, 0), "sage: created "+A(4), "sage: pruned "+A(1), "skeep: created "+K(4), "skeep: pruned "+K(2))
	tick(at(5, 0), "sage: created "+A(5), "skeep: created "+K(5), "skeep: pruned "+K(3))
	hold("at 05:00", "skeep", K(4), K(5))
	hold("at 05:00", "sage", A(3), A(4), A(5))

	// plan: nothing to change, and notes on what the next tick does.
	r = h.MustRun(t, []string{"plan", dir})
	for _, want := range []string{
		"note: sage: next scheduled snapshot " + A(6) + " at " + at(6, 0).Format(time.RFC3339) + "; retention then deletes " + A(3),
		"note: skeep: next scheduled snapshot " + K(6) + " at " + at(6, 0).Format(time.RFC3339) + "; retention then deletes " + K(4),
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("plan does not say %q:\n%s", want, r)
		}
	}
	r = h.MustRun(t, []string{"plan", "-o", "json", dir})
	var plan struct {
		Hosts []struct {
			Notes []string `json:"notes"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &plan); err != nil || len(plan.Hosts) != 1 || len(plan.Hosts[0].Notes) < 2 {
		t.Errorf("plan -o json has no schedule notes: %v\n%s", err, r)
	}
}
