package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NamePrefix starts the name of every network namespace and instance
// directory the harness creates. Reap only ever touches names with this
// prefix.
const NamePrefix = "lvt-"

// privateDirs are the host directories that each instance replaces with its
// own (bind mounts inside the instance's private mount namespace). The value
// is the instance subdirectory used for it.
var privateDirs = []struct{ host, sub string }{
	{"/etc/libvirt", "etc"},
	{"/run/libvirt", "run"},
	{"/var/lib/libvirt", "lib"},
	{"/var/cache/libvirt", "cache"},
	{"/var/log/libvirt", "log"},
}

// Env is one running private libvirtd (with its virtlogd) inside a network
// namespace and a private mount namespace of its own. Everything libvirt
// creates through URI (bridges, dnsmasq, nwfilter rules, QEMU processes)
// lives in NetNS; its state lives under Dir.
type Env struct {
	// URI connects to this instance from the root namespace:
	// qemu:///system?socket=<Dir>/sock/libvirt-sock.
	URI string
	// NetNS is the network namespace name (ip netns), NamePrefix + owner
	// PID + random suffix.
	NetNS string
	// Accel is the domain type tests should use: "kvm" when KVM works,
	// otherwise "qemu" (TCG).
	Accel string
	// Dir is the instance directory: sockets, daemon logs, private libvirt
	// state, and the parents of PoolDir directories. Removed by Stop.
	Dir string
	// TLSAddr and PKIDir are set when the instance listens for TLS
	// clients (Options.TLS): the address in its namespace, and the client
	// certificate directory for ?pkipath= (see TLSURI).
	TLSAddr netip.Addr
	PKIDir  string

	listen bool   // libvirtd --listen
	mntNS  string // the daemons' mount namespace, kept by StopDaemon

	daemon   *exec.Cmd // ip netns exec ... tini -s -- libvirtd
	exited   chan struct{}
	stopOnce sync.Once
	stopErr  error
	poolSeq  int
	mu       sync.Mutex
}

// Options tune Start. The zero value is what tests use.
type Options struct {
	// Accel forces the accelerator: "kvm", "qemu" or "tcg" (= "qemu"). Empty:
	// LEGACYVM_TEST_ACCEL, else detection (see DetectAccel).
	Accel string
	// BaseDir is where the instance directory is created (default
	// os.TempDir()). The path must be traversable by the QEMU user.
	BaseDir string
	// Logf receives progress lines (nil: silent).
	Logf func(format string, args ...any)
	// TLS, when set, makes libvirtd listen for qemu+tls:// clients.
	TLS *TLSOptions
}

// Commands the harness needs on the host, with the Debian package providing
// each (for error messages).
var requiredCommands = []struct{ cmd, pkg string }{
	{"ip", "iproute2"},
	{"unshare", "util-linux"},
	{"libvirtd", "libvirt-daemon-system"},
	{"virtlogd", "libvirt-daemon-system"},
	{"virsh", "libvirt-clients"},
	{"tini", "tini"},
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"qemu-img", "qemu-utils"},
	{"dnsmasq", "dnsmasq-base"},
	{"ebtables", "iptables"},
}

// Preflight reports why an instance cannot start on this host (not root,
// missing commands), or nil.
func Preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("testenv needs root (network namespaces, bind mounts, libvirtd)")
	}
	var missing []string
	for _, c := range requiredCommands {
		if _, err := exec.LookPath(c.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", c.cmd, c.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing commands: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Start creates a network namespace, private copies of libvirt's state
// directories and a libvirtd + virtlogd that use them, and waits until the
// daemon answers on URI. Stale instances of dead owners are reaped first.
// This is the only place the daemons are started (Libvirt and the testenv
// command both call it). The caller must Stop the Env.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	if reaped, err := Reap(ctx); err != nil {
		logf("testenv: reap stale instances: %v", err)
	} else if len(reaped) > 0 {
		logf("testenv: reaped stale instances %s", strings.Join(reaped, ", "))
	}
	accel, err := accelFromEnv(opts.Accel)
	if err != nil {
		return nil, err
	}

	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("random instance name: %w", err)
	}
	name := fmt.Sprintf("%s%d-%s", NamePrefix, os.Getpid(), hex.EncodeToString(rnd[:]))
	base := opts.BaseDir
	if base == "" {
		base = os.TempDir()
	}
	e := &Env{NetNS: name, Dir: filepath.Join(base, name), exited: make(chan struct{})}
	e.URI = "qemu:///system?socket=" + filepath.Join(e.Dir, "sock", "libvirt-sock")

	// The state file is written first and removed last: as long as it
	// exists, Reap can find and clean whatever of this instance exists.
	if err := writeState(instanceState{Name: name, Dir: e.Dir, OwnerPID: os.Getpid(), OwnerStart: procStartTime(os.Getpid())}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = e.Stop(context.WithoutCancel(ctx))
		}
	}()
	if err := holdKVM(name); err != nil {
		return nil, err
	}
	e.listen = opts.TLS != nil
	if err := e.prepareDir(); err != nil {
		return nil, err
	}
	if opts.TLS != nil {
		conf, err := e.prepareTLS(opts.TLS)
		if err != nil {
			return nil, err
		}
		if err := appendFile(filepath.Join(e.Dir, "etc", "libvirtd.conf"), conf); err != nil {
			return nil, fmt.Errorf("private libvirtd.conf: %w", err)
		}
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create network namespace %q: %w: %s", name, err, bytes.TrimSpace(out))
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("network namespace %q: lo up: %w: %s", name, err, bytes.TrimSpace(out))
	}
	if err := e.startDaemons(ctx); err != nil {
		return nil, err
	}
	if err := e.waitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	saveQEMUCaps(e.Dir)
	if accel == "" {
		accel, err = DetectAccel(ctx, e)
		if err != nil {
			return nil, err
		}
	}
	e.Accel = accel
	logf("testenv: libvirtd ready in netns %s (accel %s)", name, accel)
	return e, nil
}

// prepareDir lays out the instance directory: private copies of libvirt's
// configuration (without the host's domain, network and pool definitions)
// and empty state trees with the host's ownership and modes.
func (e *Env) prepareDir() error {
	if err := os.Mkdir(e.Dir, 0o755); err != nil {
		return fmt.Errorf("create instance dir: %w", err)
	}
	// QEMU runs as libvirt-qemu and must traverse to disks under Dir.
	if err := os.Chmod(e.Dir, 0o755); err != nil {
		return fmt.Errorf("instance dir %q: %w", e.Dir, err)
	}
	for _, sub := range []string{"sock", "pools"} {
		if err := os.Mkdir(filepath.Join(e.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("instance dir: %w", err)
		}
	}
	for _, d := range privateDirs {
		dst := filepath.Join(e.Dir, d.sub)
		if err := copyTreeSkeleton(d.host, dst, d.host == "/etc/libvirt"); err != nil {
			return fmt.Errorf("private %s: %w", d.host, err)
		}
		// The bind-mount target must exist in the root namespace; creating
		// an empty directory there is harmless (the packages own it anyway).
		if err := os.MkdirAll(d.host, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", d.host, err)
		}
	}
	seedQEMUCaps(e.Dir)
	conf := fmt.Sprintf(`
# --- legacyvm testenv instance %s ---
unix_sock_dir = %q
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tcp = 0
`, e.NetNS, filepath.Join(e.Dir, "sock"))
	if !e.listen {
		conf += "listen_tls = 0\n"
	}
	if err := appendFile(filepath.Join(e.Dir, "etc", "libvirtd.conf"), conf); err != nil {
		return fmt.Errorf("private libvirtd.conf: %w", err)
	}
	// Shared read-only images (the stand-in guest) are used by several
	// instances at once: do not keep owner records in their xattrs, which
	// every instance would update. No cgroups: the cgroup tree is shared
	// by all instances, and their domain ids and names can coincide
	// (machine/qemu-1-vm.libvirt-qemu in two instances at once).
	qconf := fmt.Sprintf("\n# --- legacyvm testenv instance %s ---\nremember_owner = 0\ncgroup_controllers = [ ]\n", e.NetNS)
	if err := appendFile(filepath.Join(e.Dir, "etc", "qemu.conf"), qconf); err != nil {
		return fmt.Errorf("private qemu.conf: %w", err)
	}
	return nil
}

// QEMU capability probes (one QEMU run per emulator, 1-5 s on a busy
// host) are shared between instances through a copy of libvirt's cache in
// the state dir. libvirt validates each entry (QEMU and libvirtd binaries,
// kernel, KVM access) and probes again when it does not match.
func qemuCapsShared() string { return filepath.Join(stateDir, "qemu-caps") }

func seedQEMUCaps(dir string) {
	ents, err := os.ReadDir(qemuCapsShared())
	if err != nil {
		return
	}
	dst := filepath.Join(dir, "cache", "qemu", "capabilities")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".xml") {
			_ = CopyFile(filepath.Join(qemuCapsShared(), e.Name()), filepath.Join(dst, e.Name()), 0o600)
		}
	}
}

func saveQEMUCaps(dir string) {
	src := filepath.Join(dir, "cache", "qemu", "capabilities")
	ents, err := os.ReadDir(src)
	if err != nil || os.MkdirAll(qemuCapsShared(), 0o755) != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".xml") {
			continue
		}
		tmp := filepath.Join(qemuCapsShared(), fmt.Sprintf(".%s.%d", e.Name(), os.Getpid()))
		if CopyFile(filepath.Join(src, e.Name()), tmp, 0o600) == nil {
			_ = os.Rename(tmp, filepath.Join(qemuCapsShared(), e.Name()))
		}
		_ = os.Remove(tmp)
	}
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyTreeSkeleton recreates src's directories (two levels) in dst with the
// same mode and owner. With files=true it also copies regular files, except
// the host's persistent object definitions (domains, networks, pools,
// secrets) and hooks, so a private daemon starts with nothing but the
// built-in nwfilters and the configuration files.
func copyTreeSkeleton(src, dst string, files bool) error {
	// Host hooks are the host admin's scripts for the host's daemon: a test
	// instance must not run them.
	skip := map[string]bool{"qemu": true, "storage": true, "secrets": true, "nodedev": true, "lxc": true, "libxl": true, "hooks": true}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == src {
				return fs.SkipAll
			}
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return copyMeta(path, dst)
		}
		depth := strings.Count(rel, string(filepath.Separator)) + 1
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if files && skip[rel] {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
				if err := copyMeta(path, target); err != nil {
					return err
				}
				return fs.SkipDir
			}
			if depth > 2 && !files {
				return fs.SkipDir
			}
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			return copyMeta(path, target)
		case files && d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, data, 0o600); err != nil {
				return err
			}
			return copyMeta(path, target)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if files { // what libvirtd expects to find (empty) in its config dir
		for _, sub := range []string{"qemu", "qemu/networks", "storage", "secrets"} {
			if err := os.MkdirAll(filepath.Join(dst, sub), 0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyMeta(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Chown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return os.Chmod(dst, fi.Mode().Perm())
}

// daemonScript runs inside "ip netns exec NS unshare --mount
// --propagation private": it replaces libvirt's directories with the
// instance's copies (visible only to this mount namespace and its children:
// virtlogd, libvirtd, dnsmasq, QEMU) and execs libvirtd under tini, which
// reaps QEMU processes at once (the host's PID 1 reaps orphans slowly).
const daemonScript = `set -e
D="$1"
mount --bind "$D/etc" /etc/libvirt
mount --bind "$D/run" /run/libvirt
mount --bind "$D/lib" /var/lib/libvirt
mount --bind "$D/cache" /var/cache/libvirt
mount --bind "$D/log" /var/log/libvirt
virtlogd -d -p "$D/virtlogd.pid"
exec tini -s -- libvirtd -p "$D/libvirtd.pid" $2
`

func (e *Env) startDaemons(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(e.Dir, "libvirtd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("libvirtd log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", e.NetNS,
		"unshare", "--mount", "--propagation", "private",
		"sh", "-c", daemonScript, "testenv-daemons", e.Dir, e.listenFlag())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.Env = daemonEnv()
	// Own process group: a Ctrl-C to the test binary does not reach the
	// daemons before Stop has destroyed the domains.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start libvirtd in %q: %w", e.NetNS, err)
	}
	e.daemon = cmd
	go func() { _ = cmd.Wait(); close(e.exited) }()
	if err := updateState(e.NetNS, func(s *instanceState) { s.DaemonPID = cmd.Process.Pid }); err != nil {
		return err
	}
	return nil
}

// listenFlag is libvirtd's flag for TCP/TLS listening ("" when the
// instance only serves its unix socket).
func (e *Env) listenFlag() string {
	if e.listen {
		return "--listen"
	}
	return ""
}

// daemonEnv is a minimal, predictable environment for the daemons (no
// LIBVIRT_* or proxy variables inherited from the test).
func daemonEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LANG=C.UTF-8",
	}
}

func (e *Env) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := e.Virsh(ctx, "version")
		if err == nil {
			return nil
		}
		select {
		case <-e.exited:
			return fmt.Errorf("libvirtd in %q exited during start: %s", e.NetNS, e.DaemonLog())
		case <-ctx.Done():
			return fmt.Errorf("wait for libvirtd in %q: %w", e.NetNS, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd in %q did not answer within %s: %v: %s\n%s", e.NetNS, timeout, err, bytes.TrimSpace(out), e.DaemonLog())
		}
	}
}

// Virsh runs virsh against this instance and returns its combined output.
func (e *Env) Virsh(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", e.URI}, args...)...)
	cmd.Env = append(os.Environ(), "LIBVIRT_DEFAULT_URI="+e.URI)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// DaemonLog returns what libvirtd and virtlogd printed (for failure
// messages).
func (e *Env) DaemonLog() string {
	b, err := os.ReadFile(filepath.Join(e.Dir, "libvirtd.log"))
	if err != nil {
		return fmt.Sprintf("(no daemon log: %v)", err)
	}
	return string(b)
}

// Run runs a command inside the instance's network namespace (the host side
// of the libvirt bridges) and returns its combined output.
func (e *Env) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.NetNS, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("run %s in %q: %w", name, e.NetNS, err)
	}
	return out, nil
}

// NewPoolDir creates a fresh directory under Dir/pools that libvirt can use
// as a "dir" storage pool (and QEMU, running as the libvirt-qemu user, can
// read and write).
func (e *Env) NewPoolDir(prefix string) (string, error) {
	e.mu.Lock()
	e.poolSeq++
	n := e.poolSeq
	e.mu.Unlock()
	dir := filepath.Join(e.Dir, "pools", fmt.Sprintf("%s%d", sanitize(prefix), n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("pool dir: %w", err)
	}
	// 0777: libvirt's DAC driver chowns volumes, but QEMU itself may create
	// files (snapshots, logs) here as libvirt-qemu.
	if err := os.Chmod(dir, 0o777); err != nil {
		return "", fmt.Errorf("pool dir %q: %w", dir, err)
	}
	return dir, nil
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "pool"
	}
	return b.String()
}

// Stop destroys every domain of the instance, stops the daemons and
// whatever else runs in the namespace (dnsmasq, QEMU), deletes the namespace
// and Dir, and releases /dev/kvm. It is safe to call more than once.
func (e *Env) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() { e.stopErr = e.stop(ctx) })
	return e.stopErr
}

func (e *Env) stop(ctx context.Context) error {
	var errs []error
	if e.daemon != nil {
		select {
		case <-e.exited:
		default:
			e.destroyAll(ctx)
		}
	}
	if err := teardown(ctx, e.NetNS, e.Dir, e.daemonPID()); err != nil {
		errs = append(errs, err)
	}
	if e.daemon != nil {
		select {
		case <-e.exited:
		case <-time.After(5 * time.Second):
			errs = append(errs, fmt.Errorf("libvirtd of %q did not exit", e.NetNS))
		}
	}
	return errors.Join(errs...)
}

func (e *Env) daemonPID() int {
	if e.daemon == nil || e.daemon.Process == nil {
		return 0
	}
	return e.daemon.Process.Pid
}

// destroyAll powers off every running domain through the URI, so libvirt
// itself tears down QEMU, taps and nwfilter rules.
func (e *Env) destroyAll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := e.Virsh(ctx, "list", "--name", "--state-running", "--state-paused", "--state-other")
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, name := range strings.Fields(string(out)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = e.Virsh(ctx, "destroy", name)
		}()
	}
	wg.Wait()
}

// teardown removes everything of one instance, whether its owner is this
// process (Stop) or a dead one (Reap): every process in the namespace
// (SIGTERM, then SIGKILL), the daemon pid, the namespace, the directory, the
// /dev/kvm hold and the state file. Missing parts are fine.
func teardown(ctx context.Context, name, dir string, daemonPID int) error {
	var errs []error
	pids := netnsPIDs(ctx, name)
	if daemonPID > 0 {
		pids = append(pids, daemonPID)
	}
	for _, f := range []string{"virtlogd.pid", "libvirtd.pid"} {
		if pid := readPIDFile(filepath.Join(dir, f)); pid > 0 && pidInNetNS(pid, name) {
			pids = append(pids, pid)
		}
	}
	killAll(pids, 5*time.Second)
	if left := netnsPIDs(ctx, name); len(left) > 0 {
		killAll(left, 2*time.Second)
	}
	if netnsExists(name) {
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete network namespace %q: %w: %s", name, err, bytes.TrimSpace(out)))
		}
	}
	if dir != "" && strings.HasPrefix(filepath.Base(dir), NamePrefix) {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove instance dir: %w", err))
		}
	}
	if err := releaseKVM(name); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		removeState(name)
	}
	return errors.Join(errs...)
}

// netnsPIDs lists the processes whose network namespace is name.
func netnsPIDs(ctx context.Context, name string) []int {
	if !netnsExists(name) {
		return nil
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// pidInNetNS reports whether pid runs in the network namespace name (used to
// check a pid file before trusting it: pids are reused).
func pidInNetNS(pid int, name string) bool {
	a, err1 := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
	b, err2 := os.Stat(filepath.Join("/run/netns", name))
	if err1 != nil || err2 != nil {
		return false
	}
	return os.SameFile(a, b)
}

func readPIDFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// killAll sends SIGTERM to each pid, waits up to grace for them to go, then
// SIGKILLs the rest and waits briefly again.
func killAll(pids []int, grace time.Duration) {
	if len(pids) == 0 {
		return
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	if waitGone(pids, grace) {
		return
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	waitGone(pids, 2*time.Second)
}

// waitGone waits until none of pids is alive (zombies count as gone).
func waitGone(pids []int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		alive := false
		for _, p := range pids {
			if processAlive(p) {
				alive = true
				break
			}
		}
		if !alive {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive: the process exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// procStartTime returns the start time of pid in clock ticks since boot
// (field 22 of /proc/PID/stat), 0 if unknown. Together with the pid it
// identifies a process across pid reuse.
func procStartTime(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// s[i+1:] starts at field 3 (state); field 22 is index 19.
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}
