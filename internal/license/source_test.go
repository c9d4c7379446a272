package license

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSourceRead(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "key.txt")
	writeFile(t, private, []byte("\n  "+fakeKey+"  \n\n"), 0o600)
	open := filepath.Join(dir, "open.txt")
	writeFile(t, open, []byte(fakeKey+"\n"), 0o644)
	groupOnly := filepath.Join(dir, "group.txt")
	writeFile(t, groupOnly, []byte(fakeKey+"\n"), 0o640)
	empty := filepath.Join(dir, "empty.txt")
	writeFile(t, empty, []byte(" \n"), 0o600)

	env := map[string]string{"ACCT_WIN7_KEY": " " + fakeKey + "\n", "BLANK": "  "}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	// Commands find the secret in their environment, so that the command
	// line (which errors may name) does not hold it.
	t.Setenv("LEGACYVM_TEST_SECRET", fakeKey)
	sh := func(script string) Source {
		return Source{Kind: SourceCommand, Argv: []string{"/bin/sh", "-c", script}}
	}
	tests := []struct {
		name    string
		src     Source
		want    string   // value when ok
		errHas  []string // substrings of the error when not ok
		notFile bool     // errors.Is(err, fs.ErrNotExist)
	}{
		{name: "env set, trimmed", src: Source{Kind: SourceEnv, Name: "ACCT_WIN7_KEY"}, want: fakeKey},
		{name: "env missing", src: Source{Kind: SourceEnv, Name: "NOPE_KEY"}, errHas: []string{"NOPE_KEY", "not set"}},
		{name: "env blank", src: Source{Kind: SourceEnv, Name: "BLANK"}, errHas: []string{"BLANK", "empty"}},
		{name: "file 0600 read and trimmed", src: Source{Kind: SourceFile, Path: private}, want: fakeKey},
		{name: "file 0644 refused with chmod hint", src: Source{Kind: SourceFile, Path: open}, errHas: []string{"readable by group or others", "mode 0644", "chmod 600 " + open}},
		{name: "file 0640 refused", src: Source{Kind: SourceFile, Path: groupOnly}, errHas: []string{"chmod 600"}},
		{name: "file missing", src: Source{Kind: SourceFile, Path: filepath.Join(dir, "none.txt")}, errHas: []string{"none.txt"}, notFile: true},
		{name: "file empty", src: Source{Kind: SourceFile, Path: empty}, errHas: []string{"is empty"}},
		{name: "file is a directory", src: Source{Kind: SourceFile, Path: dir}, errHas: []string{"not a regular file"}},
		{name: "command success trimmed", src: sh(`printf '  %s\n' "$LEGACYVM_TEST_SECRET"`), want: fakeKey},
		{name: "command failure, stdout and stderr not echoed", src: sh(`echo "$LEGACYVM_TEST_SECRET"; echo "$LEGACYVM_TEST_SECRET" >&2; exit 3`), errHas: []string{"exit code 3", "command(["}},
		{name: "command prints secret on stderr only", src: sh(`echo "wrong passphrase for $LEGACYVM_TEST_SECRET" >&2; exit 1`), errHas: []string{"exit code 1"}},
		{name: "command prints nothing", src: sh("true"), errHas: []string{"printed nothing"}},
		{name: "command not found", src: Source{Kind: SourceCommand, Argv: []string{"/nonexistent/pass", "show"}}, errHas: []string{"failed"}},
		{name: "command without program", src: Source{Kind: SourceCommand}, errHas: []string{"needs a program"}},
		{name: "literal", src: Source{Kind: SourceLiteral, Literal: " " + fakeKey + " "}, want: fakeKey},
		{name: "none", src: Source{}, errHas: []string{"no source"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.src.Read(context.Background(), getenv)
			if tt.errHas == nil {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if got != tt.want {
					t.Fatalf("Read returned a different value (%d bytes)", len(got))
				}
				return
			}
			if err == nil {
				t.Fatalf("Read succeeded, want an error")
			}
			if got != "" {
				t.Errorf("Read returned a value with its error")
			}
			if !errors.Is(err, ErrSecretUnavailable) {
				t.Errorf("error does not wrap ErrSecretUnavailable: %v", err)
			}
			if tt.notFile && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error does not wrap fs.ErrNotExist: %v", err)
			}
			msg := err.Error()
			assertNoKey(t, "error", msg)
			for _, h := range tt.errHas {
				if !strings.Contains(msg, h) {
					t.Errorf("error %q does not contain %q", msg, h)
				}
			}
		})
	}
}

func TestSourceReadCommandCancelled(t *testing.T) {
	t.Setenv("LEGACYVM_TEST_SECRET", fakeKey)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	src := Source{Kind: SourceCommand, Argv: []string{"/bin/sh", "-c", `echo "$LEGACYVM_TEST_SECRET"; exec sleep 10`}}
	start := time.Now()
	_, err := src.Read(ctx, nil)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Read did not stop the command when the context ended")
	}
	assertNoKey(t, "error", err.Error())
}

func TestSourceStringHidesLiteral(t *testing.T) {
	s := Source{Kind: SourceLiteral, Literal: fakeKey}
	for _, out := range []string{s.String(), s.GoString(), fmt.Sprintf("%v %+v %#v %s", s, s, s, s)} {
		// %+v prints struct fields: String takes precedence, but check.
		assertNoKey(t, "String", out)
	}
	cases := map[string]Source{
		`env("ACCT_WIN7_KEY")`:                 {Kind: SourceEnv, Name: "ACCT_WIN7_KEY"},
		`file("/etc/k.txt")`:                   {Kind: SourceFile, Path: "/etc/k.txt"},
		`command(["pass", "win7/acct"])`:       {Kind: SourceCommand, Argv: []string{"pass", "win7/acct"}},
		`(none)`:                               {},
		`license.Source(env("X"))`:             {Kind: SourceEnv, Name: "X"},
		`license.Source((literal in profile))`: {Kind: SourceLiteral, Literal: "x"},
	}
	for want, src := range cases {
		got := src.String()
		if strings.HasPrefix(want, "license.Source(") {
			got = src.GoString()
		}
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// assertNoKey fails when s shows the fake key or any group of it except the
// last (which legacyvm may show).
func assertNoKey(t *testing.T, what, s string) {
	t.Helper()
	up := strings.ToUpper(s)
	if strings.Contains(up, strings.ReplaceAll(fakeKey, "-", "")) {
		t.Fatalf("%s contains the key", what)
	}
	for _, g := range strings.Split(fakeKey, "-")[:4] {
		if strings.Contains(up, g) {
			t.Fatalf("%s contains a group of the key", what)
		}
	}
}

// TestSourceReadCommandBounded: a command() source cannot hang or flood
// Read: a background child that keeps standard output open, endless
// output, and a command that never ends all come back within the deadline
// (LEGACYVM_SECRET_COMMAND_TIMEOUT), without the secret in the error.
func TestSourceReadCommandBounded(t *testing.T) {
	t.Setenv("LEGACYVM_TEST_SECRET", fakeKey)
	sh := func(script string) Source {
		return Source{Kind: SourceCommand, Argv: []string{"/bin/sh", "-c", script}}
	}
	env := map[string]string{CommandTimeoutEnv: "3s"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name   string
		src    Source
		want   string
		errHas string
	}{
		{name: "background child keeps stdout open", src: sh(`echo "$LEGACYVM_TEST_SECRET"; sleep 600 & exit 0`), want: fakeKey},
		{name: "endless output", src: sh(`while :; do echo "$LEGACYVM_TEST_SECRET"; done`), errHas: "printed more than 64 KiB"},
		{name: "endless output ignoring SIGPIPE", src: sh(`trap '' PIPE; while :; do echo "$LEGACYVM_TEST_SECRET" 2>/dev/null; done`), errHas: "printed more than 64 KiB"},
		{name: "never ends", src: sh(`echo "$LEGACYVM_TEST_SECRET"; exec sleep 600`), errHas: "did not finish within 3s"},
		{name: "never ends, stdout held by a child", src: sh(`sleep 600 & wait`), errHas: "did not finish within 3s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := tt.src.Read(context.Background(), getenv)
			if el := time.Since(start); el > 30*time.Second {
				t.Errorf("Read took %s", el)
			}
			if tt.errHas == "" {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if got != tt.want {
					t.Fatalf("Read returned a different value (%d bytes)", len(got))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) || !errors.Is(err, ErrSecretUnavailable) {
				t.Fatalf("err = %v, want one containing %q", err, tt.errHas)
			}
			assertNoKey(t, "error", err.Error())
		})
	}
	env[CommandTimeoutEnv] = "soon"
	if _, err := sh("echo x").Read(context.Background(), getenv); err == nil || !strings.Contains(err.Error(), CommandTimeoutEnv) {
		t.Errorf("a bad %s: err = %v", CommandTimeoutEnv, err)
	}
}
