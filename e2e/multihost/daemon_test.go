package multihost

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/testenv"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// daemonProfile: one guest on each host whose policy reverts it to its
// baseline when it shuts itself down.
func (p *pair) daemonProfile() string {
	return p.hostBlocks() + fmt.Sprintf(`
snapshot_policy "tester" {
  on_shutdown = "revert"
}

vm "dm" {
  count           = 2
  os              = "win7-x64"
  cpus            = 1
  memory          = "256MiB"
  placement       = "spread"
  snapshot_policy = snapshot_policy.tester
  disk {
    image   = %q
    prepare = "none"
  }
  oem_strings = ["rig.ip=none", "rig.hb=2"]
}
`, p.Golden)
}

type logRecords struct{ buf *e2eutil.SyncBuffer }

func (l logRecords) wait(t *testing.T, timeout time.Duration, want map[string]string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(l.buf.String(), "\n") {
			if !strings.HasPrefix(line, "{") {
				continue // the profile's warnings, printed before the daemon starts logging
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("daemon log line is not JSON: %q", line)
			}
			ok := true
			for k, v := range want {
				if fmt.Sprint(rec[k]) != v {
					ok = false
					break
				}
			}
			if ok {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no daemon log record with %v within %s; log:\n%s", want, timeout, l.buf.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// One daemon serves both hosts. With B's libvirtd stopped it reports B
// unhealthy and still reverts a guest on A that shut itself down; when B
// is back it connects to it again. With the link to B cut, keepalive
// notices the silent connection, and the daemon reconnects when the link
// is back.
func TestDaemonKeepsServingWhileAHostIsDown(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	dir := e2eutil.Profile(t, "dm", map[string]string{"main.hcl": p.daemonProfile()})
	p.mustRun(t, nil, []string{"apply", "--auto-approve", dir}, 0)
	if got := domainsOn(t, p.HVA, "dm"); joined(got) != "dm-1" {
		t.Fatalf("host a has %v, want dm-1", got)
	}

	cmd := p.command(t, nil, "daemon", "--log-json", dir)
	errb := &e2eutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = &e2eutil.SyncBuffer{}, errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	logs := logRecords{errb}
	logs.wait(t, time.Minute, map[string]string{"msg": "connected to libvirt", "uri": p.A.URI})
	logs.wait(t, time.Minute, map[string]string{"msg": "connected to libvirt", "uri": p.B.TLSURI()})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := p.B.StopDaemon(ctx); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, time.Minute, map[string]string{"health": "unhealthy", "uri": p.B.TLSURI()})

	// The guest on A powers off on its own (ACPI): the daemon reverts it
	// to its baseline and it runs again.
	serial := filepath.Join(p.LogDir, "dm-1.serial.log")
	if _, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`RIG hb n=1 `)); err != nil {
		t.Fatal(err)
	}
	if err := p.HVA.ShutdownDomain(ctx, "dm-1"); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, 3*time.Minute, map[string]string{"msg": "guest shut down: reverted to baseline", "vm": "dm-1", "uri": p.A.URI})
	d, err := p.HVA.GetDomain(ctx, "dm-1")
	if err != nil || d.State != virt.StateRunning {
		t.Errorf("dm-1 after the revert: %s, %v; want running", d.State, err)
	}

	if err := p.B.StartDaemon(ctx); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, 2*time.Minute, map[string]string{"health": "healthy", "uri": p.B.TLSURI()})
	if strings.Contains(errb.String(), `"health":"unhealthy","uri":"`+p.A.URI) || strings.Contains(errb.String(), fmt.Sprintf(`"uri":%q,"health":"unhealthy"`, p.A.URI)) {
		t.Errorf("host a was reported unhealthy:\n%s", errb.String())
	}

	// Keepalive: with the link to B cut (its end of the veth down, inside
	// B's namespace) the connection hangs rather than closes; libvirt's
	// keepalive drops it and B is reported unhealthy again; with the link
	// back the daemon reconnects.
	before := strings.Count(errb.String(), `"health":"unhealthy"`)
	if out, err := p.B.Command("ip", "link", "set", "lvt-peer", "down").CombinedOutput(); err != nil {
		t.Fatalf("link down: %v: %s", err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for strings.Count(errb.String(), `"health":"unhealthy"`) == before {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not notice the cut link within 2 minutes (keepalive):\n%s", errb.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	healthy := strings.Count(errb.String(), `"health":"healthy"`)
	if out, err := p.B.Command("ip", "link", "set", "lvt-peer", "up").CombinedOutput(); err != nil {
		t.Fatalf("link up: %v: %s", err, out)
	}
	deadline = time.Now().Add(4 * time.Minute)
	for strings.Count(errb.String(), `"health":"healthy"`) == healthy {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not reconnect to B after the link came back:\n%s", errb.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = os.Remove(serial)
}
