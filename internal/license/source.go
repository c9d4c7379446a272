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

// Read fetches the secret. Errors describe the source, never the value.
// Surrounding whitespace is trimmed. getenv may be nil (os.LookupEnv).
func (s Source) Read(ctx context.Context, getenv func(string) (string, bool)) (string, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	switch s.Kind {
	case SourceLiteral:
		return strings.TrimSpace(s.Literal), nil
	case SourceEnv:
		v, ok := getenv(s.Name)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("%w: environment variable %s is not set", ErrSecretUnavailable, s.Name)
		}
		return strings.TrimSpace(v), nil
	case SourceFile:
		st, err := os.Stat(s.Path)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrSecretUnavailable, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%w: %s is readable by group or others (mode %04o); run: chmod 600 %s", ErrSecretUnavailable, s.Path, st.Mode().Perm(), s.Path)
		}
		b, err := os.ReadFile(s.Path)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrSecretUnavailable, err)
		}
		return strings.TrimSpace(string(b)), nil
	case SourceCommand:
		if len(s.Argv) == 0 {
			return "", fmt.Errorf("%w: command() needs a program", ErrSecretUnavailable)
		}
		cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			// stderr is not included: a failing secret tool may echo input.
			return "", fmt.Errorf("%w: %s failed: %v", ErrSecretUnavailable, s.String(), err)
		}
		return strings.TrimSpace(out.String()), nil
	}
	return "", fmt.Errorf("%w: no source given", ErrSecretUnavailable)
}
