// Command resetbench measures how long resetting VMs to their clean state
// takes with each mechanism libvirt 9.0 offers, on a private libvirtd
// (internal/testenv) with stand-in guests that keep as much dirty memory as
// a booted Windows 7 desktop (rig.ballast). It is run by bench/run.sh (make
// bench) and prints a Markdown report; see bench/README.md for the method
// and recorded results.
//
// Every VM has two restore points of the same booted, idle guest (ballast
// filled): its baseline "clean", taken by legacyvm as a memory image volume
// plus a disk snapshot, and "settled", an internal memory snapshot (the
// mechanism of earlier legacyvm versions). Scenarios, each measured as the
// wall-clock time of the whole command(s), rounds times, in an order that
// rotates every round:
//
//	img-legacyvm-1         legacyvm reset VM-1 (memory image + disk snapshot)
//	img-virsh-1            virsh snapshot-revert VM-1 clean; virsh restore IMAGE
//	img-virsh-bypass-1     the same with virsh restore --bypass-cache
//	int-legacyvm-1         legacyvm reset VM-1 --to settled (internal snapshot)
//	int-virsh-1            virsh snapshot-revert VM-1 settled (the reference)
//	img-legacyvm-N         legacyvm reset VM-1..VM-N --parallelism N
//	img-virsh-N-seq        img-virsh-1 for VM-1..VM-N, one after another
//	int-legacyvm-N         legacyvm reset VM-1..VM-N --to settled --parallelism N
//	int-virsh-N-seq        int-virsh-1 for VM-1..VM-N, one after another (the reference)
//	overlay-virsh-1        virsh destroy; vol-delete + vol-create-as (a fresh overlay); virsh restore
//	                       (measured last: it discards VM-1's disk and its internal snapshots)
//
// Between measurements the harness waits until every reset guest runs
// again (a heartbeat on its serial console). It also measures what a reset
// adds to a VM's disk file, what a memory snapshot adds, and what ten
// memory snapshots add, against the size of the memory image.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/legacyvm/legacyvm/bench/internal/benchhost"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func main() {
	var (
		bin     = flag.String("legacyvm", "bin/legacyvm", "legacyvm binary to measure")
		rounds  = flag.Int("rounds", 5, "measurements per scenario")
		n       = flag.Int("vms", 4, "VMs for the N-VM scenarios")
		mem     = flag.String("memory", "2GiB", "memory of each VM")
		ballast = flag.Int("ballast", 1228, "MiB of each guest's memory filled with random data (rig.ballast)")
		snaps   = flag.Int("snapshots", 10, "memory snapshots taken of VM-1 to measure disk growth (0: skip)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *rounds, *n, *mem, *ballast, *snaps); err != nil {
		fmt.Fprintln(os.Stderr, "resetbench:", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// bench is one prepared host: a private libvirtd with N running VMs.
type bench struct {
	env     *testenv.Env
	bin     string
	environ []string
	logDir  string
	pool    string
	vms     []string
}

// disk is the disk file the VM runs on: its layer (a layered memory
// baseline: the system disk under it is frozen), else its system disk.
func (b *bench) disk(vm string) string {
	if l := b.layer(vm); allocated(l) >= 0 {
		return l
	}
	return b.system(vm)
}
func (b *bench) system(vm string) string { return filepath.Join(b.pool, "lvm-"+vm+"-system.qcow2") }
func (b *bench) layer(vm string) string  { return filepath.Join(b.pool, "lvm-"+vm+"-live.qcow2") }
func (b *bench) image(vm string) string  { return filepath.Join(b.pool, "lvm-"+vm+"-baseline.mem") }

// allocated is the bytes a file occupies on disk.
func allocated(path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return -1
	}
	return st.Blocks * 512
}

func run(ctx context.Context, bin string, rounds, n int, mem string, ballast, nsnaps int) (err error) {
	if n < 1 || rounds < 1 {
		return errors.New("-vms and -rounds must be at least 1")
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("legacyvm binary: %w (run make build)", err)
	}
	lab, err := benchhost.StartLab(ctx, logf)
	if err != nil {
		return err
	}
	defer func() {
		if serr := lab.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	env, pool, golden := lab.Env, lab.Pool, lab.Golden
	logDir, err := env.NewPoolDir("logs")
	if err != nil {
		return err
	}
	b := &bench{env: env, bin: bin, logDir: logDir, pool: pool}
	home, err := env.NewPoolDir("home")
	if err != nil {
		return err
	}
	b.environ = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LIBVIRT_DEFAULT_URI=" + env.URI,
		"LEGACYVM_SERIAL_LOG_DIR=" + logDir, "LEGACYVM_LOCK_DIR=" + filepath.Join(home, "locks"),
		"LEGACYVM_FINGERPRINT_KEY=" + filepath.Join(home, "fingerprint.key"),
	}
	accel := "tcg"
	if env.Accel == "kvm" {
		accel = "auto"
	}
	profile := filepath.Join(home, "bench")
	if err := os.MkdirAll(profile, 0o755); err != nil {
		return err
	}
	hcl := fmt.Sprintf(`host "bench" {
  uri          = %q
  accelerator  = %q
  storage_pool = "bench"
}
snapshot_policy "live" {
  memory = true
}
vm "rb" {
  count  = %d
  os     = "win7-x64"
  cpus   = 1
  memory = %q
  disk {
    image   = %q
    prepare = "none"
  }
  snapshot_policy = snapshot_policy.live
  oem_strings     = ["rig.ip=none", "rig.listen=0", "rig.control=0", "rig.answercd=0", "rig.hb=1", "rig.ballast=%d"]
}
`, env.URI, accel, n, mem, golden, ballast)
	if err := os.WriteFile(filepath.Join(profile, "main.hcl"), []byte(hcl), 0o644); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		b.vms = append(b.vms, fmt.Sprintf("rb-%d", i))
	}
	par := fmt.Sprint(n)
	logf("apply: %d VMs", n)
	if _, err := b.legacyvm(ctx, "apply", "--auto-approve", "--parallelism", par, profile); err != nil {
		return err
	}
	defer func() {
		if _, derr := b.legacyvm(context.WithoutCancel(ctx), "destroy", "--auto-approve", profile); derr != nil && err == nil {
			err = derr
		}
		// destroy must leave no disk, image or layer of the VMs behind.
		left, _ := filepath.Glob(filepath.Join(pool, "lvm-*"))
		if len(left) > 0 && err == nil {
			err = fmt.Errorf("destroy left %v", left)
		}
	}()
	// apply took the baseline right after boot; the clean state of this
	// benchmark is a guest with its ballast in memory: take the baseline
	// again from there (the missing-baseline path of apply).
	logf("waiting for the ballast (%d MiB of random data per guest)", ballast)
	if err := b.waitRunning(ctx, b.vms, "RIG ballast mib=", 15*time.Minute); err != nil {
		return err
	}
	if err := b.waitRunning(ctx, b.vms, "RIG hb n=3 ", 3*time.Minute); err != nil {
		return err
	}
	for _, vm := range b.vms {
		line, _ := testenv.WaitSerial(ctx, filepath.Join(b.logDir, vm+".serial.log"), regexp.MustCompile(`^RIG ballast `))
		if !strings.Contains(line, "result=done") {
			return fmt.Errorf("%s: %s", vm, line)
		}
		if _, err := b.legacyvm(ctx, "snapshot", "delete", vm, "clean", "--force"); err != nil {
			return err
		}
	}
	logf("apply: taking the baselines again (memory images)")
	if _, err := b.legacyvm(ctx, "apply", "--auto-approve", "--parallelism", par, profile); err != nil {
		return err
	}
	if err := b.waitRunning(ctx, b.vms, "RIG hb n=", 3*time.Minute); err != nil {
		return err
	}
	logf("taking the internal memory snapshots \"settled\"")
	growth := map[string]int64{}
	for _, vm := range b.vms {
		before := allocated(b.disk(vm))
		if _, err := b.legacyvm(ctx, "snapshot", "create", vm, "settled", "--memory"); err != nil {
			return err
		}
		growth[vm] = allocated(b.disk(vm)) - before
	}

	// The snapshots just wrote gigabytes: let the host write them back
	// before the first measurement, so it does not pay for that.
	syscall.Sync()

	type scenario struct {
		name, what string
		vms        []string
		run        func(ctx context.Context) error
	}
	steps := map[string][]time.Duration{}
	imgVirsh := func(ctx context.Context, vm string, bypass bool) error {
		t0 := time.Now()
		if _, err := env.Virsh(ctx, "snapshot-revert", vm, "clean"); err != nil {
			return err
		}
		t1 := time.Now()
		args := []string{"restore", b.image(vm)}
		if bypass {
			args = append(args, "--bypass-cache")
		}
		if _, err := env.Virsh(ctx, args...); err != nil {
			return err
		}
		if vm == b.vms[0] {
			key := "cache"
			if bypass {
				key = "bypass"
			}
			steps["disk revert"] = append(steps["disk revert"], t1.Sub(t0))
			steps["restore ("+key+")"] = append(steps["restore ("+key+")"], time.Since(t1))
		}
		return nil
	}
	intVirsh := func(ctx context.Context, vm string) error {
		_, err := env.Virsh(ctx, "snapshot-revert", vm, "settled")
		return err
	}
	seq := func(f func(context.Context, string) error) func(context.Context) error {
		return func(ctx context.Context) error {
			for _, vm := range b.vms {
				if err := f(ctx, vm); err != nil {
					return err
				}
			}
			return nil
		}
	}
	vm1 := b.vms[0]
	scenarios := []scenario{
		{"img-legacyvm-1", "`legacyvm reset rb-1` (memory image + disk snapshot)", b.vms[:1], func(ctx context.Context) error {
			_, err := b.legacyvm(ctx, "reset", vm1)
			return err
		}},
		{"img-virsh-1", "`virsh snapshot-revert rb-1 clean` + `virsh restore IMAGE`", b.vms[:1], func(ctx context.Context) error { return imgVirsh(ctx, vm1, false) }},
		{"img-virsh-bypass-1", "the same with `virsh restore --bypass-cache`", b.vms[:1], func(ctx context.Context) error { return imgVirsh(ctx, vm1, true) }},
		{"int-legacyvm-1", "`legacyvm reset rb-1 --to settled` (internal memory snapshot)", b.vms[:1], func(ctx context.Context) error {
			_, err := b.legacyvm(ctx, "reset", vm1, "--to", "settled")
			return err
		}},
		{"int-virsh-1", "`virsh snapshot-revert rb-1 settled` (reference)", b.vms[:1], func(ctx context.Context) error { return intVirsh(ctx, vm1) }},
	}
	if n > 1 {
		scenarios = append(scenarios,
			scenario{fmt.Sprintf("img-legacyvm-%d", n), fmt.Sprintf("`legacyvm reset rb-1..rb-%d --parallelism %d`", n, n), b.vms, func(ctx context.Context) error {
				_, err := b.legacyvm(ctx, append([]string{"reset", "--parallelism", par}, b.vms...)...)
				return err
			}},
			scenario{fmt.Sprintf("img-virsh-%d-seq", n), fmt.Sprintf("img-virsh-1 for rb-1..rb-%d, one after another", n), b.vms, seq(func(ctx context.Context, vm string) error { return imgVirsh(ctx, vm, false) })},
			scenario{fmt.Sprintf("int-legacyvm-%d", n), fmt.Sprintf("`legacyvm reset rb-1..rb-%d --to settled --parallelism %d`", n, n), b.vms, func(ctx context.Context) error {
				_, err := b.legacyvm(ctx, append([]string{"reset", "--to", "settled", "--parallelism", par}, b.vms...)...)
				return err
			}},
			scenario{fmt.Sprintf("int-virsh-%d-seq", n), fmt.Sprintf("`virsh snapshot-revert VM settled` for rb-1..rb-%d, one after another (reference)", n), b.vms, seq(intVirsh)},
		)
	}
	loadBefore := benchhost.LoadAvg()
	results := map[string][]time.Duration{}
	resetGrowth := map[string]int64{}
	for r := 0; r < rounds; r++ {
		for k := range scenarios {
			s := scenarios[(k+r)%len(scenarios)]
			if err := ctx.Err(); err != nil {
				return err
			}
			before := map[string]int64{}
			for _, vm := range s.vms {
				before[vm] = allocated(b.disk(vm))
			}
			start := time.Now()
			if err := s.run(ctx); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			took := time.Since(start)
			results[s.name] = append(results[s.name], took)
			for _, vm := range s.vms {
				if d := allocated(b.disk(vm)) - before[vm]; d > resetGrowth[s.name] {
					resetGrowth[s.name] = d
				}
			}
			logf("round %d %-18s %s", r+1, s.name, took.Round(time.Millisecond))
			if err := b.waitRunning(ctx, s.vms, "RIG hb n=", 3*time.Minute); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	loadAfter := benchhost.LoadAvg()

	// Ten memory snapshots of rb-1 (what a schedule takes), against the
	// size of its memory image.
	var tenGrowth int64 = -1
	if nsnaps > 0 {
		logf("taking %d memory snapshots of %s", nsnaps, vm1)
		before := allocated(b.disk(vm1))
		for i := 1; i <= nsnaps; i++ {
			if _, err := b.legacyvm(ctx, "snapshot", "create", vm1, fmt.Sprintf("m%02d", i), "--memory"); err != nil {
				return err
			}
		}
		tenGrowth = allocated(b.disk(vm1)) - before
	}

	// Last, as it discards rb-1's disk with its internal snapshots: the
	// other way to return the disk, a fresh empty overlay (destroy, delete
	// the overlay, create it again), then the restore. The stand-in runs
	// from its initramfs and writes nothing to its disk before the
	// baseline, so a fresh overlay of the golden image holds what the
	// baseline's disk held.
	logf("fresh-overlay resets of %s", vm1)
	var overlay, overlayDisk []time.Duration
	info, err := exec.CommandContext(ctx, "qemu-img", "info", "-U", "--output=json", b.disk(vm1)).Output()
	if err != nil {
		return fmt.Errorf("qemu-img info %s: %w", b.disk(vm1), err)
	}
	size := regexp.MustCompile(`"virtual-size":\s*(\d+)`).FindSubmatch(info)
	if size == nil {
		return fmt.Errorf("qemu-img info %s: no virtual size in %s", b.disk(vm1), info)
	}
	for r := 0; r < rounds; r++ {
		t0 := time.Now()
		if _, err := env.Virsh(ctx, "destroy", vm1); err != nil {
			return err
		}
		// The overlay the VM runs on: its layer over its (frozen) system
		// disk, or the system disk over the golden image.
		vol, backing := filepath.Base(b.disk(vm1)), golden
		if vol == filepath.Base(b.layer(vm1)) {
			backing = b.system(vm1)
		}
		if _, err := env.Virsh(ctx, "vol-delete", "--pool", "bench", vol); err != nil {
			return err
		}
		if _, err := env.Virsh(ctx, "vol-create-as", "bench", vol, string(size[1]), "--format", "qcow2", "--backing-vol", backing, "--backing-vol-format", "qcow2"); err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := env.Virsh(ctx, "restore", b.image(vm1)); err != nil {
			return err
		}
		overlay = append(overlay, time.Since(t0))
		overlayDisk = append(overlayDisk, t1.Sub(t0))
		logf("round %d %-18s %s", r+1, "overlay-virsh-1", time.Since(t0).Round(time.Millisecond))
		if err := b.waitRunning(ctx, b.vms[:1], "RIG hb n=", 3*time.Minute); err != nil {
			return err
		}
	}

	ver, _ := env.Virsh(ctx, "version", "--daemon")
	fmt.Printf("## Reset latency by mechanism, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("Machine: %s, %d CPUs, accelerator %s (qemu = TCG), %s. Load average (1 min) %s before, %s after.\n",
		benchhost.CPUModel(), runtime.NumCPU(), env.Accel, benchhost.Versions(string(ver)), loadBefore, loadAfter)
	fmt.Printf("Newer save features (sparse image format, parallel channels; libvirt 11.2+): %s.\n", saveFeatures(string(ver)))
	fmt.Printf("%d VMs of %s, 1 vCPU, stand-in guest with %d MiB of random data in memory (rig.ballast), booted and idle; %d rounds per scenario, order rotated each round.\n\n", n, mem, ballast, rounds)
	fmt.Println("| scenario | what is timed (whole commands, wall clock) | median | min | max | disk growth (max) |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, s := range scenarios {
		d := results[s.name]
		slices.Sort(d)
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", s.name, s.what, ms(d[len(d)/2]), ms(d[0]), ms(d[len(d)-1]), mib(resetGrowth[s.name]))
	}
	slices.Sort(overlay)
	fmt.Printf("| overlay-virsh-1 | `virsh destroy rb-1` + `virsh vol-delete` + `virsh vol-create-as` (fresh overlay) + `virsh restore IMAGE`, measured last | %s | %s | %s | (fresh file) |\n", ms(overlay[len(overlay)/2]), ms(overlay[0]), ms(overlay[len(overlay)-1]))
	steps["fresh overlay (destroy, delete, create)"] = overlayDisk
	fmt.Println()
	fmt.Println("Steps of img-virsh-1, img-virsh-bypass-1 and overlay-virsh-1 (rb-1; the disk revert includes stopping QEMU):")
	fmt.Println()
	fmt.Println("| step | median | min | max |")
	fmt.Println("|---|---|---|---|")
	for _, k := range []string{"disk revert", "fresh overlay (destroy, delete, create)", "restore (cache)", "restore (bypass)"} {
		d := steps[k]
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		fmt.Printf("| %s | %s | %s | %s |\n", k, ms(d[len(d)/2]), ms(d[0]), ms(d[len(d)-1]))
	}
	fmt.Println()
	img := allocated(b.image(vm1))
	fmt.Printf("Disk: memory image of rb-1 %s; one internal memory snapshot grew each VM's disk file by %s", mib(img), mibs(growth, b.vms))
	if tenGrowth >= 0 {
		fmt.Printf("; %d more memory snapshots of rb-1 grew it by %s (%s each)", nsnaps, mib(tenGrowth), mib(tenGrowth/int64(nsnaps)))
	}
	fmt.Println(".")
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func mibs(m map[string]int64, keys []string) string {
	var out []string
	for _, k := range keys {
		out = append(out, mib(m[k]))
	}
	return strings.Join(out, ", ")
}

// saveFeatures says whether the daemon has the save features newer than
// libvirt 9.0 (legacyvm's adapter uses them where present).
func saveFeatures(v string) string {
	m := regexp.MustCompile(`Running against daemon: ([0-9]+)\.([0-9]+)\.([0-9]+)`).FindStringSubmatch(v)
	if m == nil {
		return "unknown daemon version"
	}
	var maj, min int
	fmt.Sscan(m[1], &maj)
	fmt.Sscan(m[2], &min)
	if maj > 11 || maj == 11 && min >= 2 {
		return "present (daemon " + m[1] + "." + m[2] + "." + m[3] + "): legacyvm's images use the sparse format"
	}
	return "absent (daemon " + m[1] + "." + m[2] + "." + m[3] + ")"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// legacyvm runs the binary and returns its stdout; a failure carries
// stderr.
func (b *bench) legacyvm(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Env = b.environ
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("legacyvm %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// waitRunning waits until each VM's serial log (which starts over when a
// revert restarts QEMU) has a line matching prefix.
func (b *bench) waitRunning(ctx context.Context, vms []string, prefix string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	re := regexp.MustCompile(regexp.QuoteMeta(prefix))
	for _, vm := range vms {
		if _, err := testenv.WaitSerial(ctx, filepath.Join(b.logDir, vm+".serial.log"), re); err != nil {
			return err
		}
	}
	return nil
}
