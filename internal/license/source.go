package license

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CommandTimeout is how long a command() secret source may run when
// LEGACYVM_SECRET_COMMAND_TIMEOUT (a Go duration such as "10s") does not
// say otherwise. The command is killed (with every process it started in
// its process group) when the time runs out.
const CommandTimeout = 30 * time.Second

// CommandTimeoutEnv overrides CommandTimeout.
const CommandTimeoutEnv = "LEGACYVM_SECRET_COMMAND_TIMEOUT"

// MaxCommandOutput bounds what a command() secret source may print: a
// product key or password is a few dozen bytes, more is a mistake.
const MaxCommandOutput = 64 << 10

// commandWaitDelay is how long Read waits, after the command exited (or
// was killed), for the processes it left behind to close its output.
const commandWaitDelay = 2 * time.Second

// SourceKind says where a secret value comes from.
type SourceKind int

const (
	// SourceNone means no value was given.
	SourceNone SourceKind = iota
	// SourceLiteral is a value written in the profile itself (discouraged).
	SourceLiteral
	// SourceEnv reads an environment variable at the time of use.
	SourceEnv
	// SourceFile reads a file that only its owner may read.
	SourceFile
	// SourceCommand runs a program (for example a password manager) and
	// takes its standard output.
	SourceCommand
)

// Source describes where a secret lives without holding it (except for
// SourceLiteral). String never shows a literal value.
type Source struct {
	Kind    SourceKind
	Literal string   // SourceLiteral only
	Name    string   // SourceEnv: variable name
	Path    string   // SourceFile: absolute path
	Argv    []string // SourceCommand: program and arguments
}

// String describes the source the way a profile writes it, e.g.
// env("ACCT_WIN7_KEY"); a literal prints as "(literal in profile)".
func (s Source) String() string {
	switch s.Kind {
	case SourceLiteral:
		return "(literal in profile)"
	case SourceEnv:
		return "env(" + strconv.Quote(s.Name) + ")"
	case SourceFile:
		return "file(" + strconv.Quote(s.Path) + ")"
	case SourceCommand:
		q := make([]string, len(s.Argv))
		for i, a := range s.Argv {
			q[i] = strconv.Quote(a)
		}
		return "command([" + strings.Join(q, ", ") + "])"
	}
	return "(none)"
}

// GoString keeps %#v from printing a literal value.
func (s Source) GoString() string { return "license.Source(" + s.String() + ")" }

// ErrSecretUnavailable is wrapped by Read errors caused by a missing
// variable, file or failed command.
var ErrSecretUnavailable = errors.New("secret unavailable")

// Read fetches the secret. Errors describe the source, never the value:
// a command's standard error is not included either (a failing secret tool
// may echo what it holds). Surrounding whitespace is trimmed; an empty
// value is an error. getenv may be nil (os.LookupEnv).
func (s Source) Read(ctx context.Context, getenv func(string) (string, bool)) (string, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	switch s.Kind {
	case SourceLiteral:
		v := strings.TrimSpace(s.Literal)
		if v == "" {
			return "", fmt.Errorf("%w: the value written in the profile is empty", ErrSecretUnavailable)
		}
		return v, nil
	case SourceEnv:
		v, ok := getenv(s.Name)
		if !ok {
			return "", fmt.Errorf("%w: environment variable %s is not set", ErrSecretUnavailable, s.Name)
		}
		if v = strings.TrimSpace(v); v == "" {
			return "", fmt.Errorf("%w: environment variable %s is empty", ErrSecretUnavailable, s.Name)
		}
		return v, nil
	case SourceFile:
		st, err := os.Stat(s.Path)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrSecretUnavailable, err)
		}
		if !st.Mode().IsRegular() {
			return "", fmt.Errorf("%w: %s is not a regular file", ErrSecretUnavailable, s.Path)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%w: %s is readable by group or others (mode %04o); run: chmod 600 %s", ErrSecretUnavailable, s.Path, st.Mode().Perm(), s.Path)
		}
		if st.Size() > MaxCommandOutput {
			return "", fmt.Errorf("%w: %s is larger than %d KiB; a secret file holds only the secret", ErrSecretUnavailable, s.Path, MaxCommandOutput>>10)
		}
		b, err := os.ReadFile(s.Path)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrSecretUnavailable, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%w: %s is empty", ErrSecretUnavailable, s.Path)
		}
		return v, nil
	case SourceCommand:
		if len(s.Argv) == 0 {
			return "", fmt.Errorf("%w: command() needs a program", ErrSecretUnavailable)
		}
		return s.readCommand(ctx, getenv)
	}
	return "", fmt.Errorf("%w: no source given", ErrSecretUnavailable)
}

// readCommand runs a command() source: with a deadline, in its own process
// group (killed as a whole on timeout or when it prints too much), with
// WaitDelay so a background child that keeps standard output open cannot
// hold Read, and with its output capped at MaxCommandOutput.
func (s Source) readCommand(ctx context.Context, getenv func(string) (string, bool)) (string, error) {
	timeout := CommandTimeout
	if v, ok := getenv(CommandTimeoutEnv); ok && strings.TrimSpace(v) != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return "", fmt.Errorf("%w: %s=%q is not a positive duration such as 30s", ErrSecretUnavailable, CommandTimeoutEnv, v)
		}
		timeout = d
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, s.Argv[0], s.Argv[1:]...)
	out := &cappedBuffer{max: MaxCommandOutput, full: cancel}
	// stderr goes to /dev/null, never shown: a failing secret tool may
	// echo input. The terminal is not offered either (no prompts).
	cmd.Stdout, cmd.Stderr, cmd.Stdin = out, nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = commandWaitDelay
	err := cmd.Run()
	if cmd.Process != nil {
		// Whatever the command left running in its group goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	switch {
	case out.overflow:
		return "", fmt.Errorf("%w: %s printed more than %d KiB; a secret command must print only the secret", ErrSecretUnavailable, s.String(), MaxCommandOutput>>10)
	case ctx.Err() != nil:
		return "", fmt.Errorf("%w: %s: %w", ErrSecretUnavailable, s.String(), ctx.Err())
	case cctx.Err() != nil:
		return "", fmt.Errorf("%w: %s did not finish within %s (set %s to allow longer): %w", ErrSecretUnavailable, s.String(), timeout, CommandTimeoutEnv, context.DeadlineExceeded)
	case errors.Is(err, exec.ErrWaitDelay):
		// It exited successfully but a child kept its output open: the
		// child is gone now and the output is complete.
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%w: %s failed with exit code %d", ErrSecretUnavailable, s.String(), ee.ExitCode())
		}
		return "", fmt.Errorf("%w: %s failed: %w", ErrSecretUnavailable, s.String(), err)
	}
	v := strings.TrimSpace(out.String())
	if v == "" {
		return "", fmt.Errorf("%w: %s printed nothing", ErrSecretUnavailable, s.String())
	}
	return v, nil
}

// cappedBuffer keeps at most max bytes; a write beyond that fails and
// calls full (which stops the command).
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
	full     func()
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.overflow || b.buf.Len()+len(p) > b.max {
		b.overflow = true
		b.full()
		return 0, errors.New("output limit reached")
	}
	return b.buf.Write(p)
}

func (b *cappedBuffer) String() string { return b.buf.String() }
