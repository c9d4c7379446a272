package snapshots

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// A disk baseline is taken before the first boot; the guest then writes a
// marker into its disk. reset must put the disk back: qemu-io reads the
// marker before the reset and not after, and the guest booted after the
// reset reports no marker.
func TestResetRestoresDiskContent(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "rdisk", `
snapshot_policy "clean" {
  baseline = "clean"
}
`, vmBlock(h, "rdisk", 1, "clean", "rig.diskcheck=1", "rig.disktouch=1", "rig.hb=5"))
	apply(t, h, dir)
	h.WaitSerial(t, "rdisk", `RIG disk marker=absent`, 90*time.Second)
	h.WaitSerial(t, "rdisk", `RIG disk marker=written`, 30*time.Second)
	// The first heartbeat comes after the guest's ACPI daemon started, so
	// stop's power-button request is heard.
	h.WaitSerial(t, "rdisk", `RIG hb n=1 `, 30*time.Second)

	s := snapsOf(t, h, "rdisk")
	if len(s) != 1 || s[0].Name != "clean" || s[0].Kind != "baseline" || s[0].State != "shutoff" || s[0].Memory {
		t.Fatalf("after apply, want one disk-only baseline \"clean\" taken shut off, got %+v", s)
	}

	// The marker really is on the disk: without a reset it would stay.
	t0 := time.Now()
	h.MustRun(t, []string{"stop", "rdisk"})
	t.Logf("stop took %s", time.Since(t0))
	disk := systemDisk(h, "rdisk")
	if m := diskMarker(t, disk); !strings.HasPrefix(m, "RIG-MARKER ") {
		t.Fatalf("before reset: marker sector of %s holds %q, want the guest's marker", disk, m)
	}

	r := h.MustRun(t, []string{"reset", "rdisk"})
	if !strings.Contains(r.Stdout, "rdisk: reverted to clean in ") || !strings.Contains(r.Stdout, "(shutoff)") {
		t.Errorf("reset output does not report the revert and the state:\n%s", r)
	}
	if got := domState(t, h, "rdisk"); got != "shut off" {
		t.Errorf("after resetting to a baseline taken shut off, the domain is %q", got)
	}
	if m := diskMarker(t, disk); m != "" {
		t.Fatalf("after reset: marker sector of %s still holds %q", disk, m)
	}

	h.MustRun(t, []string{"start", "rdisk"})
	line := h.WaitSerial(t, "rdisk", `RIG disk marker=(absent|present)`, 90*time.Second)
	if !strings.Contains(line, "marker=absent") {
		t.Fatalf("the guest booted after reset found its marker: %q", line)
	}
}

// A memory baseline is taken from the running guest (apply takes it right
// after starting the VM, so the baseline's guest has barely begun to boot).
// reset restarts QEMU from the saved RAM: the domain runs at once (no
// start), and the guest's uptime counter goes back to about the
// baseline's. A manual memory snapshot taken in the middle of the
// heartbeats shows the guest resuming exactly there: the heartbeat counter
// continues and the guest does not boot again.
func TestResetMemoryBaselineResumesGuest(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := writeProfile(t, h, "rmem", `
snapshot_policy "live" {
  memory = true
}
`, vmBlock(h, "rmem", 1, "live", "rig.hb=1"))
	applyStart := time.Now()
	apply(t, h, dir)
	applyTook := time.Since(applyStart)

	s := snapsOf(t, h, "rmem")
	if len(s) != 1 || s[0].Name != "clean" || s[0].Kind != "baseline" || s[0].State != "running" || !s[0].Memory {
		t.Fatalf("after apply, want one memory baseline \"clean\" taken running, got %+v", s)
	}
	// The baseline was taken while apply ran, after the domain started:
	// the guest's uptime then was at most apply's duration.
	baselineUptime := applyTook.Seconds()

	n, before := heartbeat(t, h.WaitSerial(t, "rmem", `RIG hb n=1[0-9] `, 120*time.Second))
	t.Logf("before reset: heartbeat %d at uptime %.2f s (baseline taken at uptime <= %.2f s)", n, before, baselineUptime)

	resetStart := time.Now()
	r := h.MustRun(t, []string{"reset", "rmem", "-o", "json"})
	var res struct {
		FormatVersion int   `json:"format_version"`
		TookNS        int64 `json:"took_ns"`
		VMs           []struct {
			VM       string `json:"vm"`
			Snapshot string `json:"snapshot"`
			State    string `json:"state"`
			TookNS   int64  `json:"took_ns"`
			Error    string `json:"error"`
		} `json:"vms"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("reset -o json: %v\n%s", err, r)
	}
	if res.FormatVersion != 1 || len(res.VMs) != 1 || res.VMs[0].VM != "rmem" || res.VMs[0].Snapshot != "clean" || res.VMs[0].State != "running" || res.VMs[0].Error != "" || res.VMs[0].TookNS <= 0 {
		t.Fatalf("reset -o json: %+v", res)
	}
	t.Logf("reset took %s", time.Duration(res.VMs[0].TookNS))
	if got := domState(t, h, "rmem"); got != "running" {
		t.Fatalf("after resetting to a memory baseline the domain is %q, want running without a start", got)
	}
	// The serial log starts over with the new QEMU process: the first
	// heartbeat in it is the restored guest's.
	n1, after := heartbeat(t, h.WaitSerial(t, "rmem", `RIG hb n=\d+ `, 90*time.Second))
	sinceReset := time.Since(resetStart).Seconds()
	t.Logf("after reset: heartbeat %d at uptime %.2f s (%.2f s after the reset began)", n1, after, sinceReset)
	if n1 != 1 {
		t.Errorf("first heartbeat after reset is n=%d, want the counter back at 1", n1)
	}
	if after >= before {
		t.Errorf("uptime did not go back: %.2f s before reset, %.2f s after", before, after)
	}
	// Guest uptime runs no faster than the host clock: from the
	// baseline's uptime it can have advanced at most the time since the
	// reset began.
	if after > baselineUptime+sinceReset {
		t.Errorf("uptime %.2f s after reset is more than the baseline's (<= %.2f s) plus the %.2f s since the reset", after, baselineUptime, sinceReset)
	}

	// A memory snapshot in the middle of the heartbeats.
	k0, upK0 := heartbeat(t, h.WaitSerial(t, "rmem", `RIG hb n=4 `, 60*time.Second))
	h.MustRun(t, []string{"snapshot", "create", "rmem", "mid", "--memory"})
	k1, _ := lastHeartbeat(t, h, "rmem")
	h.WaitSerial(t, "rmem", fmt.Sprintf(`RIG hb n=%d `, k1+4), 60*time.Second)
	r = h.MustRun(t, []string{"reset", "rmem", "--to", "mid"})
	if !strings.Contains(r.Stdout, "rmem: reverted to mid in ") || !strings.Contains(r.Stdout, "(running)") {
		t.Errorf("reset --to mid output:\n%s", r)
	}
	first, up := heartbeat(t, h.WaitSerial(t, "rmem", `RIG hb n=\d+ `, 60*time.Second))
	if first < k0+1 || first > k1+1 {
		t.Errorf("after reset --to mid the first heartbeat is n=%d; the snapshot was taken between heartbeats %d and %d", first, k0, k1)
	}
	if up <= upK0 {
		t.Errorf("after reset --to mid the guest uptime is %.2f s, but the snapshot was taken after heartbeat %d at uptime %.2f s", up, k0, upK0)
	}
	if log := serial(h, "rmem"); strings.Contains(log, "RIG boot") {
		t.Errorf("the guest booted again instead of resuming from memory:\n%s", log)
	}
}
