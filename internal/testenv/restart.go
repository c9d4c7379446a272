package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Restart restarts the instance's libvirtd the way a service manager
// restarts a host's daemon: SIGTERM, wait for it to exit, start it again.
// Running domains keep running (libvirtd leaves QEMU processes alone when
// it exits, and the new daemon reconnects to them), networks stay up and
// virtlogd keeps running, so serial logs go on. The new daemon runs in the
// same network namespace and the same private mount namespace as the old
// one. Clients lose their connections, as with a real restart. Restart
// returns when the new daemon answers on URI. It must not run concurrently
// with Stop.
//
// QEMU processes started before the restart are no longer children of the
// daemon's tini; the host's init reaps them when they exit (slowly on some
// machines), which can make destroying or reverting those domains take a
// second longer.
func (e *Env) Restart(ctx context.Context) error {
	if err := e.StopDaemon(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	if err := e.StartDaemon(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// StopDaemon stops the instance's libvirtd (SIGTERM, as a service manager
// does) and leaves it stopped: clients lose their connections and new
// ones are refused, while domains, networks and virtlogd go on. StartDaemon
// starts it again. Stop works on a stopped daemon too.
func (e *Env) StopDaemon(ctx context.Context) error {
	if e.daemon == nil || e.daemon.Process == nil {
		return fmt.Errorf("stop libvirtd in %q: the instance has no daemon", e.NetNS)
	}
	select {
	case <-e.exited:
		return fmt.Errorf("stop libvirtd in %q: the daemon is not running: %s", e.NetNS, e.DaemonLog())
	default:
	}
	// virtlogd lives in the daemons' mount namespace for the whole life of
	// the instance: the new libvirtd joins it there.
	logd := readPIDFile(filepath.Join(e.Dir, "virtlogd.pid"))
	if logd <= 0 || !pidInNetNS(logd, e.NetNS) {
		return fmt.Errorf("stop libvirtd in %q: virtlogd is not running (pid file %s)", e.NetNS, filepath.Join(e.Dir, "virtlogd.pid"))
	}
	mntNS := fmt.Sprintf("/proc/%d/ns/mnt", logd)
	if _, err := os.Stat(mntNS); err != nil {
		return fmt.Errorf("stop libvirtd in %q: mount namespace: %w", e.NetNS, err)
	}
	e.mntNS = mntNS

	// tini forwards SIGTERM to libvirtd and exits with it.
	if err := e.daemon.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop libvirtd in %q: %w", e.NetNS, err)
	}
	select {
	case <-e.exited:
	case <-time.After(30 * time.Second):
		_ = e.daemon.Process.Kill()
		<-e.exited
	case <-ctx.Done():
		return fmt.Errorf("stop libvirtd in %q: wait for the daemon to stop: %w", e.NetNS, ctx.Err())
	}
	return nil
}

// StartDaemon starts libvirtd again after StopDaemon, in the same network
// and mount namespaces, and returns when it answers on URI.
func (e *Env) StartDaemon(ctx context.Context) error {
	if e.mntNS == "" {
		return fmt.Errorf("start libvirtd in %q: not stopped with StopDaemon", e.NetNS)
	}
	select {
	case <-e.exited:
	default:
		return fmt.Errorf("start libvirtd in %q: the daemon is running", e.NetNS)
	}
	logf, err := os.OpenFile(filepath.Join(e.Dir, "libvirtd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("libvirtd log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- testenv: libvirtd started again at %s ---\n", time.Now().Format(time.RFC3339Nano))
	args := []string{"--net=/run/netns/" + e.NetNS, "--mount=" + e.mntNS, "--",
		"tini", "-s", "--", "libvirtd", "-p", filepath.Join(e.Dir, "libvirtd.pid")}
	if f := e.listenFlag(); f != "" {
		args = append(args, f)
	}
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.Env = daemonEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start libvirtd in %q: %w", e.NetNS, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.daemon, e.exited = cmd, exited
	if err := updateState(e.NetNS, func(s *instanceState) { s.DaemonPID = cmd.Process.Pid }); err != nil {
		return err
	}
	return e.waitReady(ctx, 60*time.Second)
}
