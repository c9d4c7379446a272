package lock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Lock is held while a command changes what a profile owns on a host, or
// works on one VM, so that two commands never race (two applies, an apply
// and a destroy, a reset and a scheduled snapshot of the same VM). It is an
// advisory flock on a file named after what it guards, so it guards
// commands on this machine; the kernel drops it when the process dies, even
// by SIGKILL.
//
// Lock files live in one directory whatever the user (LockDir), which must
// be a real directory owned by the caller with mode 0700: nobody else can
// plant a file or link in it. Lock files are opened without following
// links, checked to be regular files of the caller, and never truncated
// before the lock is held, so a lock can never damage another file.
type Lock struct {
	f    *os.File
	path string
}

// DefaultDir is where lock files live unless DirEnv says
// otherwise. It is under /run (root only, emptied at boot), so only root
// can take locks there: every legacyvm command that changes a host runs
// as root or sets DirEnv for a private hypervisor (qemu:///session).
const DefaultDir = "/run/legacyvm/locks"

// DirEnv names the environment variable that overrides
// DefaultDir (tests, qemu:///session users). Its parent must exist.
const DirEnv = "LEGACYVM_LOCK_DIR"

// LockDir is where lock files live: DefaultDir, or $LEGACYVM_LOCK_DIR.
// It does not depend on who runs the command, so `sudo legacyvm apply`
// and root's daemon see the same locks.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return filepath.Clean(d)
	}
	return DefaultDir
}

// CheckDir creates the lock directory if needed and checks it, so a
// long-running command (the daemon) can refuse to start without usable
// locks instead of finding out at its first VM.
func CheckDir() error {
	_, err := ensureLockDir(Dir())
	return err
}

// ErrLocked is returned by Acquire when the wait ran out.
var ErrLocked = errors.New("is locked by another legacyvm command")

// Acquire takes the lock for profile on uri, waiting up to wait (0: do
// not wait). waiting, when set, is called once if the lock is busy, with
// what the holder recorded ("pid 123: apply, since 12:03:04").
func Acquire(ctx context.Context, profile, uri, purpose string, wait time.Duration, waiting func(holder string)) (*Lock, error) {
	name := lockFileName("", profile, uri)
	return acquireIn(ctx, Dir(), name, fmt.Sprintf("profile %s on %s", profile, uri), purpose, wait, waiting)
}

// AcquireVM takes the lock of the VM (domain) vm on uri, like
// Acquire. Commands that hold a profile lock take it first and the VM
// locks after, each set in VMOrder, so two commands never wait for
// each other crosswise.
func AcquireVM(ctx context.Context, uri, vm, purpose string, wait time.Duration, waiting func(holder string)) (*Lock, error) {
	return AcquireVMIn(ctx, Dir(), uri, vm, purpose, wait, waiting)
}

// AcquireVMIn is AcquireVM with the lock directory given (tests
// that hold a VM lock against legacyvm processes with their own
// LEGACYVM_LOCK_DIR).
func AcquireVMIn(ctx context.Context, dir, uri, vm, purpose string, wait time.Duration, waiting func(holder string)) (*Lock, error) {
	name := lockFileName("vm-", vm, uri)
	return acquireIn(ctx, dir, name, fmt.Sprintf("VM %s on %s", vm, uri), purpose, wait, waiting)
}

// Image takes the build lock of image on uri without waiting: image
// build and image delete hold it, and the other image commands take it
// only to clean up after a build that is gone.
func Image(ctx context.Context, uri, image, purpose string) (*Lock, error) {
	return Acquire(ctx, "image-"+image, uri, purpose, 0, nil)
}

// VMOrder sorts and deduplicates VM names into the order their locks
// are taken.
func VMOrder(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	n := 0
	for i, s := range out {
		if i == 0 || s != out[n-1] {
			out[n] = s
			n++
		}
	}
	return out[:n]
}

// lockFileName is prefix + a readable part of name + a hash of name and
// uri: any name (even one with "/" or "..") gives a plain file name.
func lockFileName(prefix, name, uri string) string {
	var b strings.Builder
	for _, r := range name {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(prefix + name + "\x00" + uri))
	return prefix + b.String() + "-" + hex.EncodeToString(sum[:])[:12] + ".lock"
}

func acquireIn(ctx context.Context, lockDir, name, what, purpose string, wait time.Duration, waiting func(holder string)) (*Lock, error) {
	dir, err := ensureLockDir(filepath.Clean(lockDir))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
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
		holder := readHolder(f)
		if !told && waiting != nil && wait > 0 {
			waiting(holder)
			told = true
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s %w (held by %s; lock file %s)", what, ErrLocked, holder, path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The lock is held on a file this process verified: record the holder
	// (write, then cut what a longer earlier record left).
	info := []byte(fmt.Sprintf("pid %d: %s, since %s\n", os.Getpid(), purpose, time.Now().Format(time.RFC3339)))
	if n, err := f.WriteAt(info, 0); err == nil {
		_ = f.Truncate(int64(n))
	}
	return &Lock{f: f, path: path}, nil
}

// ensureLockDir creates dir (and, for the default location, its parent)
// with Mkdir and mode 0700, and checks that it is a real directory owned by
// the caller that nobody else can write to.
func ensureLockDir(dir string) (string, error) {
	parent := ""
	if dir == DefaultDir {
		parent = filepath.Dir(dir)
	}
	return dir, ensureDirs(parent, dir)
}

// ensureDirs creates and checks the lock directory and, when parent is
// not empty, its parent first. The parent (/run/legacyvm) is shared with
// the daemon's state file, which other users may read, so it may be 0755;
// it must still be the caller's and writable by nobody else. The lock
// directory itself must be 0700.
func ensureDirs(parent, dir string) error {
	type want struct {
		path   string
		strict bool
	}
	var chain []want
	if parent != "" {
		chain = append(chain, want{parent, false})
	}
	chain = append(chain, want{dir, true})
	for _, d := range chain {
		if err := os.Mkdir(d.path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			hint := ""
			if errors.Is(err, os.ErrPermission) {
				hint = fmt.Sprintf("; legacyvm keeps its locks in %s, which only root can create: run it as root (sudo), or set %s to a directory of your own (mode 0700) when you use a private hypervisor such as qemu:///session", DefaultDir, DirEnv)
			}
			return fmt.Errorf("lock directory %s: %w%s", d.path, err, hint)
		}
		if err := checkLockDir(d.path, d.strict); err != nil {
			return err
		}
	}
	return nil
}

func checkLockDir(d string, strict bool) error {
	st, err := os.Lstat(d)
	if err != nil {
		return fmt.Errorf("lock directory %s: %w", d, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("lock directory %s is not a directory (%s): remove it, then run again", d, st.Mode().Type())
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("lock directory %s: cannot read its owner", d)
	}
	uid := os.Geteuid()
	if int(sys.Uid) != uid {
		return fmt.Errorf("lock directory %s belongs to uid %d, not to you (uid %d): someone else may control it; remove it (as root: rm -r %s) and run again, or run legacyvm as the user who owns it", d, sys.Uid, uid, d)
	}
	if strict && st.Mode().Perm() != 0o700 {
		return fmt.Errorf("lock directory %s has mode %04o, want 0700: run chmod 700 %s (after checking nobody put files in it)", d, st.Mode().Perm(), d)
	}
	if !strict && st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("directory %s (which holds legacyvm's lock directory) has mode %04o: others can write to it; run chmod go-w %s (after checking nobody put files in it)", d, st.Mode().Perm(), d)
	}
	return nil
}

// openLockFile opens (creating) a lock file without following a link and
// without truncating, and checks it is a regular file of the caller.
func openLockFile(path string) (*os.File, error) {
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("lock file %s is a symbolic link: remove it and run again", path)
		}
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		syscall.Close(fd)
		return nil, fmt.Errorf("lock file %s is not a regular file: remove it and run again", path)
	case int(st.Uid) != os.Geteuid():
		syscall.Close(fd)
		return nil, fmt.Errorf("lock file %s belongs to uid %d, not to you: remove it and run again", path, st.Uid)
	case st.Nlink != 1:
		syscall.Close(fd)
		return nil, fmt.Errorf("lock file %s has %d links: remove it and run again", path, st.Nlink)
	}
	// Back to blocking mode (O_NONBLOCK only kept open from hanging on a
	// FIFO planted at the path).
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// maxHolderLen bounds the holder text printed from a lock file.
const maxHolderLen = 120

// readHolder reads what the holder recorded, through the already verified
// file, bounded and reduced to printable ASCII.
func readHolder(f *os.File) string {
	buf := make([]byte, maxHolderLen+1)
	n, _ := f.ReadAt(buf, 0)
	s := sanitizeHolder(buf[:n])
	if s == "" {
		return "another process"
	}
	return s
}

// sanitizeHolder keeps the first line of b, at most maxHolderLen printable
// ASCII characters (others become '?').
func sanitizeHolder(b []byte) string {
	if i := strings.IndexByte(string(b), '\n'); i >= 0 {
		b = b[:i]
	}
	cut := len(b) > maxHolderLen
	if cut {
		b = b[:maxHolderLen]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	s := strings.TrimSpace(string(out))
	if cut {
		s += "..."
	}
	return s
}

// Release drops the lock. The file is left as it is (the next holder
// rewrites it): truncating it here would race with that holder.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
