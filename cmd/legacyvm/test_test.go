package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

const testProfile = `
snapshot_policy "clean" {
  memory = true
}
vm "qa" {
  count       = 2
  os          = "win7-x64"
  memory      = "2GiB"
  guest_agent = true
  disk {
    image   = "/img/golden.qcow2"
    prepare = "none"
  }
  snapshot_policy = snapshot_policy.clean
}
test "suite" {
  vms = [vm.qa]
  step "copy_in" {
    from = "payload.txt"
    to   = "/tmp/payload.txt"
  }
  step "run" {
    command = ["cat", "/tmp/payload.txt"]
  }
  step "copy_out" {
    from = "/tmp/payload.txt"
    to   = "out/payload.txt"
  }
}
test "broken" {
  vms   = [vm.qa]
  reset = "none"
  step "run" {
    command = ["false"]
  }
  step "run" {
    command = ["echo", "never"]
  }
}
test "slow" {
  vms   = [vm.qa]
  reset = "after"
  step "copy_in" {
    from = "payload.txt"
    to   = "/tmp/marker"
  }
  step "run" {
    command = ["sleep", "600"]
  }
}
`

// testHost applies testProfile to a fake host (two running VMs with the
// agent and a memory baseline).
func testHost(t *testing.T) (*fake.Hypervisor, string) {
	t.Helper()
	t.Setenv(lock.DirEnv, filepath.Join(t.TempDir(), "locks"))
	dir := filepath.Join(t.TempDir(), "qa")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"main.hcl": testProfile, "payload.txt": "payload from the host\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := fake.New(fake.WithFile("/img/golden.qcow2", "qcow2", 10<<30))
	ctx := context.Background()
	if _, err := h.EnsurePool(ctx, "default", "/var/lib/libvirt/images"); err != nil {
		t.Fatal(err)
	}
	p, diags := profiles.Load(dir, profiles.LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	connect := func(context.Context, string) (virt.Hypervisor, error) { return nopCloseHV{h}, nil }
	s := orchestrator.Open(p, orchestrator.SessionOptions{Connect: connect, Plan: orchestrator.Options{DefaultURI: "test:///fake"},
		Parallelism: 2, PollInterval: time.Millisecond})
	defer s.Close()
	hps, diags, err := s.Plan(ctx)
	if err != nil || diags.HasErrors() {
		t.Fatalf("plan: %v %s", err, diags.Error())
	}
	if res, err := s.Apply(ctx, hps[0]); err != nil {
		t.Fatalf("apply: %v %+v", err, res)
	}
	return h, dir
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testOptions(h *fake.Hypervisor, dir string, out, errb *syncBuf, names ...string) *TestOptions {
	f := &Factory{IO: &IOStreams{Out: out, ErrOut: errb}, Output: "text", Parallelism: 2,
		Getenv:  func(string) (string, bool) { return "", false },
		Connect: func(context.Context, string) (virt.Hypervisor, error) { return nopCloseHV{h}, nil }}
	res := filepath.Join(filepath.Dir(dir), "results")
	return &TestOptions{IO: f.IO, Factory: f, Path: dir, Names: names, Results: res, JUnit: filepath.Join(res, "junit.xml"),
		MaxOutput: "1MiB", AgentTimeout: 5 * time.Second, ReadyTimeout: 10 * time.Second, ResetTimeout: 10 * time.Second, LockWait: time.Second}
}

func TestTestCommandOnFake(t *testing.T) {
	h, dir := testHost(t)
	ctx := context.Background()
	var out, errb syncBuf
	o := testOptions(h, dir, &out, &errb, "suite")
	if err := testRun(ctx, o); err != nil {
		t.Fatalf("test suite: %v\n%s\n%s", err, out.String(), errb.String())
	}
	for _, vm := range []string{"qa-1", "qa-2"} {
		if !strings.Contains(errb.String(), "["+"suite/"+vm+"] payload from the host") {
			t.Errorf("no prefixed output of %s:\n%s", vm, errb.String())
		}
		if b, err := os.ReadFile(filepath.Join(o.Results, "suite", vm, "out", "payload.txt")); err != nil || string(b) != "payload from the host\n" {
			t.Errorf("%s copied-out file: %q %v", vm, b, err)
		}
		// reset = "both": the memory baseline brings the guest back, the
		// copied-in file is gone.
		if _, ok := h.GuestFile(vm, "/tmp/payload.txt"); ok {
			t.Errorf("%s: /tmp/payload.txt still there after the reset", vm)
		}
	}
	if !strings.Contains(out.String(), "PASS  suite on qa-1") {
		t.Errorf("summary:\n%s", out.String())
	}
	if _, err := exec.LookPath("xmllint"); err == nil {
		if b, err := exec.Command("xmllint", "--noout", "--schema", "testdata/junit.xsd", o.JUnit).CombinedOutput(); err != nil {
			t.Errorf("JUnit report invalid: %v %s", err, b)
		}
	}

	// A failing step: exit status 1, the next step skipped.
	out.b.Reset()
	err := testRun(ctx, testOptions(h, dir, &out, &errb, "broken"))
	var ee *exitErr
	if !errors.As(err, &ee) || ee.code != exitError {
		t.Errorf("test broken: %v, want exit status 1", err)
	}
	if !strings.Contains(out.String(), "failed  run false: exit code 1, want 0") || !strings.Contains(out.String(), "skipped run echo never") {
		t.Errorf("summary of broken:\n%s", out.String())
	}
	if err := testRun(ctx, testOptions(h, dir, &out, &errb, "nosuch")); err == nil || !strings.Contains(err.Error(), `no test "nosuch"`) {
		t.Errorf("unknown test: %v", err)
	}
	// A shut-off VM and reset = "none": a clear error at once, no wait
	// for an agent that cannot answer.
	if err := h.DestroyDomain(ctx, "qa-1"); err != nil {
		t.Fatal(err)
	}
	out.b.Reset()
	t0 := time.Now()
	_ = testRun(ctx, testOptions(h, dir, &out, &errb, "broken"))
	if !strings.Contains(out.String(), "qa-1 is shutoff: start it") || time.Since(t0) > 5*time.Second {
		t.Errorf("test on a shut-off VM (%s):\n%s", time.Since(t0), out.String())
	}
}

// Ctrl-C (a cancelled context) during a step: the after reset still runs.
func TestTestCommandResetsAfterCancel(t *testing.T) {
	h, dir := testHost(t)
	var out, errb syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- testRun(ctx, testOptions(h, dir, &out, &errb, "slow")) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, ok1 := h.GuestFile("qa-1", "/tmp/marker")
		_, ok2 := h.GuestFile("qa-2", "/tmp/marker")
		if ok1 && ok2 && strings.Count(errb.String(), "step 2 run sleep 600") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow step did not start:\n%s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("test after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("test did not end after cancel")
	}
	for _, vm := range []string{"qa-1", "qa-2"} {
		if _, ok := h.GuestFile(vm, "/tmp/marker"); ok {
			t.Errorf("%s: marker still there: no reset after cancel\n%s", vm, errb.String())
		}
		if !strings.Contains(errb.String(), "[slow/"+vm+"] reset to baseline") {
			t.Errorf("%s: no reset line\n%s", vm, errb.String())
		}
	}
}

// A VM another command holds is not tested: its first step reports the
// holder once --lock-wait has passed; the other VM runs.
func TestTestCommandWaitsForVMLock(t *testing.T) {
	h, dir := testHost(t)
	ctx := context.Background()
	l, err := lock.AcquireVM(ctx, "qemu:///system", "qa-1", "a reset by someone else", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	var out, errb syncBuf
	err = testRun(ctx, testOptions(h, dir, &out, &errb, "suite"))
	if err == nil || !strings.Contains(out.String(), "FAIL  suite on qa-1") || !strings.Contains(out.String(), "PASS  suite on qa-2") ||
		!strings.Contains(out.String(), "a reset by someone else") {
		t.Errorf("test with qa-1 locked: %v\n%s", err, out.String())
	}
}
