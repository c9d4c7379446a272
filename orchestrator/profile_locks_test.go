package orchestrator

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/lock"
)

// free reports whether nobody holds the lock take takes (without waiting).
func free(t *testing.T, take func() (*lock.Lock, error)) bool {
	t.Helper()
	l, err := take()
	if errors.Is(err, lock.ErrLocked) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	return true
}

// LockProfile takes the profile's lock, then its instances' VM locks: a
// busy VM lock makes it wait (and say so), then fail holding nothing;
// once free it holds them all. LockPlanned adds the VMs a plan deletes
// that the profile no longer declares (never the instances again), and
// Release frees everything.
func TestSessionLocksProfileAndPlannedVMs(t *testing.T) {
	ctx := context.Background()
	t.Setenv(lock.DirEnv, filepath.Join(t.TempDir(), "locks"))
	const uri = "test:///fake"
	p := loadProfile(t, "lab", labProfile)
	s := Open(p, SessionOptions{Connect: connector(newFakeHost(t)), Plan: Options{DefaultURI: uri}})
	defer s.Close()
	profileLock := func() (*lock.Lock, error) { return lock.Acquire(ctx, "lab", uri, "test", 0, nil) }
	vmLock := func(vm string) func() (*lock.Lock, error) {
		return func() (*lock.Lock, error) { return lock.AcquireVM(ctx, uri, vm, "test", 0, nil) }
	}

	other, err := lock.AcquireVM(ctx, uri, "web-2", "another command", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var told []string
	waiting := func(kind, name, holder string) { told = append(told, kind+" "+name+" "+holder) }
	if _, err := s.LockProfile(ctx, "apply", 300*time.Millisecond, waiting); !errors.Is(err, lock.ErrLocked) || !strings.Contains(err.Error(), "web-2") {
		t.Fatalf("LockProfile while web-2 is held: %v, want ErrLocked naming web-2", err)
	}
	if len(told) != 1 || !strings.HasPrefix(told[0], "VM web-2 ") || !strings.Contains(told[0], "another command") {
		t.Errorf("waiting was told %q, want once about VM web-2 and its holder", told)
	}
	if !free(t, profileLock) || !free(t, vmLock("web-1")) {
		t.Errorf("a failed LockProfile left the profile or web-1 locked")
	}
	other.Release()

	locks, err := s.LockProfile(ctx, "apply", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range []string{"web-1", "web-2", "solo"} {
		if free(t, vmLock(vm)) {
			t.Errorf("LockProfile did not lock VM %s", vm)
		}
	}
	if free(t, profileLock) {
		t.Errorf("LockProfile did not lock the profile")
	}

	// web-1 is already held by locks: LockPlanned taking it again would
	// fail (flock excludes a second open file, even in this process).
	hp := &HostPlan{URI: uri, Plan: &Plan{Changes: []Change{
		{Kind: KindVM, Name: "web-1", Action: ActionNoop},
		{Kind: KindVM, Name: "old", Action: ActionDelete},
	}}}
	unplanned := &HostPlan{URI: "test:///other", Err: errors.New("unreachable")}
	extra, err := s.LockPlanned(ctx, []*HostPlan{hp, unplanned}, "apply", 0, nil)
	if err != nil {
		t.Fatalf("LockPlanned: %v", err)
	}
	if free(t, vmLock("old")) {
		t.Errorf("LockPlanned did not lock the leftover VM old")
	}
	extra.Release()
	locks.Release()
	locks.Release()
	for _, vm := range []string{"web-1", "web-2", "solo", "old"} {
		if !free(t, vmLock(vm)) {
			t.Errorf("Release left VM %s locked", vm)
		}
	}
	if !free(t, profileLock) {
		t.Errorf("Release left the profile locked")
	}
	var none *Locks
	none.Release()

	if _, err := OnHost(nil, "", SessionOptions{}).LockProfile(ctx, "apply", 0, nil); !errors.Is(err, errNoProfile) {
		t.Errorf("LockProfile without a profile: %v", err)
	}
}
