package multihost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// fleetKey is a format-valid product key that belongs to nobody.
const fleetKey = "HJKMP-BCDFG-XY234-QRTVW-6789B"

// spreadProfile: count instances of the stand-in, spread over a and b. The
// snapshot policy lets each guest settle before its memory baseline, which
// gives the partial-failure step a window in the middle of an apply.
func (p *pair) spreadProfile(count int) string {
	return p.hostBlocks() + fmt.Sprintf(`
license "fleet" {
  product_key = env("MH_KEY")
  edition     = "professional"
  channel     = "mak"
  seats       = 8
}

snapshot_policy "p" {
  memory = true
  settle = "20s"
}

vm "mh" {
  count           = %d
  os              = "win7-x64"
  cpus            = 1
  memory          = "256MiB"
  placement       = "spread"
  host_labels     = { site = "lab" }
  licenses        = [license.fleet]
  snapshot_policy = snapshot_policy.p
  disk {
    image   = %q
    prepare = "none"
  }
  oem_strings = ["rig.ip=none"]
}
`, count, p.Golden)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestSpreadAcrossTwoHosts(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	env := []string{"MH_KEY=" + fleetKey}
	texts := map[string]string{}
	keep := func(name string, r e2eutil.Result) e2eutil.Result {
		texts[name] = r.Stdout + r.Stderr
		return r
	}
	dir := e2eutil.Profile(t, "mh", map[string]string{"main.hcl": p.spreadProfile(2)})

	// plan: where each instance goes, and one upload, to b only.
	pl := keep("plan", p.mustRun(t, env, []string{"plan", dir}, 2))
	for _, want := range []string{"placed on host a: mh-1 (spread)", "placed on host b: mh-2 (spread)", orchestrator.UploadedImageName(p.Golden)} {
		if !strings.Contains(pl.Stdout, want) {
			t.Errorf("plan does not say %q:\n%s", want, pl)
		}
	}
	if n := strings.Count(pl.Stdout, "SHA-256 checked on arrival"); n != 1 {
		t.Errorf("plan shows %d uploads, want 1 (to b):\n%s", n, pl)
	}
	var pj struct {
		Hosts []struct {
			URI     string `json:"uri"`
			Changes []struct {
				Kind, Name, Action string
			} `json:"changes"`
		} `json:"hosts"`
	}
	pjr := keep("plan json", p.mustRun(t, env, []string{"plan", "-o", "json", dir}, 2))
	if err := json.Unmarshal([]byte(pjr.Stdout), &pj); err != nil || len(pj.Hosts) != 2 {
		t.Fatalf("plan -o json: %v\n%s", err, pjr)
	}
	for _, h := range pj.Hosts {
		for _, c := range h.Changes {
			if c.Kind == "image" && !strings.HasPrefix(h.URI, "qemu+tls://") {
				t.Errorf("an upload is planned to %s (local: the image is there)", h.URI)
			}
		}
	}

	// apply: VMs land where planned, the image arrives intact once.
	ap := keep("apply", p.mustRun(t, env, []string{"apply", "--auto-approve", dir}, 0))
	if !regexp.MustCompile(`lvm-golden-\S+: uploading .*100%`).MatchString(ap.Stderr) || !strings.Contains(ap.Stderr, "verified") {
		t.Errorf("apply shows no upload progress to 100%% and checksum verification:\n%s", ap)
	}
	if got := domainsOn(t, p.HVA, "mh"); joined(got) != "mh-1" {
		t.Errorf("host a has %v, want [mh-1]", got)
	}
	if got := domainsOn(t, p.HVB, "mh"); joined(got) != "mh-2" {
		t.Errorf("host b has %v, want [mh-2]", got)
	}
	ctx := context.Background()
	up := orchestrator.UploadedImageName(p.Golden)
	sum, err := p.HVB.VolumeSHA256(ctx, "mh", up)
	if err != nil || sum != sha256File(t, p.Golden) {
		t.Errorf("golden image on b: SHA-256 %s (%v), want the local file's %s", sum, err, sha256File(t, p.Golden))
	}
	vols, err := p.HVB.ListVolumes(ctx, "mh")
	if err != nil {
		t.Fatal(err)
	}
	backed := false
	for _, v := range vols {
		if strings.HasPrefix(v.Name, "lvm-mh-2") && v.BackingPath == filepath.Join(p.PoolB, up) {
			backed = true
		}
	}
	if !backed {
		t.Errorf("mh-2's disk on b is not an overlay of the uploaded image %s: %+v", up, vols)
	}
	if _, err := p.HVA.VolumeSHA256(ctx, "mh", up); err == nil {
		t.Errorf("the golden image was uploaded to a too (it is local there)")
	}

	// status, licenses and verify show both hosts.
	st := keep("status", p.mustRun(t, nil, []string{"status", "-o", "json", dir}, 0))
	var sj struct {
		VMs []struct {
			Name      string `json:"vm"`
			Host, URI string
		} `json:"vms"`
	}
	if err := json.Unmarshal([]byte(st.Stdout), &sj); err != nil {
		t.Fatalf("status json: %v\n%s", err, st)
	}
	hosts := map[string]string{}
	for _, v := range sj.VMs {
		hosts[v.Name] = v.Host
	}
	if hosts["mh-1"] != "a" || hosts["mh-2"] != "b" || len(hosts) != 2 {
		t.Errorf("status shows %v, want mh-1 on a and mh-2 on b\n%s", hosts, st)
	}
	stt := keep("status text", p.mustRun(t, nil, []string{"status", dir}, 0))
	if !strings.Contains(stt.Stdout, "HOST") {
		t.Errorf("status text has no HOST column:\n%s", stt)
	}
	li := keep("licenses", p.mustRun(t, nil, []string{"licenses", "-o", "json", dir}, 0))
	var lj struct {
		Licenses []struct {
			SeatsUsed int `json:"seats_used"`
			VMs       []struct {
				Name string `json:"vm"`
				Host string `json:"uri"`
			}
		} `json:"licenses"`
	}
	if err := json.Unmarshal([]byte(li.Stdout), &lj); err != nil || len(lj.Licenses) != 1 || lj.Licenses[0].SeatsUsed != 2 {
		t.Fatalf("licenses json: %v\n%s", err, li)
	}
	var liHosts []string
	for _, v := range lj.Licenses[0].VMs {
		liHosts = append(liHosts, v.Host)
	}
	if !slices.Contains(liHosts, p.A.URI) || !slices.Contains(liHosts, p.B.TLSURI()) {
		t.Errorf("licenses shows hosts %v, want both", liHosts)
	}
	ve := keep("verify", p.mustRun(t, nil, []string{"verify", dir}, 0))
	if !strings.Contains(ve.Stdout, "on "+p.A.URI) || !strings.Contains(ve.Stdout, "on "+p.B.TLSURI()) {
		t.Errorf("verify does not cover both hosts:\n%s", ve)
	}

	// B's libvirtd stops in the middle of an apply of two more VMs: a's
	// complete, the exit status and the summary say b was skipped.
	dir4 := e2eutil.Profile(t, "mh", map[string]string{"main.hcl": p.spreadProfile(4)})
	cmd := p.command(t, env, "apply", "--auto-approve", dir4)
	out, errb := &e2eutil.SyncBuffer{}, &e2eutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	settling := regexp.MustCompile(`mh-3: letting the guest settle`)
	deadline := time.Now().Add(5 * time.Minute)
	for !settling.MatchString(errb.String()) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("apply never reached mh-3's settle time:\n%s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.B.StopDaemon(stopCtx); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case <-waitErr:
	case <-time.After(10 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("apply did not end:\n%s", errb.String())
	}
	partial := e2eutil.Result{Args: []string{"apply", dir4}, Stdout: out.String(), Stderr: errb.String(), Code: cmd.ProcessState.ExitCode()}
	keep("partial apply", partial)
	if partial.Code != 3 || !strings.Contains(partial.Stderr, "Partial: applied on 1 host(s); skipped b") || !strings.Contains(partial.Stderr, "mh-4") {
		t.Errorf("apply with b stopped: want exit 3 and a summary naming b and mh-4\n%s", partial)
	}
	if got := domainsOn(t, p.HVA, "mh"); joined(got) != "mh-1,mh-3" {
		t.Errorf("host a has %v, want mh-1 and mh-3", got)
	}
	// status with b down: a's VMs, exit 3.
	sd := keep("status b down", p.run(t, nil, "status", dir4))
	if sd.Code != 3 || !strings.Contains(sd.Stdout, "mh-3") || !strings.Contains(sd.Stderr, "Skipped host b") {
		t.Errorf("status with b down: want exit 3, a's VMs and b skipped\n%s", sd)
	}

	// verify, licenses, snapshot list and reset with b down: a's part is
	// done, b is named as skipped, exit 3.
	for _, args := range [][]string{
		{"verify", dir4},
		{"licenses", dir4},
		{"snapshot", "list", "--profile", dir4},
		{"reset", "--profile", dir4},
	} {
		r := keep(strings.Join(args[:len(args)-1], " ")+" b down", p.run(t, nil, args...))
		if r.Code != 3 || !strings.Contains(r.Stderr, "Skipped host b") || !strings.Contains(r.Stderr, "Partial:") {
			t.Errorf("%v with b down: want exit 3 naming b\n%s", args, r)
		}
	}

	// B is back: apply converges, and then there is nothing to plan.
	if err := p.B.StartDaemon(stopCtx); err != nil {
		t.Fatal(err)
	}
	p.reconnectB(t)
	keep("re-apply", p.mustRun(t, env, []string{"apply", "--auto-approve", dir4}, 0))
	if got := domainsOn(t, p.HVB, "mh"); joined(got) != "mh-2,mh-4" {
		t.Errorf("host b has %v after re-apply, want mh-2 and mh-4", got)
	}
	keep("final plan", p.mustRun(t, env, []string{"plan", dir4}, 0))
	// reset and snapshot list across both hosts.
	rs := keep("reset across hosts", p.mustRun(t, nil, []string{"reset", "--profile", dir4}, 0))
	for _, vm := range []string{"mh-1", "mh-2", "mh-3", "mh-4"} {
		if !strings.Contains(rs.Stdout, vm+": reverted to ") {
			t.Errorf("reset --profile did not reset %s:\n%s", vm, rs)
		}
	}
	sl := keep("snapshot list across hosts", p.mustRun(t, nil, []string{"snapshot", "list", "--profile", dir4}, 0))
	for _, vm := range []string{"mh-1", "mh-2", "mh-3", "mh-4"} {
		if !regexp.MustCompile(`(?m)^` + vm + `\s+\S+`).MatchString(sl.Stdout) {
			t.Errorf("snapshot list --profile does not show %s:\n%s", vm, sl)
		}
	}
	keep("destroy", p.mustRun(t, env, []string{"destroy", "--auto-approve", dir4}, 0))
	for _, hv := range []struct {
		name string
		got  []string
	}{{"a", domainsOn(t, p.HVA, "mh")}, {"b", domainsOn(t, p.HVB, "mh")}} {
		if len(hv.got) > 0 {
			t.Errorf("destroy left %v on %s", hv.got, hv.name)
		}
	}
	e2eutil.NoSecret(t, fleetKey, texts)
}
