package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/diff"
)

// textCase is one command whose human output (stdout) is compared with a
// golden file in testdata/output (go test -update rewrites them).
type textCase struct {
	golden string
	args   []string
	code   int
	o      cliOpts
	// stderr: the golden file holds stderr too (commands whose human
	// output is their status lines: nothing on stdout).
	stderr bool
}

// textCases run, in order, on a fake host where every example is applied
// (the same world as the help examples). Every command is here at least
// once; noGolden lists the ones checked otherwise below.
func textCases() []textCase {
	return []textCase{
		{golden: "version", args: []string{"version"}},
		{golden: "validate", args: []string{"validate", "examples/lab"}},
		{golden: "fmt-check", args: []string{"fmt", "--check", "--diff", "unformatted"}, code: 1},
		{golden: "plan-no-changes", args: []string{"plan", "examples/lab"}},
		{golden: "apply-no-changes", args: []string{"apply", "examples/lab"}},
		{golden: "status", args: []string{"status", "examples/lab"}},
		{golden: "status-all", args: []string{"status", "--all"}},
		{golden: "doctor", args: []string{"doctor"}, code: -1},
		{golden: "verify", args: []string{"verify", "examples/lab"}},
		{golden: "licenses", args: []string{"licenses"}},
		{golden: "licenses-profile", args: []string{"licenses", "examples/install-media"}},
		{golden: "console", args: []string{"console", "--print", "acct-1"}},
		{golden: "stop", args: []string{"stop", "--force", "acct-2"}, stderr: true},
		{golden: "start", args: []string{"start", "acct-2"}, stderr: true},
		{golden: "snapshot-create", args: []string{"snapshot", "create", "acct-1", "text-snap", "--description", "a note"}},
		{golden: "snapshot-list", args: []string{"snapshot", "list", "acct-1", "ops"}},
		{golden: "snapshot-revert", args: []string{"snapshot", "revert", "acct-1", "text-snap"}},
		{golden: "snapshot-delete", args: []string{"snapshot", "delete", "acct-1", "text-snap"}},
		{golden: "snapshot-prune", args: []string{"snapshot", "prune", "--dry-run"}, stderr: true},
		{golden: "snapshot-run-due", args: []string{"snapshot", "run-due", "--now", "2030-01-01T03:00:00Z"}},
		{golden: "exec", args: []string{"exec", "acct-1", "--", "cmd", "/c", "ver"}},
		{golden: "cp", args: []string{"cp", "./build/app.msi", `acct-1:C:\stage\app.msi`}, stderr: true},
		{golden: "test", args: []string{"test", "examples/lab", "smoke", "--results", "out"}},
		{golden: "reset", args: []string{"reset", "--profile", "examples/lab"}},
		{golden: "image-list", args: []string{"image", "list", "examples/golden-image"}},
		{golden: "image-build", args: []string{"image", "build", "examples/golden-image", "w7pro"}},
		{golden: "image-delete", args: []string{"image", "delete", "examples/golden-image", "w7pro", "--version", "3"}},
		{golden: "destroy-only", args: []string{"destroy", "--auto-approve", "--only", "acct-2", "examples/lab"}},
		{golden: "plan-changes", args: []string{"plan", "examples/lab"}, code: 2},
		{golden: "apply-changes", args: []string{"apply", "--auto-approve", "examples/lab"}},
		{golden: "destroy", args: []string{"destroy", "--auto-approve", "examples/quickstart"}},
	}
}

// noGolden are the commands whose output is not a stable text: checked
// by TestCommandTextOutput with assertions instead.
// (servers, and the token commands, whose output is a secret or random).
var noGolden = []string{"daemon", "gen-man", "serve", "token create", "token list", "token revoke"}

// Volatile parts of the output: times, durations, generated snapshot
// names. Replaced before the comparison.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`manual-\d{8}T\d{6}Z`), "manual-<time>"},
	{regexp.MustCompile(`\[ *\d+\.\ds\]`), "[<t>]"},
	{regexp.MustCompile(`\bgo\d+\.\d+(\.\d+)?\b`), "go<version>"},
	// VNC ports follow the order in which VMs started (in parallel).
	{regexp.MustCompile(`(127\.0\.0\.1):59\d\d\b`), "$1:<port>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(Z|[+-]\d\d:\d\d)?`), "<time>"},
	{regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m|h)(\d+(\.\d+)?(ms|s|m))*\b`), "<dur>"},
}

func normalizeOutput(s, workDir string) string {
	s = strings.ReplaceAll(s, workDir, "$WORK")
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// Issue 9: every command's human output is checked in-process against the
// fake host: the examples applied, each command run as a user would, its
// stdout compared with testdata/output/NAME.golden (volatile times and
// durations masked), and no secret in stdout or stderr.
func TestCommandTextOutput(t *testing.T) {
	w := newFakeWorld(t)
	// doctor and verify read the host's conditions: a host root and an
	// iptables of this test's own, so the output is the same everywhere.
	root := filepath.Join(w.dir, "hostroot")
	for p, v := range map[string]string{
		"proc/sys/net/ipv4/conf/all/rp_filter":        "2",
		"proc/sys/net/ipv4/conf/default/rp_filter":    "2",
		"proc/sys/net/bridge/bridge-nf-call-iptables": "1",
		"proc/sys/net/ipv4/ip_forward":                "0",
		"../bin/iptables":                             "#!/bin/sh\n[ \"$1\" = -S ] || exit 2\necho '-P INPUT ACCEPT'\necho '-P FORWARD DROP'\necho '-P OUTPUT ACCEPT'\n",
		"../bin/ebtables":                             "#!/bin/sh\nexit 0\n",
	} {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("LEGACYVM_HOST_ROOT", root)
	t.Setenv("PATH", filepath.Join(w.dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	unformatted := filepath.Join(w.dir, "unformatted", "main.hcl")
	if err := os.MkdirAll(filepath.Dir(unformatted), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unformatted, []byte("vm \"x\" {\nos = \"win7-x64\"\n    memory=\"1GiB\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.applyAll()
	var all strings.Builder
	seen := map[string]bool{}
	tree := newRootCmd(newFactory(&IOStreams{In: strings.NewReader(""), Out: &strings.Builder{}, ErrOut: &strings.Builder{}}))
	for _, c := range textCases() {
		cmd, _, err := tree.Find(c.args)
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.TrimPrefix(cmd.CommandPath(), "legacyvm ")] = true
		r := w.run(c.o, c.args...)
		all.WriteString(r.out + r.err)
		if c.code >= 0 && r.code != c.code {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), r.code, c.code, r.out, r.err)
			continue
		}
		got := fmt.Sprintf("$ legacyvm %s\n%s", strings.Join(c.args, " "), normalizeOutput(r.out, w.dir))
		if c.stderr {
			got += "--- stderr\n" + normalizeOutput(r.err, w.dir)
		}
		path := filepath.Join("testdata", "output", c.golden+".golden")
		if *updateScripts {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (go test -update writes it)", c.golden, err)
			continue
		}
		if got != string(want) {
			t.Errorf("%s: stdout differs from %s (go test -update rewrites it):\n%s", strings.Join(c.args, " "), path, diff.Diff(path, want, "stdout", []byte(got)))
		}
	}

	// daemon: runs until stopped, logs on stderr.
	r := w.run(cliOpts{timeout: 300 * time.Millisecond}, "daemon", "--tick", "50ms")
	all.WriteString(r.out + r.err)
	if r.out != "" || !strings.Contains(r.err, "daemon starting") || !strings.Contains(r.err, "uri=qemu:///system") {
		t.Errorf("daemon: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	seen["daemon"] = true
	// gen-man: one page per command, nothing on stdout.
	dir := t.TempDir()
	r = w.run(cliOpts{}, "gen-man", dir)
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if r.code != 0 || r.out != "" || len(pages) < 20 || !slices.Contains(pages, filepath.Join(dir, "legacyvm-snapshot-create.1")) {
		t.Errorf("gen-man: exit %d, %d pages, stdout %q, stderr %q", r.code, len(pages), r.out, r.err)
	}
	seen["gen-man"] = true
	// serve: a server on a loopback port of the system's choosing, until
	// stopped; logs on stderr.
	r = w.run(cliOpts{timeout: 500 * time.Millisecond}, "serve", "--listen", "127.0.0.1:0")
	all.WriteString(r.out + r.err)
	if r.out != "" || !strings.Contains(r.err, "serving the web console") || !strings.Contains(r.err, "url=http://127.0.0.1:") {
		t.Errorf("serve: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	seen["serve"] = true
	// token create prints the token once (a secret: no golden file);
	// list shows it without its secret; revoke removes it.
	r = w.run(cliOpts{}, "token", "create", "--role", "viewer", "--name", "bob")
	token := strings.TrimSpace(r.out)
	if r.code != 0 || token == "" || strings.Contains(token, "\n") || !regexp.MustCompile(`^created token \S+ \(viewer, every profile\); it is shown only now\n$`).MatchString(r.err) {
		t.Fatalf("token create: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	r = w.run(cliOpts{}, "token", "list")
	if r.code != 0 || !regexp.MustCompile(`(?m)^ID +NAME +ROLE +PROFILES +CREATED\n\S+ +bob +viewer +\(all\) +\d{4}-`).MatchString(r.out) || strings.Contains(r.out+r.err, token) {
		t.Errorf("token list: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	r = w.run(cliOpts{}, "token", "revoke", "bob")
	if r.code != 0 || r.out != "" || !strings.HasPrefix(r.err, "revoked token ") {
		t.Errorf("token revoke: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	r = w.run(cliOpts{}, "token", "list")
	if r.code != 0 || r.out != "" || !strings.Contains(r.err, "no tokens") {
		t.Errorf("token list after revoke: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	for _, p := range []string{"token create", "token list", "token revoke"} {
		seen[p] = true
	}

	for _, secret := range []string{fakeMAK, fakeRetail, fakeKey3, fakeKey4, fakeKey5, fakeKey6, "not-a-real-password"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("a secret (%s...) appears in the output", secret[:5])
		}
	}
	for _, path := range leafCommands(tree) {
		if !seen[path] {
			t.Errorf("%s has no output test (add it to textCases)", path)
		}
	}
	for _, n := range noGolden {
		if !seen[n] {
			t.Errorf("%s is in noGolden but not checked", n)
		}
	}
}
