package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lockDirForTest points LockDir at a fresh directory (mode 0700) and
// returns it.
func lockDirForTest(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "locks")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv(DirEnv, dir)
	return dir
}

const victimContent = "root:$6$precious:19000:0:99999:7:::\n"

func plantVictim(t *testing.T) string {
	t.Helper()
	victim := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(victim, []byte(victimContent), 0o600); err != nil {
		t.Fatal(err)
	}
	return victim
}

func assertVictim(t *testing.T, victim string) {
	t.Helper()
	if b, err := os.ReadFile(victim); err != nil || string(b) != victimContent {
		t.Fatalf("the file behind the lock path changed: %q, %v", b, err)
	}
}

// TestLockRefusesPlantedLinks: a symbolic or hard link planted at a lock
// path is refused and the file it points to keeps its content (the old
// lock followed links and truncated the target).
func TestLockRefusesPlantedLinks(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"symlink", "hardlink"} {
		t.Run(kind, func(t *testing.T) {
			dir := lockDirForTest(t)
			victim := plantVictim(t)
			profilePath := filepath.Join(dir, lockFileName("", "lab", "qemu:///system"))
			vmPath := filepath.Join(dir, lockFileName("vm-", "lab-1", "qemu:///system"))
			for _, p := range []string{profilePath, vmPath} {
				var err error
				if kind == "symlink" {
					err = os.Symlink(victim, p)
				} else {
					err = os.Link(victim, p)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			l, err := Acquire(ctx, "lab", "qemu:///system", "apply", 0, nil)
			if err == nil {
				l.Release()
				t.Fatal("Acquire accepted a planted link")
			}
			if !strings.Contains(err.Error(), "remove it") {
				t.Errorf("error does not say what to do: %v", err)
			}
			l, err = AcquireVM(ctx, "qemu:///system", "lab-1", "reset", 0, nil)
			if err == nil {
				l.Release()
				t.Fatal("AcquireVM accepted a planted link")
			}
			assertVictim(t, victim)
		})
	}
}

// TestLockDirChecks: a lock directory that is a link, has a loose mode or
// belongs to someone else is refused with what to fix; a missing one is
// created 0700.
func TestLockDirChecks(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	try := func(dir string) error {
		t.Setenv(DirEnv, dir)
		l, err := Acquire(ctx, "lab", "qemu:///system", "apply", 0, nil)
		if err == nil {
			l.Release()
		}
		return err
	}

	fresh := filepath.Join(base, "fresh")
	if err := try(fresh); err != nil {
		t.Fatalf("missing directory: %v", err)
	}
	if st, err := os.Lstat(fresh); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("created directory: %v %v", st.Mode(), err)
	}

	loose := filepath.Join(base, "loose")
	if err := os.Mkdir(loose, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := try(loose); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("world-writable directory: err = %v", err)
	}

	link := filepath.Join(base, "link")
	if err := os.Symlink(fresh, link); err != nil {
		t.Fatal(err)
	}
	if err := try(link); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("directory that is a symbolic link: err = %v", err)
	}

	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte(victimContent), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := try(file); err == nil {
		t.Errorf("a file as lock directory was accepted")
	}
	assertVictim(t, file)

	if os.Geteuid() != 0 {
		t.Log("not root: the foreign-owner case needs chown")
		return
	}
	foreign := filepath.Join(base, "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := try(foreign); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("directory of another user: err = %v", err)
	}
	// A lock file of another user inside our own directory is refused too.
	own := lockDirForTest(t)
	p := filepath.Join(own, lockFileName("", "lab", "qemu:///system"))
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := try(own); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("lock file of another user: err = %v", err)
	}
}

// TestLockDirDoesNotDependOnUser: without the override every user gets the
// same directory.
func TestLockDirDoesNotDependOnUser(t *testing.T) {
	t.Setenv(DirEnv, "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if d := Dir(); d != DefaultDir {
		t.Errorf("Dir() = %q, want %q", d, DefaultDir)
	}
}

// TestLockExcludesAndNamesHolder: a second taker waits, is told who holds
// the lock (sanitised), and gets ErrLocked; Release lets it in and never
// truncates the file first.
func TestLockExcludesAndNamesHolder(t *testing.T) {
	ctx := context.Background()
	lockDirForTest(t)
	l1, err := AcquireVM(ctx, "qemu:///system", "lab-1", "reset", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The holder's text is what the file says, printable and bounded.
	if _, err := l1.f.WriteAt([]byte("pid 1: \x1b[2Jevil\x07 "+strings.Repeat("x", 500)+"\n"), 0); err != nil {
		t.Fatal(err)
	}
	var told string
	_, err = AcquireVM(ctx, "qemu:///system", "lab-1", "snapshot create", 300*time.Millisecond, func(h string) { told = h })
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: err = %v, want ErrLocked", err)
	}
	for _, s := range []string{told, err.Error()} {
		if strings.ContainsAny(s, "\x1b\x07") || !strings.Contains(s, "pid 1: ?[2Jevil?") || len(s) > 400 {
			t.Errorf("holder text not sanitised: %q", s)
		}
	}
	// Another VM and the same VM on another host are separate locks.
	for _, args := range [][2]string{{"qemu:///system", "lab-2"}, {"qemu+ssh://other/system", "lab-1"}} {
		l, err := AcquireVM(ctx, args[0], args[1], "reset", 0, nil)
		if err != nil {
			t.Errorf("lock %v: %v", args, err)
			continue
		}
		l.Release()
	}
	size := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(l1.path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Size
	}
	before := size()
	l1.Release()
	if after := size(); after != before {
		t.Errorf("Release changed the lock file size from %d to %d", before, after)
	}
	l2, err := AcquireVM(ctx, "qemu:///system", "lab-1", "snapshot create", 0, nil)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	defer l2.Release()
	b, _ := os.ReadFile(l2.path)
	if rec := string(b); !strings.HasPrefix(rec, "pid ") || !strings.Contains(rec, ": snapshot create, since ") || strings.Contains(rec, "evil") || strings.Count(rec, "\n") != 1 {
		t.Errorf("holder record %q", b)
	}
}

func TestVMLockOrder(t *testing.T) {
	got := VMOrder([]string{"b", "a", "b", "c", "a"})
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("VMOrder = %v", got)
	}
	if n := lockFileName("vm-", "../../etc/x", "u"); strings.Contains(n, "/") {
		t.Errorf("lock file name %q has a slash", n)
	}
}

// TestLockDirParentMayBeShared: the default lock directory's parent
// (/run/legacyvm) also holds the daemon's state file and is created 0755
// when the daemon runs first; locks must still work there, while a parent
// that others can write to is refused.
func TestLockDirParentMayBeShared(t *testing.T) {
	base := t.TempDir()
	shared := filepath.Join(base, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ensureDirs(shared, filepath.Join(shared, "locks")); err != nil {
		t.Fatalf("a 0755 parent of the caller's was refused: %v", err)
	}
	if st, err := os.Lstat(filepath.Join(shared, "locks")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("lock directory: %v %v", st, err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	err := ensureDirs(open, filepath.Join(open, "locks"))
	if err == nil || !strings.Contains(err.Error(), "others can write to it") {
		t.Fatalf("a world-writable parent: %v", err)
	}
}
