package snapshots

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// Manual snapshots as a user drives them: create (named, unnamed, refused
// names), list as a tree with kinds (text and JSON), revert (with the state
// the snapshot recorded), delete (the baseline only with --force), and
// libvirt's records and the qcow2 image agreeing with what legacyvm shows.
func TestManualSnapshots(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "manual", `
snapshot_policy "tester" {
  baseline = "clean"
}
`, vmBlock(h, "man", 1, "tester", "rig.hb=2"))
	apply(t, h, dir)
	h.WaitSerial(t, "man", `RIG hb n=1 `, 90*time.Second)

	// A named snapshot of the running VM: libvirt 9.0 can only take it
	// with memory, and says so.
	r := h.MustRun(t, []string{"snapshot", "create", "man", "before-update", "--description", "before the ERP update"})
	if want := "Created snapshot before-update of man (disk and memory, VM running)."; strings.TrimSpace(r.Stdout) != want {
		t.Errorf("create: stdout %q, want %q", r.Stdout, want)
	}
	// Unnamed, as JSON.
	r = h.MustRun(t, []string{"snapshot", "create", "man", "-o", "json"})
	var createdDoc struct {
		FormatVersion int      `json:"format_version"`
		VM            string   `json:"vm"`
		Snapshot      snapJSON `json:"snapshot"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &createdDoc); err != nil || createdDoc.FormatVersion != 1 || createdDoc.VM != "man" {
		t.Fatalf("create -o json: %v\n%s", err, r)
	}
	created := createdDoc.Snapshot
	if !regexp.MustCompile(`^manual-\d{8}T\d{6}Z$`).MatchString(created.Name) || created.Kind != "manual" ||
		created.Parent != "before-update" || created.State != "running" || !created.Memory || !created.Current {
		t.Errorf("create -o json: %+v", created)
	}
	unnamed := created.Name

	// Refused names: exit 1, a message that says why, nothing created.
	for _, c := range []struct{ name, says string }{
		{"auto-mine", "reserved for schedules"},
		{"clean", "baseline"},
		{"before-update", "already exists"},
	} {
		r := h.MustRun(t, []string{"snapshot", "create", "man", c.name}, 1)
		if !strings.Contains(r.Stderr, c.says) {
			t.Errorf("create %s: stderr does not say %q:\n%s", c.name, c.says, r)
		}
	}

	// Revert to the disk-only baseline: the VM is shut off, as it was.
	r = h.MustRun(t, []string{"snapshot", "revert", "man", "clean"})
	if !regexp.MustCompile(`^Reverted man to clean in \d+(\.\d+)?m?s; it is shutoff\.\n$`).MatchString(r.Stdout) {
		t.Errorf("revert clean: stdout %q", r.Stdout)
	}
	if got := domState(t, h, "man"); got != "shut off" {
		t.Errorf("after revert to clean the domain is %q", got)
	}
	// A snapshot of the VM shut off is disk-only and branches from clean.
	r = h.MustRun(t, []string{"snapshot", "create", "man", "branch"})
	if want := "Created snapshot branch of man (disk, VM shutoff)."; strings.TrimSpace(r.Stdout) != want {
		t.Errorf("create branch: stdout %q, want %q", r.Stdout, want)
	}

	// The tree: clean -> before-update -> manual-..., clean -> branch.
	snaps := snapsOf(t, h, "man")
	type node struct{ name, parent, kind, state string }
	var got []node
	for _, s := range snaps {
		got = append(got, node{s.Name, s.Parent, s.Kind, s.State})
	}
	want := []node{
		{"clean", "", "baseline", "shutoff"},
		{"before-update", "clean", "manual", "running"},
		{unnamed, "before-update", "manual", "running"},
		{"branch", "clean", "manual", "shutoff"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("snapshot list -o json (parents before children):\n got %v\nwant %v", got, want)
	}
	for _, s := range snaps {
		if s.Current != (s.Name == "branch") {
			t.Errorf("%s: current = %v", s.Name, s.Current)
		}
		if s.Name == "before-update" && !strings.Contains(s.Description, "before the ERP update") {
			t.Errorf("before-update lost its description: %q", s.Description)
		}
	}
	r = h.MustRun(t, []string{"snapshot", "list", "man"})
	wantLines := []*regexp.Regexp{
		regexp.MustCompile(`^VM\s+SNAPSHOT\s+KIND\s+CREATED \(UTC\)\s+CONTENT\s+EXPIRES$`),
		regexp.MustCompile(`^man\s+clean\s+baseline \(tester\)\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+disk, VM shutoff\s+-$`),
		regexp.MustCompile(`^man\s{4,}before-update\s+manual\s+.*disk and memory, VM running\s+-$`),
		regexp.MustCompile(`^man\s{6,}` + unnamed + `\s+manual\s+`),
		regexp.MustCompile(`^man\s{4,}branch \*\s+manual\s+.*disk, VM shutoff\s+-$`),
	}
	lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
	if len(lines) != len(wantLines) {
		t.Fatalf("snapshot list man: %d lines, want %d:\n%s", len(lines), len(wantLines), r.Stdout)
	}
	for i, re := range wantLines {
		if !re.MatchString(lines[i]) {
			t.Errorf("snapshot list man line %d:\n%q\ndoes not match %s", i+1, lines[i], re)
		}
	}

	// Revert to a memory snapshot: running again, without a start.
	r = h.MustRun(t, []string{"snapshot", "revert", "man", "before-update", "-o", "json"})
	var rev struct {
		VM, Snapshot, State string
		TookNS              int64 `json:"took_ns"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rev); err != nil {
		t.Fatalf("revert -o json: %v\n%s", err, r)
	}
	if rev.VM != "man" || rev.Snapshot != "before-update" || rev.State != "running" || rev.TookNS <= 0 {
		t.Errorf("revert -o json: %+v", rev)
	}
	if got := domState(t, h, "man"); got != "running" {
		t.Errorf("after revert to before-update the domain is %q", got)
	}

	// Unknown names fail with exit 1 and say what is missing.
	r = h.MustRun(t, []string{"snapshot", "revert", "man", "nosuch"}, 1)
	if !strings.Contains(r.Stderr, `"nosuch"`) {
		t.Errorf("revert nosuch:\n%s", r)
	}
	r = h.MustRun(t, []string{"snapshot", "list", "nosuchvm"}, 1)
	if !strings.Contains(r.Stderr, "nosuchvm") {
		t.Errorf("list nosuchvm:\n%s", r)
	}

	// The baseline is protected.
	r = h.MustRun(t, []string{"snapshot", "delete", "man", "clean"}, 1)
	if !strings.Contains(r.Stderr, "protected") || !strings.Contains(r.Stderr, "--force") {
		t.Errorf("delete clean without --force:\n%s", r)
	}
	if !slices.Contains(virshSnapshots(t, h, "man"), "clean") {
		t.Fatal("the refused delete removed the baseline")
	}

	// Deleting a snapshot moves its child up to its parent.
	r = h.MustRun(t, []string{"snapshot", "delete", "man", "before-update"})
	if strings.TrimSpace(r.Stdout) != "Deleted snapshot before-update of man." {
		t.Errorf("delete before-update: %q", r.Stdout)
	}
	for _, s := range snapsOf(t, h, "man") {
		if s.Name == unnamed && s.Parent != "clean" {
			t.Errorf("%s: parent %q after its parent was deleted, want clean", s.Name, s.Parent)
		}
	}
	wantNames := []string{"branch", "clean", unnamed}
	slices.Sort(wantNames)
	if got := virshSnapshots(t, h, "man"); !slices.Equal(got, wantNames) {
		t.Errorf("libvirt records %v, want %v", got, wantNames)
	}
	if got := qcowSnapshots(t, systemDisk(h, "man")); !slices.Equal(got, wantNames) {
		t.Errorf("the qcow2 image holds %v, want %v", got, wantNames)
	}

	// With --force the baseline goes, and reset has nothing to go back to.
	r = h.MustRun(t, []string{"snapshot", "delete", "--force", "man", "clean", "-o", "json"})
	var del map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &del); err != nil || del["vm"] != "man" || del["snapshot"] != "clean" {
		t.Errorf("delete -o json: %v %v\n%s", del, err, r)
	}
	l := listJSON(t, h, "man")
	if l[0].Baseline != "clean" || slices.Contains(names(l[0].Snapshots), "clean") {
		t.Errorf("after delete --force: %+v", l[0])
	}
	r = h.MustRun(t, []string{"reset", "man"}, 1)
	if !strings.Contains(r.Stderr, "man") || !strings.Contains(r.Stderr, `"clean"`) {
		t.Errorf("reset without a baseline:\n%s", r)
	}
}
