package provision

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// killProfile declares three VMs with a baseline each; prepare says
// whether they need the specialize pass (answer media holding a key).
const killProfile = `
variable "golden" {}
variable "prepare" {}

license "kl" {
  product_key = env("KL_KEY")
  edition     = "professional"
  channel     = "mak"
  seats       = 3
}

network "kl" {
  subnet = "10.93.0.0/24"
  dhcp   = true
}

snapshot_policy "p" {}

vm "kl" {
  count  = 3
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image   = var.golden
    prepare = var.prepare
  }
  windows {
    computer_name = "KL-${count.index}"
  }
  licenses        = [license.kl]
  network         = network.kl
  snapshot_policy = snapshot_policy.p
}
`

// killPoint is where an apply is killed: when its progress output (stderr)
// matches re for the n-th time. Unless next is set, an apply to the end
// follows and must converge; with next, the following kill point hits the
// next apply first.
type killPoint struct {
	name string
	re   string
	n    int
	next bool
	// prepare is the VMs' prepare setting for this apply: "specialize"
	// where the kill point is in setup, "none" (fast) elsewhere.
	prepare string
}

// TestKillConvergence kills apply with SIGKILL at several points (watching
// its progress lines) and checks that what it left behind is accounted for
// and that the next apply converges to exactly what the profile declares.
// The first kill hits an apply on an empty host and the second the apply
// after it; each later one hits an apply that replaces all three VMs (the
// golden image alternates). After each (but the first), an apply runs to
// the end and must converge.
func TestKillConvergence(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	dir := e2eutil.Profile(t, "kl", map[string]string{"main.hcl": h.HostBlock() + killProfile})
	goldens := []string{h.Golden, filepath.Join(filepath.Dir(h.Golden), "golden-b.qcow2")}
	copyFile(t, h.Golden, goldens[1])
	env := []string{"KL_KEY=" + keyKill}
	domains := []string{"kl-1", "kl-2", "kl-3"}
	want := wantInv{profile: "kl", domains: domains, snapshots: []string{"clean"}, networks: []string{"kl"},
		images: []string{filepath.Base(goldens[0]), filepath.Base(goldens[1])}}.lines(h)
	scope := regexp.MustCompile(`^(lvm-)?kl(-|$)`)
	outputs := map[string]string{}
	run := func(want int, args ...string) e2eutil.Result {
		t.Helper()
		r := h.RunEnv(t, env, args...)
		outputs[fmt.Sprintf("%s #%d", strings.Join(args, " "), len(outputs))] = r.Stdout + r.Stderr
		if r.Code != want {
			t.Fatalf("exit %d, want %d\n%s", r.Code, want, r)
		}
		return r
	}

	points := []killPoint{
		{"network exists, filters being defined", `lvm-kl: creating traffic filter`, 1, true, "none"},
		{"first disk being created", `kl-\d: creating linked clone`, 1, false, "none"},
		{"setup running with answer media attached", `kl-\d: starting specialize pass`, 1, false, "specialize"},
		{"mid-way: first VM done", `kl-\d: done in`, 1, false, "none"},
		{"right before the end: last baseline", `kl-\d: taking baseline snapshot`, 3, false, "none"},
	}
	cycle := 0
	for i, pt := range points {
		golden := goldens[cycle%2]
		vars := []string{"--var", "golden=" + golden, "--var", "prepare=" + pt.prepare}
		cmd, stdout, stderr := h.Start(t, env, append([]string{"apply", "--auto-approve", "--parallelism", "3", dir}, vars...)...)
		waitOutputN(t, cmd, stderr, pt.re, pt.n, 5*time.Minute)
		killGroup(t, cmd)
		outputs[fmt.Sprintf("killed apply %d", i)] = stdout.String() + stderr.String()
		t.Logf("killed at %q; last progress lines:\n%s", pt.name, lastLines(stderr.String(), 4))

		// What the killed apply left is all accounted for: plan works (no
		// diagnostic about unowned objects) and every volume belongs to a
		// domain of the profile.
		r := h.RunEnv(t, env, append([]string{"plan", dir}, vars...)...)
		outputs[fmt.Sprintf("plan after kill %d", i)] = r.Stdout + r.Stderr
		if r.Code != 0 && r.Code != 2 || strings.Contains(r.Stderr, "Error") {
			t.Fatalf("plan after the kill fails:\n%s", r)
		}
		t.Logf("plan after the kill:\n%s", r.Stdout)
		checkAccounted(t, h, "kl")
		if pt.next {
			continue
		}
		cycle++

		run(0, append([]string{"apply", "--auto-approve", "--parallelism", "3", dir}, vars...)...)
		run(0, append([]string{"plan", dir}, vars...)...)
		startStopped(t, h, run, domains)
		checkInventory(t, fmt.Sprintf("after a kill (%s) and an apply", pt.name), inventory(t, h, scope, "kl"), want)
		for _, d := range domains {
			if got := backingFile(t, h, d); got != golden {
				t.Errorf("%s: backing file %s, want %s", d, got, golden)
			}
		}
		if t.Failed() {
			break
		}
	}
	for k, v := range hostTexts(t, h, domains, []string{"lvm-kl"}) {
		outputs[k] = v
	}
	noSecrets(t, outputs)
	run(0, "destroy", "--auto-approve", dir, "--var", "golden="+goldens[0], "--var", "prepare=none")
	checkInventory(t, "after destroy", inventory(t, h, scope, "kl"), wantInv{profile: "kl", images: []string{filepath.Base(goldens[0]), filepath.Base(goldens[1])}, unpooled: true}.lines(h))
}

// waitOutputN waits until re matches n times in the command's output.
func waitOutputN(t testing.TB, cmd interface{ Wait() error }, buf *e2eutil.SyncBuffer, re string, n int, timeout time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(rx.FindAllString(buf.String(), -1)) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %d lines matching %q within %s:\n%s", n, re, timeout, buf.String())
}

// startStopped starts, with legacyvm start, the domains an apply left shut
// off. That happens only when apply was killed after a disk-only baseline
// and before the VM's first start: the VM is then provisioned and at its
// baseline, exactly as after a reset, and plan rightly has nothing to do
// (apply does not start VMs that are shut off: a user may have stopped
// them).
func startStopped(t *testing.T, h *e2eutil.Host, run func(int, ...string) e2eutil.Result, domains []string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	for _, name := range domains {
		d, err := h.HV.GetDomain(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		// A start the killed apply had asked for goes on in libvirtd after
		// the client died; until QEMU is up the domain reads "paused"
		// (starting up), which takes seconds on a loaded TCG host.
		for d.State == virt.StatePaused && ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			if d, err = h.HV.GetDomain(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		if d.State != virt.StateShutoff {
			continue
		}
		snaps, err := h.HV.ListSnapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if d.Metadata == nil || !d.Metadata.Provisioned || len(snaps) != 1 || snaps[0].Name != "clean" || !snaps[0].Current {
			t.Errorf("%s is shut off after apply but is not a provisioned VM at its baseline: metadata %+v, snapshots %+v", name, d.Metadata, snaps)
			continue
		}
		t.Logf("%s is provisioned, at its baseline and shut off; starting it", name)
		run(0, "start", name)
	}
}

func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "[") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkAccounted checks that every volume in the host's pool is listed in
// the metadata of a domain of profile, and that no two domains list the
// same volume.
func checkAccounted(t *testing.T, h *e2eutil.Host, profile string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	doms, err := h.HV.ListDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{}
	for _, d := range doms {
		if d.Metadata == nil || d.Metadata.Profile != profile {
			continue
		}
		for _, v := range d.Metadata.Volumes {
			if o, ok := owner[v.Name]; ok {
				t.Errorf("volume %s is listed by %s and %s", v.Name, o, d.Name)
			}
			owner[v.Name] = d.Name
		}
	}
	vols, err := h.HV.ListVolumes(ctx, h.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if _, ok := owner[v.Name]; !ok {
			t.Errorf("volume %s in the pool belongs to no domain of profile %s (leaked)", v.Name, profile)
		}
	}
}
