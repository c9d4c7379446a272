package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Lock is held while a command changes what a profile owns on a host, so
// two applies (or an apply and a destroy) of the same profile and host never
// race. It is an advisory flock on a file named after both, so it guards
// commands on this machine; the kernel drops it when the process dies, even
// by SIGKILL.
type Lock struct {
	f    *os.File
	path string
}

// LockDir is where lock files live: /run/lock/legacyvm for root,
// $XDG_RUNTIME_DIR/legacyvm or the temp dir otherwise; LEGACYVM_LOCK_DIR
// overrides.
func LockDir() string {
	if d := os.Getenv("LEGACYVM_LOCK_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/lock/legacyvm"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "legacyvm")
	}
	return filepath.Join(os.TempDir(), "legacyvm-"+strconv.Itoa(os.Geteuid()))
}

// ErrLocked is returned by AcquireLock when the wait ran out.
var ErrLocked = errors.New("profile is locked by another legacyvm command")

// AcquireLock takes the lock for profile on uri, waiting up to wait (0: do
// not wait). waiting, when set, is called once if the lock is busy, with
// what the holder recorded ("pid 123: apply, since 12:03:04").
func AcquireLock(ctx context.Context, profile, uri, purpose string, wait time.Duration, waiting func(holder string)) (*Lock, error) {
	dir := LockDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	path := filepath.Join(dir, profile+"-"+hashOf(uri)[:8]+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder := readHolder(path)
		if !told && waiting != nil && wait > 0 {
			waiting(holder)
			told = true
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w (profile %s on %s; held by %s; lock file %s)", ErrLocked, profile, uri, holder, path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d: %s, since %s\n", os.Getpid(), purpose, time.Now().Format(time.RFC3339))), 0)
	return &Lock{f: f, path: path}, nil
}

func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "another process"
	}
	return strings.TrimSpace(string(b))
}

// Release drops the lock.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
