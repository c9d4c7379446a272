package testenv_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

// Restart behaves like a host's libvirtd restart: the daemon is a new
// process, the running domain keeps its QEMU process and its serial log,
// and the new daemon controls it.
func TestRestartKeepsDomainsRunning(t *testing.T) {
	e := testenv.Libvirt(t)
	g := testenv.Guest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := e.PoolDir(t)
	serial := filepath.Join(dir, "restart.serial.log")
	v := vm{name: "lvt-restart", accel: e.Accel, disk: g.GoldenCopy(t, dir), serialLog: serial,
		rig: []string{"rig.hb=1", "rig.ip=none", "rig.listen=0", "rig.control=0", "rig.answercd=0"}}
	v.start(t, ctx, e)
	if _, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`RIG hb n=2 `)); err != nil {
		t.Fatal(err)
	}
	qemuPID := pidFile(t, filepath.Join(e.Dir, "run", "qemu", v.name+".pid"))
	daemonPID := pidFile(t, filepath.Join(e.Dir, "libvirtd.pid"))

	t0 := time.Now()
	if err := e.Restart(ctx); err != nil {
		t.Fatalf("restart: %v\n%s", err, lastLines(e.DaemonLog(), 20))
	}
	t.Logf("libvirtd restarted in %.2fs", time.Since(t0).Seconds())

	if got := pidFile(t, filepath.Join(e.Dir, "libvirtd.pid")); got == daemonPID {
		t.Errorf("libvirtd pid is still %d after the restart", got)
	}
	if got := strings.TrimSpace(virsh(t, ctx, e, "domstate", v.name)); got != "running" {
		t.Fatalf("after the restart the domain is %q", got)
	}
	if got := pidFile(t, filepath.Join(e.Dir, "run", "qemu", v.name+".pid")); got != qemuPID {
		t.Errorf("QEMU pid %d -> %d: the domain was restarted", qemuPID, got)
	}
	if err := syscall.Kill(qemuPID, 0); err != nil {
		t.Errorf("QEMU process %d: %v", qemuPID, err)
	}
	// The guest goes on where it was, in the same log.
	b, _ := os.ReadFile(serial)
	n := len(regexp.MustCompile(`RIG hb n=`).FindAll(b, -1))
	if _, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`RIG hb n=`+strconv.Itoa(n+2)+` `)); err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), "RIG boot") != 1 {
		t.Errorf("the guest booted again:\n%s", b)
	}
	// And the new daemon controls it.
	virsh(t, ctx, e, "destroy", v.name)
	waitState(t, ctx, e, v.name, "shut off")
}

func pidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}
