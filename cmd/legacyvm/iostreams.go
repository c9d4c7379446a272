package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the command's standard streams. Data goes to Out, progress
// and status to ErrOut. Tests inject buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// OutTTY and ErrTTY report whether the streams are terminals (colour,
	// progress bars, interactive confirmation).
	OutTTY, ErrTTY, InTTY bool
	// NoColor turns colour off even on a terminal: NO_COLOR is set
	// (https://no-color.org) or TERM is "dumb".
	NoColor bool
}

func systemStreams() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		InTTY:   term.IsTerminal(int(os.Stdin.Fd())),
		OutTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY:  term.IsTerminal(int(os.Stderr.Fd())),
		NoColor: noColor(os.LookupEnv),
	}
}

// noColor reports whether the environment asks for no colour and no
// escape sequences: NO_COLOR set (to anything), or TERM unset or "dumb".
func noColor(getenv func(string) (string, bool)) bool {
	if _, ok := getenv("NO_COLOR"); ok {
		return true
	}
	t, _ := getenv("TERM")
	return t == "" || t == "dumb"
}

// Status prints a progress line to ErrOut.
func (s *IOStreams) Status(format string, a ...any) {
	fmt.Fprintf(s.ErrOut, format+"\n", a...)
}

// TerminalWidth is the width of stderr when it is a terminal, else 0.
func (s *IOStreams) TerminalWidth() int {
	if f, ok := s.ErrOut.(*os.File); ok && s.ErrTTY {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			return w
		}
	}
	return 0
}
