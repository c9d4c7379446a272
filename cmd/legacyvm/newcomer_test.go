package main

import (
	"strings"
	"testing"
)

// Issue 10: reset --all reset every profile's VMs on the host without
// asking. It now names the profiles, asks on a terminal, takes --yes, and
// refuses without a terminal.
func TestResetAllConfirms(t *testing.T) {
	w := newFakeWorld(t)
	w.applyAll()
	marked := false
	mark := func() {
		t.Helper()
		args := []string{"snapshot", "create", "demo", "marker"}
		if marked {
			args = []string{"snapshot", "revert", "demo", "marker"}
		}
		if r := w.run(cliOpts{}, args...); r.code != 0 {
			t.Fatal(r.err)
		}
		marked = true
	}
	current := func(vm string) string {
		t.Helper()
		snaps, err := w.h.ListSnapshots(t.Context(), vm)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps {
			if s.Current {
				return s.Name
			}
		}
		return ""
	}
	mark()
	// No terminal, no --yes: refused, nothing reset.
	r := w.run(cliOpts{}, "reset", "--all")
	if r.code != 1 || !strings.Contains(r.err, "needs confirmation") || current("demo") != "marker" {
		t.Fatalf("reset --all without a terminal: exit %d, current %q\n%s", r.code, current("demo"), r.err)
	}
	for _, p := range []string{"profile lab: acct-1, acct-2", "profile quickstart: demo", "profile ops-daily: ops"} {
		if !strings.Contains(r.err, p) {
			t.Errorf("reset --all does not name %q:\n%s", p, r.err)
		}
	}
	// On a terminal, answering no: nothing reset.
	r = w.run(cliOpts{inTTY: true, errTTY: true, stdin: "no\n"}, "reset", "--all")
	if r.code != 1 || !strings.Contains(r.err, "cancelled") || current("demo") != "marker" {
		t.Fatalf("reset --all answered no: exit %d, current %q\n%s", r.code, current("demo"), r.err)
	}
	// On a terminal, yes: reset.
	r = w.run(cliOpts{inTTY: true, errTTY: true, stdin: "yes\n"}, "reset", "--all", "--progress=plain")
	if r.code != 0 || current("demo") != "clean" {
		t.Fatalf("reset --all answered yes: exit %d, current %q\n%s", r.code, current("demo"), r.err)
	}
	// --yes: no question.
	mark()
	r = w.run(cliOpts{}, "reset", "--all", "--yes")
	if r.code != 0 || current("demo") != "clean" {
		t.Fatalf("reset --all --yes: exit %d\n%s", r.code, r.err)
	}
}

// Issue 10: commands that take VM names can be scoped to a profile.
func TestProfileScope(t *testing.T) {
	w := newFakeWorld(t)
	w.applyAll()
	r := w.run(cliOpts{}, "reset", "--profile", "examples/lab", "demo")
	if r.code != 1 || !strings.Contains(r.err, `"demo" belongs to profile quickstart, not lab`) {
		t.Fatalf("reset of another profile's VM: exit %d\n%s", r.code, r.err)
	}
	r = w.run(cliOpts{}, "reset", "--profile", "examples/lab")
	if r.code != 0 || !strings.Contains(r.out, "acct-1: reverted") || !strings.Contains(r.out, "acct-2: reverted") || strings.Contains(r.out, "demo") {
		t.Fatalf("reset --profile examples/lab: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	r = w.run(cliOpts{}, "snapshot", "list", "--profile", "examples/quickstart", "-o", "json")
	if r.code != 0 || !strings.Contains(r.out, `"demo"`) || strings.Contains(r.out, "acct-1") {
		t.Fatalf("snapshot list --profile: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	r = w.run(cliOpts{}, "stop", "--profile", "examples/nowhere", "demo")
	if r.code != 1 || !strings.Contains(r.err, "Profile not found") {
		t.Fatalf("--profile with a missing path: exit %d\n%s", r.code, r.err)
	}
}

// Issue 10: destroy --only with a name that does not exist exited 0
// saying there was nothing to do.
func TestDestroyOnlyUnknownName(t *testing.T) {
	w := newFakeWorld(t)
	w.applyAll()
	r := w.run(cliOpts{}, "destroy", "--auto-approve", "--only", "lab-2", "examples/lab")
	if r.code != 1 || !strings.Contains(r.err, `profile lab has no VM named "lab-2"`) || !strings.Contains(r.err, "its VMs are acct-1, acct-2") {
		t.Fatalf("exit %d\n%s", r.code, r.err)
	}
	r = w.run(cliOpts{}, "destroy", "--auto-approve", "--only", "acct-3", "examples/lab")
	if r.code != 1 || !strings.Contains(r.err, `did you mean "acct-1"?`) {
		t.Fatalf("exit %d\n%s", r.code, r.err)
	}
	if _, err := w.h.GetDomain(t.Context(), "acct-2"); err != nil {
		t.Fatalf("acct-2 gone after a refused destroy: %v", err)
	}
	r = w.run(cliOpts{}, "destroy", "--auto-approve", "--only", "acct-2", "examples/lab")
	if r.code != 0 {
		t.Fatalf("destroy --only acct-2: exit %d\n%s", r.code, r.err)
	}
}

// Issue 10: global flags were silently ignored where they mean nothing
// (reset --all --var-file /nonexistent exited 0).
func TestFlagsThatDoNotApplyAreErrors(t *testing.T) {
	w := newFakeWorld(t)
	w.applyAll()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reset", "--all", "--yes", "--var-file", "/nonexistent"}, `--var-file does not apply here`},
		{[]string{"reset", "demo", "--var", "x=1"}, `--var does not apply here`},
		{[]string{"status", "--all", "--var", "x=1"}, `--var does not apply here`},
		{[]string{"verify", "--all", "--var", "x=1"}, `--var does not apply here`},
		{[]string{"licenses", "--var-file", "/nonexistent"}, `--var-file does not apply here`},
		{[]string{"doctor", "--var", "x=1"}, `--var does not apply to "legacyvm doctor"`},
		{[]string{"version", "--progress", "plain"}, `--progress does not apply to "legacyvm version"`},
		{[]string{"apply", "--progress", "fancy", "examples/lab"}, `--progress must be one of auto, plain, json, none`},
	} {
		r := w.run(cliOpts{}, c.args...)
		if r.code != 1 || !strings.Contains(r.err, c.want) {
			t.Errorf("%v: exit %d, want 1 with %q\n%s", c.args, r.code, c.want, r.err)
		}
	}
	if snaps, _ := w.h.ListSnapshots(t.Context(), "demo"); len(snaps) == 0 {
		t.Fatal("no snapshots")
	}
	// Where they apply they still work.
	if r := w.run(cliOpts{}, "reset", "--profile", "examples/quickstart", "--var", "golden=/var/lib/libvirt/images/legacyvm-standin.qcow2", "demo"); r.code != 0 {
		t.Errorf("reset --profile with --var: exit %d\n%s", r.code, r.err)
	}
}

// Issue 10: the board drew escape codes whenever stderr was a terminal,
// even with TERM=dumb, and could not be turned off.
func TestProgressModes(t *testing.T) {
	for _, c := range []struct {
		name   string
		env    map[string]string
		args   []string
		escape bool
		lines  bool
	}{
		{"terminal", map[string]string{"TERM": "xterm-256color"}, nil, true, false},
		{"dumb", map[string]string{"TERM": "dumb"}, nil, false, true},
		{"no-color", map[string]string{"TERM": "xterm", "NO_COLOR": "1"}, nil, false, true},
		{"plain", map[string]string{"TERM": "xterm"}, []string{"--progress=plain"}, false, true},
		{"none", map[string]string{"TERM": "xterm"}, []string{"--progress=none"}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newFakeWorld(t)
			args := append([]string{"apply", "--auto-approve", "examples/quickstart"}, c.args...)
			r := w.run(cliOpts{errTTY: true, env: c.env}, args...)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.err)
			}
			if got := strings.Contains(r.err, "\x1b["); got != c.escape {
				t.Errorf("escape sequences: %v, want %v\n%q", got, c.escape, r.err)
			}
			if got := strings.Contains(r.err, "s] demo: "); got != c.lines {
				t.Errorf("progress lines: %v, want %v\n%s", got, c.lines, r.err)
			}
			if !strings.Contains(r.err, "Applied profile quickstart") {
				t.Errorf("summary line missing:\n%s", r.err)
			}
		})
	}
}

// Issue 10: completion offered file names where a VM or snapshot name is
// expected, and no values for -o.
func TestCompletion(t *testing.T) {
	w := newFakeWorld(t)
	w.applyAll()
	for _, c := range []struct {
		args      []string
		want      []string
		notWanted []string
	}{
		{[]string{"__complete", "reset", ""}, []string{"acct-1\t", "demo\t", "ops\t"}, nil},
		{[]string{"__complete", "reset", "acct-1", ""}, []string{"acct-2\t"}, []string{"acct-1\t"}},
		{[]string{"__complete", "reset", "--profile", "examples/lab", ""}, []string{"acct-1\t", "acct-2\t"}, []string{"demo\t"}},
		{[]string{"__complete", "snapshot", "revert", "acct-1", ""}, []string{"clean\tbaseline", "before-update\tmanual"}, []string{"acct-2"}},
		{[]string{"__complete", "start", "d"}, []string{"demo\t"}, []string{"acct-1"}},
		{[]string{"__complete", "status", "-o", ""}, []string{"text", "json"}, nil},
		{[]string{"__complete", "apply", "--progress", ""}, []string{"auto", "plain", "none"}, nil},
	} {
		r := w.run(cliOpts{}, c.args...)
		for _, want := range c.want {
			if !strings.Contains(r.out, want) {
				t.Errorf("%v: no %q in\n%s%s", c.args, want, r.out, r.err)
			}
		}
		for _, nw := range c.notWanted {
			if strings.Contains(r.out, nw) {
				t.Errorf("%v: unexpected %q in\n%s", c.args, nw, r.out)
			}
		}
		// Never file completion where a name is expected.
		if strings.Contains(c.args[1], "reset") && !strings.Contains(r.out, ":4") {
			t.Errorf("%v: directive is not NoFileComp:\n%s", c.args, r.out)
		}
	}
}
