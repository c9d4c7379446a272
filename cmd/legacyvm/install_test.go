package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The man pages come from the command tree (cobra/doc): one page per
// command, with its examples.
func TestGenMan(t *testing.T) {
	dir := t.TempDir()
	w := newFakeWorld(t)
	if r := w.run(cliOpts{}, "gen-man", dir); r.code != 0 {
		t.Fatalf("gen-man: exit %d\n%s", r.code, r.err)
	}
	for _, page := range []string{"legacyvm.1", "legacyvm-apply.1", "legacyvm-reset.1", "legacyvm-snapshot-revert.1", "legacyvm-fmt.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		if !strings.Contains(string(b), ".TH \"LEGACYVM\" \"1\"") || !strings.Contains(string(b), ".SH NAME") {
			t.Errorf("%s is not a section 1 man page:\n%.300s", page, b)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "legacyvm-reset.1"))
	if !strings.Contains(string(b), "EXAMPLE") || !strings.Contains(string(b), "reset --all --yes") {
		t.Errorf("legacyvm-reset.1 lacks its examples")
	}
	if _, err := os.Stat(filepath.Join(dir, "legacyvm-gen-man.1")); err == nil {
		t.Error("the hidden gen-man command has a man page")
	}
}

// Issue 10: nothing installed the binary the README's systemd unit runs.
// make install puts the binary, man pages, completions and the unit under
// DESTDIR/PREFIX.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("make is missing (scripts/setup-host.sh installs it)")
		}
		t.Skip("make is missing")
	}
	dest, bin := t.TempDir(), t.TempDir()
	cmd := exec.Command("make", "-C", "../..", "install", "DESTDIR="+dest, "BIN="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{
		"usr/local/bin/legacyvm",
		"usr/local/share/man/man1/legacyvm.1",
		"usr/local/share/man/man1/legacyvm-apply.1",
		"usr/local/share/bash-completion/completions/legacyvm",
		"usr/local/share/zsh/site-functions/_legacyvm",
		"usr/local/share/fish/vendor_completions.d/legacyvm.fish",
		"usr/local/lib/systemd/system/legacyvm.service",
	} {
		st, err := os.Stat(filepath.Join(dest, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s not installed (%v)", f, err)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "usr/local/lib/systemd/system/legacyvm.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/legacyvm daemon --log-json") {
		t.Errorf("unit does not run the installed binary:\n%s", unit)
	}
	// The README shows the same unit.
	readme, _ := os.ReadFile("../../README.md")
	for _, l := range []string{"ExecStart=/usr/local/bin/legacyvm daemon --log-json", "After=libvirtd.service"} {
		if !strings.Contains(string(readme), l) || !strings.Contains(string(unit), l) {
			t.Errorf("README and installed unit disagree on %q", l)
		}
	}
	out, err = exec.Command(filepath.Join(dest, "usr/local/bin/legacyvm"), "version").CombinedOutput()
	if err != nil {
		t.Errorf("installed binary: %v\n%s", err, out)
	}
}
