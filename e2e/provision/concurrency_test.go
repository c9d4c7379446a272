package provision

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

const concurrencyProfile = `
variable "golden" {}

license "cc" {
  product_key = env("CC_KEY")
  edition     = "professional"
  channel     = "mak"
  seats       = 2
}

network "cc" {
  subnet = "10.97.0.0/24"
  dhcp   = true
}

snapshot_policy "p" {}

vm "cc" {
  count  = 2
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image = var.golden
  }
  licenses        = [license.cc]
  network         = network.cc
  snapshot_policy = snapshot_policy.p
}
`

var progressLine = regexp.MustCompile(`(?m)^\[ *\d+\.\ds\] `)

// TestConcurrentApplies starts two applies of the same profile at once: one
// works, the other says it waits for the lock and then finds nothing to do;
// while the first works, an apply or a destroy with --lock-wait 0 fails
// with the lock message. The host ends up with exactly one set of objects.
func TestConcurrentApplies(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	dir := e2eutil.Profile(t, "cc", map[string]string{"main.hcl": h.HostBlock() + concurrencyProfile})
	env := []string{"CC_KEY=" + keyConc}
	args := []string{"apply", "--auto-approve", dir, "--var", "golden=" + h.Golden}

	type proc struct {
		cmd            *exec.Cmd
		stdout, stderr *e2eutil.SyncBuffer
		done           chan struct{}
		err            error
	}
	start := func() *proc {
		c, o, e := h.Start(t, env, args...)
		p := &proc{cmd: c, stdout: o, stderr: e, done: make(chan struct{})}
		go func() { p.err = c.Wait(); close(p.done) }()
		return p
	}
	a, b := start(), start()

	// One takes the lock and works; the other waits for it.
	var holder, waiter *proc
	deadline := time.Now().Add(2 * time.Minute)
	for holder == nil || waiter == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no apply working and one waiting:\n--- first\n%s\n--- second\n%s", a.stderr, b.stderr)
		}
		for _, pair := range [][2]*proc{{a, b}, {b, a}} {
			if progressLine.MatchString(pair[0].stderr.String()) && strings.Contains(pair[1].stderr.String(), "waiting for the lock on profile cc") {
				holder, waiter = pair[0], pair[1]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	holderPID := holder.cmd.Process.Pid
	if !strings.Contains(waiter.stderr.String(), fmt.Sprintf("pid %d: apply", holderPID)) {
		t.Errorf("the waiting apply does not name the holder (pid %d):\n%s", holderPID, waiter.stderr)
	}

	// While it works, nobody else gets in without waiting.
	for _, cmd := range [][]string{
		{"apply", "--auto-approve", "--lock-wait", "0", dir, "--var", "golden=" + h.Golden},
		{"destroy", "--auto-approve", "--lock-wait", "0", dir, "--var", "golden=" + h.Golden},
	} {
		r := h.RunEnv(t, env, cmd...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "is locked by another legacyvm command") ||
			!strings.Contains(r.Stderr, fmt.Sprintf("held by pid %d: apply", holderPID)) {
			t.Errorf("%s --lock-wait 0 during an apply: want exit 1 with the lock message naming pid %d\n%s", cmd[0], holderPID, r)
		}
		if progressLine.MatchString(r.Stderr) {
			t.Errorf("%s --lock-wait 0 did some work:\n%s", cmd[0], r)
		}
	}
	select {
	case <-holder.done:
		t.Fatalf("the apply holding the lock ended before the --lock-wait 0 checks; they proved nothing")
	default:
	}

	for _, p := range []*proc{holder, waiter} {
		select {
		case <-p.done:
			if p.err != nil {
				t.Errorf("apply failed: %v\n%s%s", p.err, p.stdout, p.stderr)
			}
		case <-time.After(5 * time.Minute):
			t.Fatalf("apply did not finish:\n%s", p.stderr)
		}
	}
	if !strings.Contains(waiter.stdout.String(), "No changes") || progressLine.MatchString(waiter.stderr.String()) {
		t.Errorf("the apply that waited did not find the work done:\n%s\n%s", waiter.stdout, waiter.stderr)
	}

	h.MustRun(t, []string{"plan", dir, "--var", "golden=" + h.Golden}, 0)
	scope := regexp.MustCompile(`^(lvm-)?cc(-|$)`)
	want := wantInv{profile: "cc", domains: []string{"cc-1", "cc-2"}, snapshots: []string{"clean"}, networks: []string{"cc"}}
	checkInventory(t, "after two concurrent applies", inventory(t, h, scope, "cc"), want.lines(h))
	noSecrets(t, map[string]string{
		"holder": holder.stdout.String() + holder.stderr.String(),
		"waiter": waiter.stdout.String() + waiter.stderr.String(),
	})
	h.MustRun(t, []string{"destroy", "--auto-approve", dir, "--var", "golden=" + h.Golden})
	checkInventory(t, "after destroy", inventory(t, h, scope, "cc"), wantInv{profile: "cc"}.lines(h))
}
