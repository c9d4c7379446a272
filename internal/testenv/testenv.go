package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds Libvirt's start of the shared instance (including a
// first guest build for the accelerator probe).
const StartTimeout = 5 * time.Minute

var shared struct {
	sync.Mutex
	mainActive bool
	started    bool
	env        *Env
	err        error

	guestOnce sync.Once
	guest     *GuestImages
	guestErr  error
}

// Main runs the package's tests and then stops the Env that Libvirt
// started, if any. Use it in every package that calls Libvirt:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// SIGINT and SIGTERM stop the Env before the process exits. A binary that
// dies anyway (go test -timeout, SIGKILL) leaves an instance behind that the
// next Start removes (see Reap). The result is m.Run's exit code, or 1 when
// the tests passed but the teardown failed.
func Main(m *testing.M) int {
	shared.Lock()
	shared.mainActive = true
	shared.Unlock()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "testenv: %v: stopping libvirt instance\n", s)
			_ = stopShared()
			os.Exit(2)
		case <-done:
		}
	}()
	code := m.Run()
	close(done)
	signal.Stop(sigs)
	if err := stopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func stopShared() error {
	shared.Lock()
	defer shared.Unlock()
	if shared.env == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return shared.env.Stop(ctx)
}

// Required reports whether a test that cannot get libvirt must fail rather
// than skip: CI=true (any true value of strconv.ParseBool).
func Required() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Unavailable ends a test that needs something the host lacks: t.Fatal
// when Required, t.Skip otherwise. Both name the reason.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("%s unavailable (CI=true, so this fails instead of skipping): %v", what, err)
	}
	t.Skipf("%s unavailable: %v (with CI=true this fails)", what, err)
}

// Libvirt returns the process-wide private libvirtd, starting it on first
// use (later calls share it; tests must pick unique object names). If it
// cannot start, the test fails when CI=true and is skipped otherwise, with
// the reason. The package's TestMain must use Main.
func Libvirt(t testing.TB) *Env {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.mainActive {
		t.Fatal("testenv.Libvirt needs TestMain to call testenv.Main (it stops the daemons)")
	}
	if !shared.started {
		shared.started = true
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
		start := time.Now()
		shared.env, shared.err = Start(ctx, Options{Logf: func(f string, a ...any) { t.Logf(f, a...) }})
		cancel()
		if shared.err == nil {
			t.Logf("testenv: %s started in %.2fs (URI %s, accel %s)", shared.env.NetNS, time.Since(start).Seconds(), shared.env.URI, shared.env.Accel)
		}
	}
	if shared.err != nil {
		Unavailable(t, "libvirt", shared.err)
	}
	return shared.env
}

// PoolDir returns a fresh directory under the instance directory, usable as
// a libvirt "dir" storage pool and writable by QEMU. It is removed with
// the instance.
func (e *Env) PoolDir(t testing.TB) string {
	t.Helper()
	dir, err := e.NewPoolDir(t.Name())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

// Guest returns the stand-in guest images, built once per set of build
// inputs and cached (see BuildGuest). If they cannot be built, the test
// fails when CI=true and is skipped otherwise.
func Guest(t testing.TB) *GuestImages {
	t.Helper()
	shared.guestOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		shared.guest, shared.guestErr = BuildGuest(ctx, GuestOptions{Logf: func(f string, a ...any) { t.Logf(f, a...) }})
	})
	if shared.guestErr != nil {
		Unavailable(t, "stand-in guest", shared.guestErr)
	}
	return shared.guest
}

// WaitSerial polls the serial log at path until a line matches re and
// returns that line (without the line end). It reads the whole file on
// every poll; the first matching line wins. On timeout (ctx) the error
// carries the log's last lines.
//
// Both serial log kinds work with libvirt 9.0 here: <serial type='pty'>
// with <log file=... append='off'/> (written by virtlogd) and
// <serial type='file'> (written by QEMU). An internal snapshot revert of a
// running domain starts a new QEMU, and with either kind the log starts
// over: after a revert, WaitSerial sees only the restored guest's lines.
func WaitSerial(ctx context.Context, path string, re *regexp.Regexp) (string, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		data, _ := os.ReadFile(path)
		for _, line := range bytes.Split(data, []byte("\n")) {
			line = bytes.TrimRight(line, "\r")
			if re.Match(line) {
				return string(line), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for %q in %s: %w; last lines:\n%s", re, path, ctx.Err(), tail(data, 15))
		case <-tick.C:
		}
	}
}

// tail returns the last n lines of a console log, with control sequences
// other than newlines dropped.
func tail(data []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(data, "\r\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b bytes.Buffer
	for _, l := range lines {
		for _, c := range l {
			if c >= 0x20 && c < 0x7f || c == '\t' {
				b.WriteByte(c)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
