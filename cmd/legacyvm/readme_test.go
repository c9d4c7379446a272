package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/rogpeppe/go-internal/diff"

	"github.com/legacyvm/legacyvm/profiles"
)

var hclFenceRE = regexp.MustCompile("(?s)```hcl\n(.*?)```")

// Issue 10: the README's own HCL snippet was not fmt-clean. Every ```hcl
// block of README.md and docs/*.md must be what legacyvm fmt writes, and
// must validate as a profile (no secret is read).
func TestDocSnippetsAreFormattedAndValid(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range hclFenceRE.FindAllSubmatch(b, -1) {
			n++
			src := m[1]
			wf, diags := hclwrite.ParseConfig(src, f, hcl.InitialPos)
			if diags.HasErrors() {
				t.Errorf("%s snippet %d: %s", f, i+1, diags.Error())
				continue
			}
			if out := hclwrite.Format(wf.Bytes()); !bytes.Equal(out, src) {
				t.Errorf("%s snippet %d is not formatted (legacyvm fmt):\n%s", f, i+1, diff.Diff("snippet", src, "formatted", out))
			}
			// Every snippet is a whole profile: it must validate.
			{
				dir := filepath.Join(t.TempDir(), "acct")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "main.hcl"), src, 0o644); err != nil {
					t.Fatal(err)
				}
				if _, diags := profiles.Load(dir, profiles.LoadOptions{Getenv: func(string) (string, bool) { return "", false }}); diags.HasErrors() {
					t.Errorf("%s snippet %d does not validate: %s", f, i+1, diags.Error())
				}
			}
		}
	}
	if n == 0 || !strings.Contains(strings.Join(files, " "), "README.md") {
		t.Fatal("no HCL snippets found")
	}
}

// Issue 10: on a bare Debian 12 the README's commands failed at once (make:
// command not found; then errno.h: setup-host.sh installed gcc without
// libc6-dev). The README's two commands need only sh and Go, .ci/run runs
// exactly the second, and setup-host.sh installs the toolchain cgo needs.
// (scripts/fresh-check.sh runs them on a debootstrapped root.)
func TestReadmeCommandsNeedOnlyShAndGo(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no sh block")
	}
	var cmds []string
	for _, l := range strings.Split(string(m[1]), "\n") {
		if c, _, _ := strings.Cut(l, "#"); strings.TrimSpace(c) != "" {
			cmds = append(cmds, strings.TrimSpace(c))
		}
	}
	if len(cmds) != 2 {
		t.Fatalf("README's first sh block has %d commands, want 2: %q", len(cmds), cmds)
	}
	for _, c := range cmds {
		if !strings.HasPrefix(c, "./scripts/run ") {
			t.Errorf("README command %q needs more than sh and Go (make is not on a bare Debian 12)", c)
		}
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "\nexec "+cmds[1]+"\n") {
		t.Errorf(".ci/run does not run exactly the README's second command %q:\n%s", cmds[1], ci)
	}
	setup, err := os.ReadFile("../../scripts/setup-host.sh")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := regexp.MustCompile(`(?s)PKGS="([^"]*)"`).FindSubmatch(setup)
	if pkgs == nil {
		t.Fatal("setup-host.sh has no PKGS")
	}
	have := map[string]bool{}
	for _, p := range strings.Fields(string(pkgs[1])) {
		have[p] = true
	}
	for _, p := range []string{"make", "gcc", "libc6-dev", "pkg-config", "libvirt-dev", "git", "ca-certificates"} {
		if !have[p] {
			t.Errorf("setup-host.sh does not install %s", p)
		}
	}
	run, err := os.ReadFile("../../scripts/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(run), "#!/bin/sh\n") || !strings.Contains(string(run), "./scripts/setup-host.sh") {
		t.Errorf("scripts/run must be a sh script that runs setup-host.sh first")
	}
}
