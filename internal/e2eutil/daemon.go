package e2eutil

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Daemon is `legacyvm daemon --log-json` running as a subprocess.
type Daemon struct {
	Cmd    *exec.Cmd
	Stderr *SyncBuffer
	done   chan struct{}
}

// StartDaemon starts the daemon with args; the test's cleanup stops it
// (SIGTERM, then kill). When inNetNS is true it runs inside the harness's
// network namespace (ip netns exec), where the libvirt bridges are: a
// daemon that relays doors must listen and dial there.
func StartDaemon(t testing.TB, h *Host, extraEnv []string, inNetNS bool, args ...string) *Daemon {
	t.Helper()
	argv := append([]string{"daemon", "--log-json"}, args...)
	var cmd *exec.Cmd
	if inNetNS {
		// ip netns exec execs the binary: the process is legacyvm itself.
		cmd = exec.Command("ip", append([]string{"netns", "exec", h.Env.NetNS, Binary(t)}, argv...)...)
	} else {
		cmd = exec.Command(Binary(t), argv...)
	}
	cmd.Env = h.Environ(extraEnv...)
	out, errb := &SyncBuffer{}, &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Cmd: cmd, Stderr: errb, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// Records decodes the daemon's log: one JSON object a line. A line that
// is not JSON fails the test (--log-json promises structured lines).
func (d *Daemon) Records(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(d.Stderr.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("daemon log line is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// WaitLog waits for the first record after index after (-1: any) that
// matches all of want (key -> value, compared as printed) and returns its
// index and the record.
func (d *Daemon) WaitLog(t testing.TB, after int, timeout time.Duration, want map[string]string) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for i, rec := range d.Records(t) {
			if i <= after {
				continue
			}
			ok := true
			for k, v := range want {
				if fmt.Sprint(rec[k]) != v {
					ok = false
					break
				}
			}
			if ok {
				return i, rec
			}
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited (%v) before logging %v:\n%s", d.Cmd.ProcessState, want, d.Stderr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no daemon log record %v within %s:\n%s", want, timeout, d.Stderr)
		}
	}
}

// Stop sends SIGTERM and checks the daemon ends cleanly.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not stop within 30s of SIGTERM:\n%s", d.Stderr)
	}
	if code := d.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("daemon exited %d after SIGTERM:\n%s", code, d.Stderr)
	}
}

// RunNetNS runs the legacyvm binary inside the harness's network namespace
// (where the bridges, the relay and its listeners are), with extra
// environment variables ("K=V").
func (h *Host) RunNetNS(t testing.TB, extra []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.Env.NetNS, Binary(t)}, args...)...)
	cmd.Env = h.Environ(extra...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Args: args, Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run legacyvm %v in %s: %v", args, h.Env.NetNS, err)
	}
	return r
}
