package snapshots

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// startDaemon starts `legacyvm daemon --log-json` outside the network
// namespace; the test's cleanup stops it (SIGTERM).
func startDaemon(t *testing.T, h *e2eutil.Host, args ...string) *e2eutil.Daemon {
	t.Helper()
	return e2eutil.StartDaemon(t, h, nil, false, args...)
}

// stopDaemon stops the daemon, checks it ends cleanly and that its last
// log record says so.
func stopDaemon(t *testing.T, d *e2eutil.Daemon) {
	t.Helper()
	d.Stop(t)
	recs := d.Records(t)
	if len(recs) == 0 || recs[len(recs)-1]["msg"] != "daemon stopped" {
		t.Errorf("the daemon's last log record is not \"daemon stopped\":\n%s", d.Stderr)
	}
}

// fakeKey is a format-valid product key that belongs to nobody.
const fakeKey = "BCDFG-HJKMP-QRTVW-XY234-6789B"

// A guest whose policy says on_shutdown = "revert" powers itself off; the
// daemon puts it back to its baseline and starts it: the booted guest finds
// the disk marker it wrote gone. The same guest powering off at the end of
// its specialize pass, while apply provisions it, is left to apply. A guest
// with on_shutdown = "keep" that powers off stays off. The product key
// appears in no output, log or snapshot.
func TestDaemonRevertsOnGuestShutdown(t *testing.T) {
	h := e2eutil.NewHost(t)
	d := startDaemon(t, h)
	d.WaitLog(t, -1, 30*time.Second, map[string]string{"msg": "connected to libvirt"})

	dir := writeProfile(t, h, "dshut", controlNetwork("dsh", "10.93.1.0/24"), `
license "lab" {
  product_key = env("LVM_E2E_SNAP_KEY")
  edition     = "professional"
  channel     = "retail"
}
snapshot_policy "tester" {
  on_shutdown = "revert"
}
snapshot_policy "keeper" {
  on_shutdown = "keep"
}
`, vmSpec{name: "dshut", policy: "tester", network: "dsh", license: "lab", rig: append([]string{"rig.diskcheck=1", "rig.hb=2"}, controlGuest...)}.hcl(h),
		vmBlock(h, "dkeep", 1, "keeper", "rig.halt=1"))
	ar := h.RunEnv(t, []string{"LVM_E2E_SNAP_KEY=" + fakeKey}, "apply", "--auto-approve", dir)
	t.Cleanup(func() { h.Run(t, "destroy", "--auto-approve", dir) })
	if ar.Code != 0 || !strings.Contains(ar.Stderr, "dshut: specialize pass finished") {
		t.Fatalf("apply:\n%s", ar)
	}
	// The specialize pass ran (and powered the guest off) before the
	// baseline; the guest now writes its marker after it.
	ip := guestIP(t, h, "dshut")
	h.WaitSerial(t, "dshut", `RIG hb n=1 `, 30*time.Second) // the control port is up
	if got := control(t, h, ip, "touch"); !strings.HasPrefix(got, "RIG-OK disk marker=written") {
		t.Fatalf("control touch: %q", got)
	}
	h.WaitSerial(t, "dkeep", `RIG poweroff reason=rig.halt`, 90*time.Second)

	if got := control(t, h, ip, "poweroff"); got != "RIG-OK poweroff" {
		t.Fatalf("control poweroff: %q", got)
	}
	_, rec := d.WaitLog(t, -1, 60*time.Second, map[string]string{"msg": "guest shut down: reverted to baseline", "vm": "dshut"})
	if rec["level"] != "INFO" || rec["baseline"] != "clean" || rec["took"] == nil {
		t.Errorf("revert record: %v", rec)
	}
	// The serial log starts over with the started guest.
	if line := h.WaitSerial(t, "dshut", `RIG disk marker=(absent|present)`, 90*time.Second); !strings.Contains(line, "absent") {
		t.Fatalf("after the revert the guest found its marker: %q", line)
	}
	h.WaitSerial(t, "dshut", `RIG hb n=1 `, 30*time.Second)
	if got := domState(t, h, "dshut"); got != "running" {
		t.Errorf("dshut is %q after the revert", got)
	}
	if got := domState(t, h, "dkeep"); got != "shut off" {
		t.Errorf("dkeep (on_shutdown = keep) is %q", got)
	}
	if got := virshSnapshots(t, h, "dshut"); !slices.Equal(got, []string{"clean"}) {
		t.Errorf("dshut snapshots %v", got)
	}
	for _, rec := range d.Records(t) {
		if rec["vm"] == "dkeep" || rec["vm"] == "dshut" && rec["msg"] != "guest shut down: reverted to baseline" {
			t.Errorf("the daemon acted on a guest shutdown it must leave alone: %v", rec)
		}
	}
	stopDaemon(t, d)

	texts := map[string]string{"apply stdout": ar.Stdout, "apply stderr": ar.Stderr, "daemon log": d.Stderr.String(), "serial log": serial(h, "dshut")}
	texts["snapshot list"] = h.MustRun(t, []string{"snapshot", "list", "-o", "json"}).Stdout
	for _, args := range [][]string{{"snapshot-dumpxml", "dshut", "clean", "--security-info"}, {"dumpxml", "dshut", "--security-info"}} {
		out, err := h.Env.Virsh(context.Background(), args...)
		if err != nil {
			t.Fatal(err)
		}
		texts["virsh "+strings.Join(args, " ")] = string(out)
	}
	e2eutil.NoSecret(t, fakeKey, texts)
}

// The daemon keeps working when libvirtd restarts: it reconnects, a guest
// that powers itself off after the restart is reverted, and the schedule
// takes its next snapshot.
func TestDaemonSurvivesLibvirtdRestart(t *testing.T) {
	h := e2eutil.NewHost(t)
	d := startDaemon(t, h, "--tick", "5s")
	d.WaitLog(t, -1, 30*time.Second, map[string]string{"msg": "connected to libvirt"})

	dir := writeProfile(t, h, "drst", controlNetwork("drs", "10.93.2.0/24"), `
snapshot_policy "minutely" {
  schedule    = "* * * * *"
  keep        = 10
  on_shutdown = "revert"
}
`, vmSpec{name: "drst", policy: "minutely", network: "drs", rig: append([]string{"rig.diskcheck=1", "rig.disktouch=1", "rig.hb=2"}, controlGuest...)}.hcl(h))
	apply(t, h, dir)
	h.WaitSerial(t, "drst", `RIG disk marker=written`, 90*time.Second)
	ip := guestIP(t, h, "drst")
	h.WaitSerial(t, "drst", `RIG hb n=1 `, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Env.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	lost, _ := d.WaitLog(t, -1, 60*time.Second, map[string]string{"msg": "lost the libvirt connection; reconnecting"})
	back, _ := d.WaitLog(t, lost, 60*time.Second, map[string]string{"msg": "connected to libvirt"})
	// The minutely policy may be writing a memory snapshot right now
	// (the guest is paused while it is written): wait for it to end.
	got := domState(t, h, "drst")
	for deadline := time.Now().Add(time.Minute); got == "paused" && time.Now().Before(deadline); got = domState(t, h, "drst") {
		time.Sleep(500 * time.Millisecond)
	}
	if got != "running" {
		t.Fatalf("drst is %q after the libvirtd restart", got)
	}

	if got := control(t, h, ip, "poweroff"); got != "RIG-OK poweroff" {
		t.Fatalf("control poweroff: %q", got)
	}
	d.WaitLog(t, back, 60*time.Second, map[string]string{"msg": "guest shut down: reverted to baseline", "vm": "drst"})
	if line := h.WaitSerial(t, "drst", `RIG disk marker=(absent|present)`, 90*time.Second); !strings.Contains(line, "absent") {
		t.Fatalf("after the revert the guest found its marker: %q", line)
	}

	// "* * * * *": the next minute's snapshot is taken by the reconnected
	// daemon.
	_, rec := d.WaitLog(t, back, 90*time.Second, map[string]string{"msg": "snapshot tick", "vm": "drst", "policy": "minutely"})
	created, _ := rec["created"].(string)
	if !strings.HasPrefix(created, "auto-minutely-") {
		t.Fatalf("tick record without a created snapshot: %v", rec)
	}
	if !slices.Contains(virshSnapshots(t, h, "drst"), created) {
		t.Errorf("libvirt has no snapshot %s", created)
	}
	stopDaemon(t, d)
}

// A guest that powers itself off while no daemon listens (the daemon was
// stopped, or cut off from libvirtd) is reverted and started when the
// daemon comes back: its first tick finds the VM off by the guest's own
// shutdown (libvirt's shutoff reason) with no stop request. A VM stopped
// with `legacyvm stop` (an ACPI shutdown too, but requested) stays off.
func TestDaemonCatchesUpGuestShutdownsItMissed(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "dmiss", controlNetwork("dmi", "10.93.3.0/24"), `
snapshot_policy "tester" {
  on_shutdown = "revert"
}
`, vmSpec{name: "dmiss", policy: "tester", network: "dmi", rig: append([]string{"rig.diskcheck=1", "rig.hb=2"}, controlGuest...)}.hcl(h),
		vmBlock(h, "dmstop", 1, "tester", "rig.hb=2"))
	apply(t, h, dir)

	// The daemon runs, then stops: what happens next, it does not see.
	d := startDaemon(t, h, "--tick", "5s")
	d.WaitLog(t, -1, 30*time.Second, map[string]string{"msg": "connected to libvirt"})
	stopDaemon(t, d)

	ip := guestIP(t, h, "dmiss")
	h.WaitSerial(t, "dmiss", `RIG hb n=1 `, 60*time.Second) // the control port is up
	if got := control(t, h, ip, "touch"); !strings.HasPrefix(got, "RIG-OK disk marker=written") {
		t.Fatalf("control touch: %q", got)
	}
	if got := control(t, h, ip, "poweroff"); got != "RIG-OK poweroff" {
		t.Fatalf("control poweroff: %q", got)
	}
	h.WaitSerial(t, "dmstop", `RIG hb n=1 `, 60*time.Second)
	h.MustRun(t, []string{"stop", "dmstop"})
	deadline := time.Now().Add(60 * time.Second)
	for domState(t, h, "dmiss") != "shut off" {
		if time.Now().After(deadline) {
			t.Fatalf("dmiss did not power off: %s", domState(t, h, "dmiss"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := h.Env.Virsh(context.Background(), "domstate", "--reason", "dmiss")
	if err != nil || !strings.Contains(string(out), "shut off (shutdown)") {
		t.Fatalf("virsh domstate --reason dmiss: %q %v", out, err)
	}

	// The daemon comes back: the missed shutdown is caught up at the first
	// tick at least 30s after the first sighting (a VM apply is
	// provisioning looks the same for a moment).
	d = startDaemon(t, h, "--tick", "5s")
	back, _ := d.WaitLog(t, -1, 30*time.Second, map[string]string{"msg": "connected to libvirt"})
	_, rec := d.WaitLog(t, back, 120*time.Second, map[string]string{"msg": "guest shut down: reverted to baseline", "vm": "dmiss", "caught_up": "true"})
	if rec["baseline"] != "clean" {
		t.Errorf("catch-up record: %v", rec)
	}
	if line := h.WaitSerial(t, "dmiss", `RIG disk marker=(absent|present)`, 90*time.Second); !strings.Contains(line, "absent") {
		t.Fatalf("after the catch-up revert the guest found its marker: %q", line)
	}
	if got := domState(t, h, "dmiss"); got != "running" {
		t.Errorf("dmiss is %q after the catch-up", got)
	}
	// A few more ticks (every 5s): the stopped VM stays off and nothing
	// is reverted again.
	time.Sleep(12 * time.Second)
	if got := domState(t, h, "dmstop"); got != "shut off" {
		t.Errorf("dmstop (stopped with legacyvm stop) is %q", got)
	}
	reverts := 0
	for _, rec := range d.Records(t) {
		if rec["vm"] == "dmstop" {
			t.Errorf("the daemon acted on a requested stop: %v", rec)
		}
		if rec["vm"] == "dmiss" && strings.Contains(fmt.Sprint(rec["msg"]), "reverted") {
			reverts++
		}
	}
	if reverts != 1 {
		t.Errorf("%d reverts of dmiss logged, want 1:\n%s", reverts, d.Stderr)
	}
	stopDaemon(t, d)
}
