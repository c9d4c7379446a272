package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/legacyvm/legacyvm/internal/guestagent"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// TestOptions are the inputs of legacyvm test.
type TestOptions struct {
	IO           *IOStreams
	Factory      *Factory
	Path         string
	Names        []string
	Results      string
	JUnit        string
	MaxOutput    string
	AgentTimeout time.Duration
	// ReadyTimeout bounds the wait for a VM's agent after a reset.
	ReadyTimeout time.Duration
	// ResetTimeout bounds the after-reset, which runs on a context of
	// its own (it must happen even after Ctrl-C).
	ResetTimeout time.Duration
	// LockWait is how long to wait for another command holding a VM.
	LockWait time.Duration
}

func NewCmdTest(f *Factory, runF func(*TestOptions) error) *cobra.Command {
	o := &TestOptions{}
	cmd := &cobra.Command{
		Use:   "test [PATH] [NAME...]",
		Short: "Run a profile's test blocks on their VMs: reset, copy in, run, copy out, reset",
		Long: `Test runs the profile's test blocks (all, or the ones named) on each of their
VMs, several VMs at once (--parallelism). For each VM: reset to the clean
baseline (reset = "before" or "both"), the steps in order (copy_in, run,
copy_out) through the guest agent, then reset again (reset = "after" or "both")
even when a step failed or Ctrl-C was pressed.

Each VM's output is streamed to stderr prefixed with [test/vm]. Step output and
copied-out files are kept under --results DIR/<test>/<vm>/; --junit FILE writes
a JUnit XML report (one test case per VM and step) that CI servers read; -o json
prints the results on stdout. The exit status is 1 when any step failed.`,
		Example: `  legacyvm test examples/lab
  legacyvm test examples/lab smoke --results out --junit out/junit.xml
  legacyvm test examples/lab --parallelism 4 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.IO, o.Factory = f.IO, f
			o.Path = pathArg(args)
			if len(args) > 1 {
				o.Names = args[1:]
			}
			if runF != nil {
				return runF(o)
			}
			return testRun(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Results, "results", "results", "directory for step output and copied-out files")
	fl.StringVar(&o.JUnit, "junit", "", "write a JUnit XML report to this file")
	fl.StringVar(&o.MaxOutput, "max-output", "64MiB", "most stdout+stderr one run step may print (the process is killed beyond)")
	fl.DurationVar(&o.AgentTimeout, "agent-timeout", guestagent.DefaultTimeout, "how long to wait for each guest agent reply")
	fl.DurationVar(&o.ReadyTimeout, "ready-timeout", 5*time.Minute, "how long to wait for a VM's guest agent after a reset")
	fl.DurationVar(&o.ResetTimeout, "reset-timeout", 5*time.Minute, "how long the final reset may take")
	addLockWaitFlag(cmd, &o.LockWait)
	return cmd
}

// StepResult is the outcome of one step on one VM.
type StepResult struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Status is "passed", "failed" (the step ran and did not meet its
	// expectation), "error" (it could not run) or "skipped".
	Status   string        `json:"status"`
	Message  string        `json:"message,omitempty"`
	ExitCode *int          `json:"exit_code,omitempty"`
	Took     time.Duration `json:"took_ns"`
	// Output is the step's output file (run steps), relative to the
	// results directory.
	Output string `json:"output,omitempty"`
	stdout []byte
}

// TestVMResult is one test on one VM.
type TestVMResult struct {
	Test  string        `json:"test"`
	VM    string        `json:"vm"`
	Steps []*StepResult `json:"steps"`
	// Reset problems (the after-reset failing fails the run).
	ResetError string        `json:"reset_error,omitempty"`
	Took       time.Duration `json:"took_ns"`
	Passed     bool          `json:"passed"`
}

func testRun(ctx context.Context, o *TestOptions) error {
	f := o.Factory
	p, err := f.loadProfile(o.Path)
	if err != nil {
		return err
	}
	max, err := profiles.ParseSize(o.MaxOutput)
	if err != nil || max == 0 {
		return fmt.Errorf("--max-output %q: want a size such as 64MiB", o.MaxOutput)
	}
	tests := p.Tests
	if len(o.Names) > 0 {
		byName := map[string]*profiles.Test{}
		for _, t := range p.Tests {
			byName[t.Name] = t
		}
		tests = nil
		for _, n := range o.Names {
			t, ok := byName[n]
			if !ok {
				var names []string
				for k := range byName {
					names = append(names, k)
				}
				sort.Strings(names)
				return fmt.Errorf("profile %s has no test %q (tests: %s)", p.Name, n, strings.Join(names, ", "))
			}
			tests = append(tests, t)
		}
	}
	if len(tests) == 0 {
		return fmt.Errorf("profile %s has no test blocks (see docs/guest-agent.md)", p.Name)
	}
	type job struct {
		test *profiles.Test
		inst *profiles.Instance
	}
	var jobs []job
	for _, t := range tests {
		for _, vm := range t.VMs {
			for _, in := range p.Instances {
				if in.VM == vm {
					jobs = append(jobs, job{t, in})
				}
			}
		}
	}
	uri := f.URI()
	if len(jobs) > 0 && jobs[0].inst.VM.Host != nil && jobs[0].inst.VM.Host.URI != "" {
		uri = jobs[0].inst.VM.Host.URI
	}
	hv, err := f.Connect(ctx, uri)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", uri, err)
	}
	defer hv.Close()
	eng := f.engine(hv)
	eng.Hook = nil
	results := make([]*TestVMResult, len(jobs))
	var outMu sync.Mutex
	g := errgroup.Group{}
	g.SetLimit(f.Parallelism)
	for i, j := range jobs {
		g.Go(func() error {
			pw := &prefixWriter{mu: &outMu, w: o.IO.ErrOut, prefix: fmt.Sprintf("[%s/%s] ", j.test.Name, j.inst.Name)}
			// The VM is the test's from the first reset to the last: a
			// reset, snapshot or apply of it waits (and so does another
			// test of the same VM).
			locks, err := f.lockVMs(ctx, uri, []string{j.inst.Name}, "legacyvm test "+j.test.Name, o.LockWait)
			if err != nil {
				results[i] = lockFailed(j.test, j.inst.Name, err)
				return nil
			}
			results[i] = runTestOnVM(ctx, o, hv, eng, j.test, j.inst.Name, int64(max), pw)
			locks.Release()
			pw.Flush()
			return nil
		})
	}
	_ = g.Wait()

	if o.JUnit != "" {
		if err := writeJUnit(o.JUnit, results); err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range results {
		if !r.Passed {
			failed++
		}
	}
	if f.JSON() {
		if err := writeJSON(f, testDoc{docHeader: v1, Profile: p.Name, Failed: failed, Results: nonNil(results)}); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			status := "PASS"
			if !r.Passed {
				status = "FAIL"
			}
			fmt.Fprintf(o.IO.Out, "%s  %s on %s (%s)\n", status, r.Test, r.VM, r.Took.Round(100*time.Millisecond))
			for _, s := range r.Steps {
				line := fmt.Sprintf("      %-7s %s", s.Status, s.Name)
				if s.Message != "" {
					line += ": " + s.Message
				}
				fmt.Fprintln(o.IO.Out, line)
			}
			if r.ResetError != "" {
				fmt.Fprintf(o.IO.Out, "      reset   %s\n", r.ResetError)
			}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if failed > 0 {
		return silent(exitError)
	}
	return nil
}

// lockFailed is the result of a test whose VM could not be locked.
func lockFailed(t *profiles.Test, vm string, err error) *TestVMResult {
	r := &TestVMResult{Test: t.Name, VM: vm}
	for i, s := range t.Steps {
		st := &StepResult{Name: s.Name, Type: s.Type, Status: "skipped"}
		if i == 0 {
			st.Status, st.Message = "error", err.Error()
		}
		r.Steps = append(r.Steps, st)
	}
	return r
}

// runTestOnVM runs one test on one VM instance.
func runTestOnVM(ctx context.Context, o *TestOptions, hv virt.Hypervisor, eng *orchestrator.Session, t *profiles.Test, vm string, maxOutput int64, out *prefixWriter) *TestVMResult {
	start := time.Now()
	r := &TestVMResult{Test: t.Name, VM: vm}
	dir := filepath.Join(o.Results, t.Name, vm)
	for _, s := range t.Steps {
		r.Steps = append(r.Steps, &StepResult{Name: s.Name, Type: s.Type, Status: "skipped"})
	}
	failed := false
	fail := func(i int, status, msg string) {
		r.Steps[i].Status, r.Steps[i].Message = status, msg
		failed = true
		fmt.Fprintf(out, "step %d %s: %s: %s\n", i+1, r.Steps[i].Name, status, msg)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.ResetError = err.Error()
		r.Took = time.Since(start)
		return r
	}
	reset := func(ctx context.Context) error {
		res, err := eng.Reset(ctx, []string{vm}, "")
		if err != nil {
			return err
		}
		for _, rr := range res {
			if rr.Err != "" {
				return errors.New(rr.Err)
			}
			if rr.State == virt.StateShutoff {
				for _, sr := range eng.Start(ctx, []string{vm}) {
					if sr.Err != "" {
						return fmt.Errorf("reverted, but start failed: %s", sr.Err)
					}
				}
			}
		}
		fmt.Fprintf(out, "reset to baseline\n")
		return nil
	}
	c := guestagent.New(hv, vm)
	c.Timeout = o.AgentTimeout
	var fl guestagent.Flavor
	setup := func() error {
		if t.Reset == "before" || t.Reset == "both" {
			if err := reset(ctx); err != nil {
				return fmt.Errorf("reset before the test: %w", err)
			}
		}
		d, err := hv.GetDomain(ctx, vm)
		switch {
		case err != nil:
			return fmt.Errorf("%w (run legacyvm apply first)", err)
		case d.Metadata == nil:
			return fmt.Errorf("domain %q: %w", vm, orchestrator.ErrNotManaged)
		case !d.GuestAgent:
			return fmt.Errorf("%s has no guest agent channel: set guest_agent = true in its vm block and run legacyvm apply", vm)
		case d.State != virt.StateRunning:
			return fmt.Errorf("%s is %s: start it (legacyvm start %s) or let the test reset it", vm, d.State, vm)
		}
		rctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
		defer cancel()
		if err := c.WaitReady(rctx, time.Second); err != nil {
			return err
		}
		fl, err = guestagent.DetectFlavor(ctx, c)
		return err
	}
	if err := setup(); err != nil && len(r.Steps) > 0 {
		fail(0, "error", err.Error())
	}
	for i, s := range t.Steps {
		if failed {
			break
		}
		if ctx.Err() != nil {
			fail(i, "error", "interrupted")
			break
		}
		sr := r.Steps[i]
		t0 := time.Now()
		fmt.Fprintf(out, "step %d %s\n", i+1, s.Name)
		switch s.Type {
		case profiles.StepCopyIn:
			if _, err := c.CopyIn(ctx, fl, s.From, s.To, guestagent.CopyOptions{}); err != nil {
				fail(i, "error", err.Error())
			}
		case profiles.StepCopyOut:
			target := filepath.Join(dir, s.To)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				fail(i, "error", err.Error())
				break
			}
			if _, err := c.CopyOut(ctx, fl, s.From, target, guestagent.CopyOptions{MaxSize: guestagent.DefaultMaxSize}); err != nil {
				fail(i, "error", err.Error())
			}
		case profiles.StepRun:
			var env []string
			for k, v := range s.Env {
				env = append(env, k+"="+v)
			}
			sort.Strings(env)
			timeout := 10 * time.Minute
			if s.Timeout != "" {
				timeout, _ = profiles.ParseDuration(s.Timeout)
			}
			name := fmt.Sprintf("%02d-run.log", i+1)
			sr.Output = filepath.Join(t.Name, vm, name)
			logf, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				fail(i, "error", err.Error())
				break
			}
			var keep bytes.Buffer
			lim := &limitBuffer{b: &keep, n: 64 << 10}
			w := io.MultiWriter(logf, out, lim)
			code, err := c.Run(ctx, fl, guestagent.RunOptions{Argv: s.Command, Env: env, Cwd: s.Cwd, Timeout: timeout,
				MaxOutput: maxOutput, Stdout: w, Stderr: w})
			logf.Close()
			sr.stdout = keep.Bytes()
			switch {
			case err != nil:
				fail(i, "failed", err.Error())
			case code != s.ExpectExit:
				sr.ExitCode = &code
				fail(i, "failed", fmt.Sprintf("exit code %d, want %d", code, s.ExpectExit))
			default:
				sr.ExitCode = &code
			}
		}
		sr.Took = time.Since(t0)
		if sr.Status == "skipped" {
			sr.Status = "passed"
		}
	}
	if t.Reset == "after" || t.Reset == "both" {
		// Even after a failure or Ctrl-C: a context of its own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ResetTimeout)
		if err := reset(rctx); err != nil {
			r.ResetError = "reset after the test: " + err.Error()
			fmt.Fprintf(out, "%s\n", r.ResetError)
		}
		cancel()
	}
	r.Took = time.Since(start)
	r.Passed = !failed && r.ResetError == "" && ctx.Err() == nil
	return r
}

// limitBuffer keeps the first n bytes written.
type limitBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// prefixWriter writes whole lines, each with a prefix, under a shared
// lock (several VMs print at once).
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, guestagent.Sanitize(string(p.buf[:i]), 4096))
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// Flush writes a last partial line.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, guestagent.Sanitize(string(p.buf), 4096))
		p.buf = nil
	}
}

// JUnit XML (the format of Ant's JUnit task that CI servers read).
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Hostname  string      `xml:"hostname,attr"`
	ID        int         `xml:"id,attr"`
	Package   string      `xml:"package,attr"`
	Props     struct{}    `xml:"properties"`
	Cases     []junitCase `xml:"testcase"`
	SystemOut string      `xml:"system-out"`
	SystemErr string      `xml:"system-err"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes one test suite per test and VM, one test case per
// step (classname test.vm).
func writeJUnit(path string, results []*TestVMResult) error {
	var doc junitSuites
	host, _ := os.Hostname()
	for i, r := range results {
		s := junitSuite{Name: r.Test + "." + r.VM, ID: i, Package: r.Test, Hostname: host,
			Time: secs(r.Took), Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05")}
		for _, st := range r.Steps {
			c := junitCase{Name: st.Name, ClassName: r.Test + "." + r.VM, Time: secs(st.Took), SystemOut: xmlSafe(string(st.stdout))}
			switch st.Status {
			case "failed":
				c.Failure = &junitMessage{Message: xmlSafe(st.Message), Type: st.Type, Text: xmlSafe(st.Message)}
				s.Failures++
			case "error":
				c.Error = &junitMessage{Message: xmlSafe(st.Message), Type: st.Type, Text: xmlSafe(st.Message)}
				s.Errors++
			case "skipped":
				c.Skipped = &junitMessage{Message: "an earlier step failed"}
				s.Skipped++
			}
			s.Cases = append(s.Cases, c)
			s.Tests++
		}
		if r.ResetError != "" {
			s.SystemErr = xmlSafe(r.ResetError)
			s.Errors++
		}
		doc.Suites = append(doc.Suites, s)
	}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	if d := filepath.Dir(path); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("junit report: %w", err)
		}
	}
	if err := os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	return nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// xmlSafe drops characters XML 1.0 cannot hold (guest output may have
// any byte).
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF) {
			return r
		}
		return -1
	}, strings.ToValidUTF8(s, "?"))
}
