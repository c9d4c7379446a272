package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// stateDir holds one JSON file per live instance, the /dev/kvm holders and
// the lock that serialises changes to them. It is on tmpfs (/run): a reboot
// clears it together with everything it describes.
var stateDir = "/run/legacyvm-testenv"

// instanceState is what Reap needs to find and remove an instance whose
// owner died.
type instanceState struct {
	Name       string `json:"name"`
	Dir        string `json:"dir"`
	OwnerPID   int    `json:"owner_pid"`
	OwnerStart uint64 `json:"owner_start"` // /proc/PID/stat start time: guards against pid reuse
	DaemonPID  int    `json:"daemon_pid,omitempty"`
}

func statePath(name string) string { return filepath.Join(stateDir, name+".json") }

func writeState(s instanceState) error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("testenv state dir: %w", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("instance %q state: %w", s.Name, err)
	}
	tmp := statePath(s.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("instance %q state: %w", s.Name, err)
	}
	if err := os.Rename(tmp, statePath(s.Name)); err != nil {
		return fmt.Errorf("instance %q state: %w", s.Name, err)
	}
	return nil
}

func readState(name string) (instanceState, bool) {
	var s instanceState
	b, err := os.ReadFile(statePath(name))
	if err != nil {
		return s, false
	}
	if json.Unmarshal(b, &s) != nil || s.Name != name {
		return s, false
	}
	return s, true
}

func updateState(name string, f func(*instanceState)) error {
	s, ok := readState(name)
	if !ok {
		return fmt.Errorf("instance %q: state file missing", name)
	}
	f(&s)
	return writeState(s)
}

func removeState(name string) { _ = os.Remove(statePath(name)) }

// withLock runs f while holding the exclusive flock of the state dir.
func withLock(f func() error) error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("testenv state dir: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("testenv lock: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("testenv lock: %w", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// ownerFromName parses the owner PID out of NamePrefix<pid>-<suffix>.
func ownerFromName(name string) int {
	rest, ok := strings.CutPrefix(name, NamePrefix)
	if !ok {
		return 0
	}
	p, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(p)
	if err != nil {
		return 0
	}
	return pid
}

// ownerAlive reports whether the process that created instance name still
// runs. With a state file the start time must match too (pid reuse).
func ownerAlive(name string) bool {
	if s, ok := readState(name); ok {
		if !processAlive(s.OwnerPID) {
			return false
		}
		return s.OwnerStart == 0 || procStartTime(s.OwnerPID) == s.OwnerStart
	}
	pid := ownerFromName(name)
	return pid > 0 && processAlive(pid)
}

// instanceNames lists every instance that has left a trace: a namespace in
// /run/netns, a state file, a /dev/kvm hold, or a directory in the temp dir.
func instanceNames() map[string]string {
	names := map[string]string{} // name -> instance dir (if known)
	add := func(n, dir string) {
		if !strings.HasPrefix(n, NamePrefix) || ownerFromName(n) == 0 {
			return
		}
		if names[n] == "" {
			names[n] = dir
		}
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			add(e.Name(), "")
		}
	}
	if ents, err := os.ReadDir(stateDir); err == nil {
		for _, e := range ents {
			if n, ok := strings.CutSuffix(e.Name(), ".json"); ok {
				s, _ := readState(n)
				add(n, s.Dir)
			}
		}
	}
	if ents, err := os.ReadDir(kvmHoldersDir()); err == nil {
		for _, e := range ents {
			add(e.Name(), "")
		}
	}
	if ents, err := os.ReadDir(os.TempDir()); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				add(e.Name(), filepath.Join(os.TempDir(), e.Name()))
			}
		}
	}
	return names
}

// Reap removes the instances whose owning process is dead: the processes
// left in their namespaces (libvirtd, virtlogd, dnsmasq, QEMU), the
// namespaces (and with them the last reference to their private mounts),
// their directories and their /dev/kvm holds. Instances of live owners are
// never touched. It returns the names it removed.
func Reap(ctx context.Context) ([]string, error) {
	var reaped []string
	var errs []error
	names := instanceNames()
	keys := make([]string, 0, len(names))
	for n := range names {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	for _, name := range keys {
		if err := ctx.Err(); err != nil {
			return reaped, err
		}
		if ownerAlive(name) {
			continue
		}
		dir := names[name]
		if dir == "" {
			dir = filepath.Join(os.TempDir(), name)
		}
		if err := teardown(ctx, name, dir, 0); err != nil {
			errs = append(errs, fmt.Errorf("reap %q: %w", name, err))
			continue
		}
		reaped = append(reaped, name)
	}
	return reaped, errors.Join(errs...)
}

// ---- /dev/kvm -------------------------------------------------------------------------------

// kvmDevice is chmod'ed 0666 while any instance runs: while libvirt's QEMU
// user cannot open it, libvirt re-probes QEMU on every domain start.
var kvmDevice = "/dev/kvm"

func kvmHoldersDir() string { return filepath.Join(stateDir, "kvm-holders") }
func kvmModeFile() string   { return filepath.Join(stateDir, "kvm-mode") }

// holdKVM registers instance name as a user of /dev/kvm; the first holder
// records the device's mode and makes it 0666.
func holdKVM(name string) error {
	if _, err := os.Stat(kvmDevice); err != nil {
		return nil
	}
	return withLock(func() error {
		if err := os.MkdirAll(kvmHoldersDir(), 0o755); err != nil {
			return fmt.Errorf("kvm holders: %w", err)
		}
		if _, err := os.Stat(kvmModeFile()); errors.Is(err, fs.ErrNotExist) {
			fi, err := os.Stat(kvmDevice)
			if err != nil {
				return fmt.Errorf("stat %s: %w", kvmDevice, err)
			}
			mode := strconv.FormatUint(uint64(fi.Mode().Perm()), 8)
			if err := os.WriteFile(kvmModeFile(), []byte(mode+"\n"), 0o644); err != nil {
				return fmt.Errorf("record %s mode: %w", kvmDevice, err)
			}
		}
		if err := os.WriteFile(filepath.Join(kvmHoldersDir(), name), nil, 0o644); err != nil {
			return fmt.Errorf("kvm hold: %w", err)
		}
		if err := os.Chmod(kvmDevice, 0o666); err != nil {
			return fmt.Errorf("chmod %s: %w", kvmDevice, err)
		}
		return nil
	})
}

// releaseKVM drops name's hold; the last holder restores the recorded mode.
func releaseKVM(name string) error {
	return withLock(func() error {
		err := os.Remove(filepath.Join(kvmHoldersDir(), name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("kvm hold of %q: %w", name, err)
		}
		ents, err := os.ReadDir(kvmHoldersDir())
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("kvm holders: %w", err)
		}
		if len(ents) > 0 {
			return nil
		}
		b, err := os.ReadFile(kvmModeFile())
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kvm mode: %w", err)
		}
		mode, err := strconv.ParseUint(strings.TrimSpace(string(b)), 8, 32)
		if err != nil {
			return fmt.Errorf("kvm mode file: %w", err)
		}
		if err := os.Chmod(kvmDevice, fs.FileMode(mode)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore %s mode: %w", kvmDevice, err)
		}
		return os.Remove(kvmModeFile())
	})
}
