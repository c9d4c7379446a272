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
)

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
		cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
		var out bytes.Buffer
		// stderr is discarded, not shown: a failing secret tool may echo
		// input. The terminal is not offered either (no prompts).
		cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, nil, nil
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("%w: %s: %w", ErrSecretUnavailable, s.String(), ctx.Err())
			}
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
	return "", fmt.Errorf("%w: no source given", ErrSecretUnavailable)
}
