package guestagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// DefaultMaxOutput is how much stdout+stderr Run passes on by default
// before it kills the guest process: enough for build and test logs, small
// enough that a guest printing forever cannot fill the host's disk.
const DefaultMaxOutput = 64 << 20

var (
	// ErrTimeout: the guest process ran longer than allowed and was killed.
	ErrTimeout = errors.New("timed out")
	// ErrOutputLimit: the guest process printed more than allowed and was
	// killed.
	ErrOutputLimit = errors.New("output limit exceeded")
)

// RunOptions describe one command run in the guest.
type RunOptions struct {
	Argv []string
	// Env entries NAME=VALUE are added to the agent's environment.
	Env []string
	// Cwd is the working directory ("" = the agent's).
	Cwd string
	// Stdout and Stderr receive the output as it arrives (nil: dropped).
	Stdout, Stderr io.Writer
	// Timeout kills the process after this long (0 = no limit).
	Timeout time.Duration
	// MaxOutput bounds stdout+stderr (0 = DefaultMaxOutput).
	MaxOutput int64
	// Poll is the interval between polls (0 = 250 ms).
	Poll time.Duration
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// Run runs o.Argv in the guest through f's wrapper and streams its output
// (the wrapper sends it to files in f.TempDir that are read as they grow:
// guest-exec's own capture returns output only once the process ended).
// It returns the guest's exit code (128+N for a signal). On timeout, output
// overflow or cancellation it kills the guest process with a second
// guest-exec and returns ErrTimeout, ErrOutputLimit or ctx's error. The
// output files are removed afterwards.
func (c *Client) Run(ctx context.Context, f Flavor, o RunOptions) (int, error) {
	if len(o.Argv) == 0 {
		return -1, errors.New("run: no command")
	}
	for _, kv := range o.Env {
		if !envName.MatchString(kv) {
			return -1, fmt.Errorf("run: environment entry %q: want NAME=VALUE", kv)
		}
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	base := f.Join(f.TempDir(), "legacyvm-exec-"+hex.EncodeToString(rnd[:]))
	streams := []*stream{{path: base + ".out", w: o.Stdout}, {path: base + ".err", w: o.Stderr}}
	prog, args := f.Wrap(o.Argv, o.Env, o.Cwd, streams[0].path, streams[1].path)
	pid, err := c.Exec(ctx, ExecRequest{Path: prog, Args: args})
	if err != nil {
		return -1, fmt.Errorf("run %s in %q: %w", Sanitize(o.Argv[0], 80), c.domain, err)
	}
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	var total int64
	cleanup := func(kill bool) {
		// A context of its own: the caller's may be cancelled already.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*c.timeout())
		defer cancel()
		if kill {
			p, a := f.Kill(pid)
			_, _, _, _ = c.Capture(cctx, p, a, 1024)
		}
		for _, s := range streams {
			if s.open {
				_ = c.FileClose(cctx, s.h)
			}
		}
		// Waited for: the agent keeps a process's record until its status
		// has been read.
		p, a := f.Remove(streams[0].path, streams[1].path)
		_, _, _, _ = c.Capture(cctx, p, a, 1024)
	}
	pump := func() error {
		for _, s := range streams {
			n, err := c.pumpStream(ctx, s, o.MaxOutput-total)
			total += n
			if err != nil {
				return err
			}
		}
		return nil
	}
	for {
		st, err := c.ExecStatus(ctx, pid, 0)
		if err != nil {
			cleanup(ctx.Err() != nil)
			return -1, fmt.Errorf("run %s in %q: %w", Sanitize(o.Argv[0], 80), c.domain, err)
		}
		if err := pump(); err != nil {
			cleanup(true)
			if errors.Is(err, ErrOutputLimit) {
				return -1, fmt.Errorf("run %s in %q: %w (more than %d bytes of output; the process was killed)", Sanitize(o.Argv[0], 80), c.domain, ErrOutputLimit, o.MaxOutput)
			}
			return -1, fmt.Errorf("run %s in %q: %w", Sanitize(o.Argv[0], 80), c.domain, err)
		}
		if st.Exited {
			cleanup(false)
			return st.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			cleanup(true)
			return -1, fmt.Errorf("run %s in %q: %w (the process was killed)", Sanitize(o.Argv[0], 80), c.domain, ctx.Err())
		case <-deadline:
			cleanup(true)
			return -1, fmt.Errorf("run %s in %q: %w after %s (the process was killed)", Sanitize(o.Argv[0], 80), c.domain, ErrTimeout, o.Timeout)
		case <-time.After(o.Poll):
		}
	}
}

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// stream is one output file being followed.
type stream struct {
	path string
	w    io.Writer
	h    int64
	open bool
	off  int64
	eof  bool
}

// pumpStream copies what is new in s to its writer, at most budget bytes
// (more is ErrOutputLimit). A file the wrapper has not created yet is
// skipped.
func (c *Client) pumpStream(ctx context.Context, s *stream, budget int64) (int64, error) {
	if !s.open {
		h, err := c.FileOpen(ctx, s.path, "rb")
		if err != nil {
			return 0, nil // not created yet (or gone): next poll
		}
		s.h, s.open = h, true
	}
	if s.eof {
		// The agent's stdio stream keeps its EOF flag: a seek clears it.
		if err := c.FileSeek(ctx, s.h, s.off); err != nil {
			return 0, err
		}
		s.eof = false
	}
	var n int64
	for {
		want := int64(ReadChunk)
		if budget-n+1 < want {
			want = budget - n + 1
		}
		b, eof, err := c.FileRead(ctx, s.h, int(want))
		if err != nil {
			return n, err
		}
		if n+int64(len(b)) > budget {
			// Pass on what fits, so the caller sees the first budget
			// bytes (--max-output of them), then stop.
			if fit := budget - n; fit > 0 && s.w != nil {
				if _, err := s.w.Write(b[:fit]); err != nil {
					return n, err
				}
				n += fit
				s.off += fit
			}
			return n, ErrOutputLimit
		}
		if s.w != nil && len(b) > 0 {
			if _, err := s.w.Write(b); err != nil {
				return n, err
			}
		}
		n += int64(len(b))
		s.off += int64(len(b))
		if eof || len(b) == 0 {
			s.eof = true
			return n, nil
		}
	}
}

// Capture runs prog with capture-output and waits for it (up to the
// client's timeout times four), returning its exit code and output (each
// stream at most max bytes).
func (c *Client) Capture(ctx context.Context, prog string, args []string, max int) (int, []byte, []byte, error) {
	pid, err := c.Exec(ctx, ExecRequest{Path: prog, Args: args, Capture: true})
	if err != nil {
		return -1, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*c.timeout())
	defer cancel()
	wait := 20 * time.Millisecond
	for {
		st, err := c.ExecStatus(ctx, pid, max)
		if err != nil {
			return -1, nil, nil, err
		}
		if st.Exited {
			if st.Truncated {
				return -1, nil, nil, c.violation("guest-exec-status", "%s: output truncated by the agent", Sanitize(prog, 60))
			}
			return st.ExitCode, st.Stdout, st.Stderr, nil
		}
		select {
		case <-ctx.Done():
			return -1, nil, nil, fmt.Errorf("%s in %q: %w", Sanitize(prog, 60), c.domain, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}
