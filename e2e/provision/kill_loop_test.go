package provision

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// killLoopProfile: two VMs set up through answer media (the specialize
// pass: a product key on a CD), a disk baseline and a schedule every
// minute, so that apply, reset and a scheduler tick all have work to be
// killed in.
const killLoopProfile = `
variable "golden" {}

license "kr" {
  product_key = env("KR_KEY")
  edition     = "professional"
  channel     = "mak"
  seats       = 2
}

network "kr" {
  subnet = "10.98.0.0/24"
  dhcp   = true
}

snapshot_policy "p" {
  schedule = "* * * * *"
  keep     = 2
}

vm "kr" {
  count  = 2
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image = var.golden
  }
  windows {
    computer_name = "KR-${count.index}"
  }
  licenses        = [license.kr]
  network         = network.kr
  snapshot_policy = snapshot_policy.p
}
`

// killAt kills the command's process group after delay unless it ended
// first; it reports whether the kill hit the running command.
func killAt(t *testing.T, cmd *exec.Cmd, delay time.Duration) bool {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return false
	case <-time.After(delay):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestKillLoopRandom SIGKILLs legacyvm at random moments of apply (which
// replaces both VMs: the golden image alternates), reset and a scheduler
// tick (snapshot run-due), a few rounds within a time budget. The seed is
// logged; LEGACYVM_KILL_SEED replays a run. After every kill, plan works
// and accounts for every volume the host holds (a volume no domain lists
// must be answer media that plan reports), the killed command run again
// and then apply converge, plan has nothing left to do, and nothing is
// left behind: no answer media (they hold the key), no answer-media
// staging directory in the temporary directory, no key in any output.
func TestKillLoopRandom(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	if s := os.Getenv("LEGACYVM_KILL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("LEGACYVM_KILL_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay: LEGACYVM_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewSource(seed))

	h := e2eutil.NewHost(t)
	dir := e2eutil.Profile(t, "kr", map[string]string{"main.hcl": h.HostBlock() + killLoopProfile})
	goldens := []string{h.Golden, filepath.Join(filepath.Dir(h.Golden), "golden-r.qcow2")}
	copyFile(t, h.Golden, goldens[1])
	tmp := filepath.Join(t.TempDir(), "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"KR_KEY=" + keyKillLoop, "TMPDIR=" + tmp}
	domains := []string{"kr-1", "kr-2"}
	outputs := map[string]string{}
	run := func(want []int, args ...string) e2eutil.Result {
		t.Helper()
		r := h.RunEnv(t, env, args...)
		outputs[fmt.Sprintf("%s #%d", strings.Join(args, " "), len(outputs))] = r.Stdout + r.Stderr
		for _, w := range want {
			if r.Code == w {
				return r
			}
		}
		t.Fatalf("exit %d, want %v\n%s", r.Code, want, r)
		return r
	}
	golden := 0
	vars := func() []string { return []string{"--var", "golden=" + goldens[golden]} }
	apply := func() {
		run([]int{0}, append([]string{"apply", "--auto-approve", "--parallelism", "2", dir}, vars()...)...)
	}
	tick := 0
	tickNow := func() string { return time.Now().UTC().Add(time.Duration(tick+2) * time.Hour).Format(time.RFC3339) }

	apply()
	ops := []string{"apply", "reset", "run-due"}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	start := time.Now()
	const budget = 12 * time.Minute
	kills := map[string]int{}
	for round := 0; round < 5; round++ {
		if round >= 3 && time.Since(start) > budget {
			t.Logf("time budget used after %d rounds", round)
			break
		}
		op := ops[rng.Intn(len(ops))]
		if round < len(ops) {
			op = ops[round]
		}
		var args []string
		maxDelay := map[string]time.Duration{"apply": 40 * time.Second, "reset": 4 * time.Second, "run-due": 1500 * time.Millisecond}[op]
		// A command that ends before its kill is tried again (up to three
		// times) with a kill inside the time it took.
		for attempt := 1; ; attempt++ {
			switch op {
			case "apply":
				golden = 1 - golden // replaces both VMs: disks, answer media, baselines
				args = append([]string{"apply", "--auto-approve", "--parallelism", "2", dir}, vars()...)
			case "reset":
				args = append([]string{"reset"}, domains...)
			case "run-due":
				tick++ // a new snapshot is due
				args = []string{"snapshot", "run-due", "--now", tickNow()}
			}
			delay := time.Duration(rng.Int63n(int64(maxDelay-20*time.Millisecond))) + 20*time.Millisecond
			began := time.Now()
			cmd, stdout, stderr := h.Start(t, env, args...)
			killed := killAt(t, cmd, delay)
			took := time.Since(began)
			outputs[fmt.Sprintf("round %d attempt %d: %s", round, attempt, op)] = stdout.String() + stderr.String()
			t.Logf("round %d: %s (attempt %d), kill after %s: killed=%v; last output:\n%s", round, op, attempt, delay.Round(time.Millisecond), killed, tail(stdout.String()+stderr.String(), 3))
			if killed {
				kills[op]++
				break
			}
			if attempt == 3 {
				break
			}
			maxDelay = max(took*9/10, 40*time.Millisecond)
		}

		// The next command sees everything the killed one left.
		r := run([]int{0, 2}, append([]string{"plan", dir}, vars()...)...)
		if strings.Contains(r.Stderr, "Error") {
			t.Fatalf("round %d: plan after the kill fails:\n%s", round, r)
		}
		accountedOrReported(t, h, "kr", r.Stdout)

		// The killed command, run again, finishes; apply converges.
		switch op {
		case "apply":
			apply()
		case "reset":
			apply() // a reset killed before its revert started may leave a VM off
			run([]int{0}, args...)
		case "run-due":
			run([]int{0}, args...)
			apply()
		}
		run([]int{0}, append([]string{"plan", dir}, vars()...)...)
		settled(t, h, domains, goldens[golden])
		if t.Failed() {
			break
		}
	}

	for _, op := range ops {
		if kills[op] == 0 {
			t.Errorf("%s was never killed while it ran (it always ended first): the loop proved nothing for it", op)
		}
	}
	t.Logf("kills: %v", kills)

	// Converged: no answer media, no staging left, verify is clean.
	// (verify's exit code also reflects host conditions of the test
	// namespace; what matters here is its answer-media check.)
	vr := run([]int{0, 1, 2}, "verify", "-o", "json", dir, "--var", "golden="+goldens[golden])
	if !strings.Contains(vr.Stdout, `"host_checks"`) {
		t.Fatalf("verify printed no report:\n%s", vr)
	}
	if strings.Contains(vr.Stdout, "answer-media") {
		t.Errorf("verify reports answer media after convergence:\n%s", vr.Stdout)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "legacyvm-answer-") {
			t.Errorf("answer-media staging %s left in the temporary directory after convergence", e.Name())
		}
	}
	for k, v := range hostTexts(t, h, domains, []string{"lvm-kr"}) {
		outputs[k] = v
	}
	noSecrets(t, outputs)
	run([]int{0}, "destroy", "--auto-approve", dir, "--var", "golden="+goldens[golden])
}

// accountedOrReported checks that every volume of the pool is listed by a
// domain of profile or, if not, is answer media that the plan output names.
func accountedOrReported(t *testing.T, h *e2eutil.Host, profile, planOut string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	doms, err := h.HV.ListDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owned := map[string]bool{}
	for _, d := range doms {
		if d.Metadata != nil && d.Metadata.Profile == profile {
			for _, v := range d.Metadata.Volumes {
				owned[v.Name] = true
			}
		}
	}
	vols, err := h.HV.ListVolumes(ctx, h.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		switch {
		case owned[v.Name]:
		case strings.HasSuffix(v.Name, "-answer.iso") && strings.Contains(planOut, v.Name):
			t.Logf("plan reports left-over answer media %s", v.Name)
		default:
			t.Errorf("volume %s belongs to no domain of %s and plan does not report it:\n%s", v.Name, profile, planOut)
		}
	}
}

// settled checks the converged state: every VM running, provisioned, on
// the current golden image, with its baseline; no answer media in the pool.
func settled(t *testing.T, h *e2eutil.Host, domains []string, golden string) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	for _, name := range domains {
		d, err := h.HV.GetDomain(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for d.State == virt.StatePaused && ctx.Err() == nil { // a start libvirtd still carries out
			time.Sleep(200 * time.Millisecond)
			if d, err = h.HV.GetDomain(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		if d.Metadata == nil || !d.Metadata.Provisioned {
			t.Errorf("%s is not provisioned after convergence", name)
		}
		snaps, err := h.HV.ListSnapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		hasClean := false
		for _, s := range snaps {
			hasClean = hasClean || s.Name == "clean"
		}
		if !hasClean {
			t.Errorf("%s has no baseline after convergence: %+v", name, snaps)
		}
		// The system volume's backing file (the live XML shows it only
		// while the VM runs; a disk baseline leaves it off after reset).
		var sys string
		for _, dk := range d.Disks {
			if dk.Device == virt.DeviceDisk {
				sys = dk.Path
			}
		}
		v, err := h.HV.VolumeByPath(ctx, sys)
		if err != nil {
			t.Fatalf("%s: system volume %q: %v", name, sys, err)
		}
		if v.BackingPath != golden {
			t.Errorf("%s: backing file %s, want %s", name, v.BackingPath, golden)
		}
	}
	vols, err := h.HV.ListVolumes(ctx, h.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if strings.HasSuffix(v.Name, "-answer.iso") {
			t.Errorf("answer media %s left after convergence", v.Name)
		}
	}
}

// tail returns the last n non-empty lines of s.
func tail(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
