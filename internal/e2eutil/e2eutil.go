// Package e2eutil runs the legacyvm binary the way a user does, against a
// private libvirtd started by package testenv: it builds the binary once
// per test process, prepares a host (golden image, storage pool, serial log
// and lock directories), writes profiles, runs commands and captures
// stdout, stderr and the exit code, and checks every output for secrets.
//
// Packages that use it run their tests through testenv.Main.
package e2eutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/testenv"
	"github.com/legacyvm/legacyvm/internal/virt"
	lvlibvirt "github.com/legacyvm/legacyvm/internal/virt/libvirt"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// repoRoot is the module root (this file is internal/e2eutil/e2eutil.go).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Binary builds cmd/legacyvm once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "legacyvm-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "legacyvm")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/legacyvm")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/legacyvm: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Host is a private libvirtd prepared for legacyvm: a storage pool the
// tests can read (qemu-io, qemu-img), a copy of the stand-in golden image
// in a directory of its own, and per-test directories for serial logs,
// locks and HOME; the fingerprint secret is the instance's.
type Host struct {
	Env     *testenv.Env
	Guest   *testenv.GuestImages
	URI     string
	Accel   string
	Pool    string // pool name for profiles' storage_pool
	PoolDir string
	// Golden is the stand-in golden image (qcow2) profiles use as image.
	Golden   string
	LogDir   string
	LockDir  string
	StateDir string // HOME of the legacyvm runs
	// FingerprintKey is the fingerprint secret: one per libvirtd instance
	// (shared by the tests of a package), as on a real host, where a
	// missing secret is refused while VMs hold fingerprints made with one.
	FingerprintKey string
	HV             virt.Hypervisor
}

var poolSeq struct {
	sync.Mutex
	n int
}

// NewHost prepares a host on the process-wide private libvirtd. Each call
// gets its own pool and directories, so tests in one package can run one
// after another without seeing each other's volumes (domains and networks
// they must still name apart).
func NewHost(t *testing.T) *Host {
	t.Helper()
	env := testenv.Libvirt(t)
	g := testenv.Guest(t)
	poolSeq.Lock()
	poolSeq.n++
	n := poolSeq.n
	poolSeq.Unlock()
	h := &Host{Env: env, Guest: g, URI: env.URI, Accel: env.Accel, Pool: fmt.Sprintf("e2e%d", n)}
	h.PoolDir = env.PoolDir(t)
	imgDir := env.PoolDir(t)
	h.Golden = g.GoldenCopy(t, imgDir)
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	h.LogDir = filepath.Join(base, "logs")
	h.LockDir = filepath.Join(base, "locks")
	h.StateDir = filepath.Join(base, "state")
	h.FingerprintKey = filepath.Join(env.Dir, "fingerprint.key")
	for _, d := range []string{h.LogDir, h.StateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Lock directories must be the caller's own, mode 0700.
	if err := os.Mkdir(h.LockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hv, err := lvlibvirt.Connect(ctx, env.URI)
	if err != nil {
		t.Fatalf("connect %s: %v", env.URI, err)
	}
	t.Cleanup(func() { _ = hv.Close() })
	h.HV = hv
	if _, err := hv.EnsurePool(ctx, h.Pool, h.PoolDir); err != nil {
		t.Fatalf("pool %s: %v", h.Pool, err)
	}
	return h
}

// HostBlock is the host block a test profile uses to reach this host: the
// pool, and TCG unless the harness found KVM usable.
func (h *Host) HostBlock() string {
	accel := "tcg"
	if h.Accel == "kvm" {
		accel = "auto"
	}
	return fmt.Sprintf("host \"test\" {\n  uri          = %q\n  accelerator  = %q\n  storage_pool = %q\n}\n", h.URI, accel, h.Pool)
}

// Environ is the environment the legacyvm binary runs with.
func (h *Host) Environ(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + h.StateDir,
		"LIBVIRT_DEFAULT_URI=" + h.URI,
		"LEGACYVM_SERIAL_LOG_DIR=" + h.LogDir,
		"LEGACYVM_LOCK_DIR=" + h.LockDir,
		"LEGACYVM_FINGERPRINT_KEY=" + h.FingerprintKey,
		// legacyvm daemon's state file (doors), never the host's /run.
		"LEGACYVM_RUN_DIR=" + filepath.Join(h.StateDir, "run"),
	}
	return append(env, extra...)
}

// SerialLog is the serial console log of a domain.
func (h *Host) SerialLog(domain string) string { return filepath.Join(h.LogDir, domain+".serial.log") }

// WaitSerial waits for a line matching re in the domain's serial log.
func (h *Host) WaitSerial(t testing.TB, domain string, re string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	line, err := testenv.WaitSerial(ctx, h.SerialLog(domain), regexp.MustCompile(re))
	if err != nil {
		b, _ := os.ReadFile(h.SerialLog(domain))
		t.Fatalf("%s: no line matching %q within %s: %v\nserial log:\n%s", domain, re, timeout, err, b)
	}
	return line
}

// Result is what a command printed and how it ended.
type Result struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int
}

func (r Result) String() string {
	return fmt.Sprintf("legacyvm %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Run runs the legacyvm binary with args in the host's environment.
func (h *Host) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return h.RunEnv(t, nil, args...)
}

// RunEnv is Run with extra environment variables ("K=V").
func (h *Host) RunEnv(t testing.TB, extra []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = h.Environ(extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Args: args, Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run legacyvm %v: %v", args, err)
	}
	return r
}

// MustRun runs and fails the test unless the exit code is one of want
// (default 0).
func (h *Host) MustRun(t testing.TB, args []string, want ...int) Result {
	t.Helper()
	r := h.Run(t, args...)
	if len(want) == 0 {
		want = []int{0}
	}
	for _, w := range want {
		if r.Code == w {
			return r
		}
	}
	t.Fatalf("unexpected exit code (want %v)\n%s", want, r)
	return r
}

// Start starts the binary without waiting (for kill tests). Output goes to
// the returned buffers.
func (h *Host) Start(t testing.TB, extra []string, args ...string) (*exec.Cmd, *SyncBuffer, *SyncBuffer) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = h.Environ(extra...)
	out, errb := &SyncBuffer{}, &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out, errb
}

// SyncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Profile writes files (name -> content) into a new directory named name
// and returns its path. The directory name is the profile name.
func Profile(t testing.TB, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// NoSecret fails the test if secret, or any of its 5-character groups
// except the last one, appears in any of the texts (named for the message).
func NoSecret(t testing.TB, secret string, texts map[string]string) {
	t.Helper()
	groups := strings.Split(secret, "-")
	for where, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("the secret appears in %s", where)
		}
		for _, g := range groups[:len(groups)-1] {
			if len(g) == 5 && strings.Contains(s, g) {
				t.Errorf("a group of the secret (%s...) appears in %s", g[:2], where)
			}
		}
	}
}
