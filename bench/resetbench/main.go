// Command resetbench measures how long resetting VMs to a memory snapshot
// takes with legacyvm, against the same reverts done with virsh
// snapshot-revert, on a private libvirtd (internal/testenv) with the
// stand-in guest. It is run by bench/run.sh (make bench) and prints a
// Markdown report; see bench/README.md for the method and recorded results.
//
// Scenarios, each measured as the wall-clock time of the whole command
// (process start, connection, revert, exit), rounds times, in an order
// that rotates every round:
//
//	legacyvm-1   legacyvm reset VM-1 --to settled
//	virsh-1      virsh snapshot-revert VM-1 settled
//	legacyvm-N   legacyvm reset VM-1..VM-N --to settled --parallelism N
//	virsh-N-seq  virsh snapshot-revert for VM-1..VM-N, one after another
//	virsh-N-par  the same N virsh commands started at once (reference)
//
// "settled" is a memory snapshot of each booted, idle guest (the tester's
// "clean desktop"): a revert resumes it without a boot. Between
// measurements the harness waits until every reverted guest runs again (a
// heartbeat on its new serial console).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func main() {
	var (
		bin    = flag.String("legacyvm", "bin/legacyvm", "legacyvm binary to measure")
		rounds = flag.Int("rounds", 7, "measurements per scenario")
		n      = flag.Int("vms", 5, "VMs for the N-VM scenarios")
		mem    = flag.String("memory", "256MiB", "memory of each VM")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *rounds, *n, *mem); err != nil {
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
	vms     []string
}

func run(ctx context.Context, bin string, rounds, n int, mem string) (err error) {
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
	logf("starting a private libvirtd")
	env, err := testenv.Start(context.WithoutCancel(ctx), testenv.Options{Logf: logf})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if serr := env.Stop(sctx); serr != nil && err == nil {
			err = serr
		}
	}()
	g, err := testenv.BuildGuest(ctx, testenv.GuestOptions{Logf: logf})
	if err != nil {
		return err
	}
	pool, err := env.NewPoolDir("bench")
	if err != nil {
		return err
	}
	logDir, err := env.NewPoolDir("logs")
	if err != nil {
		return err
	}
	golden := filepath.Join(pool, "golden.qcow2")
	if err := copyFile(g.Disk, golden); err != nil {
		return err
	}
	for _, args := range [][]string{{"pool-define-as", "bench", "dir", "--target", pool}, {"pool-start", "bench"}} {
		if _, err := env.Virsh(ctx, args...); err != nil {
			return err
		}
	}
	b := &bench{env: env, bin: bin, logDir: logDir}
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
  oem_strings     = ["rig.ip=none", "rig.listen=0", "rig.control=0", "rig.answercd=0", "rig.hb=1"]
}
`, env.URI, accel, n, mem, golden)
	if err := os.WriteFile(filepath.Join(profile, "main.hcl"), []byte(hcl), 0o644); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		b.vms = append(b.vms, fmt.Sprintf("rb-%d", i))
	}
	logf("apply: %d VMs", n)
	if _, err := b.legacyvm(ctx, "apply", "--auto-approve", "--parallelism", fmt.Sprint(n), profile); err != nil {
		return err
	}
	defer func() {
		if _, derr := b.legacyvm(context.WithoutCancel(ctx), "destroy", "--auto-approve", profile); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := b.waitRunning(ctx, b.vms, "RIG hb n=3 "); err != nil {
		return err
	}
	logf("taking the \"settled\" memory snapshots")
	for _, vm := range b.vms {
		if _, err := b.legacyvm(ctx, "snapshot", "create", vm, "settled", "--memory"); err != nil {
			return err
		}
	}

	type scenario struct {
		name, what string
		vms        []string
		run        func(ctx context.Context) error
	}
	virshRevert := func(ctx context.Context, vm string) error {
		_, err := env.Virsh(ctx, "snapshot-revert", vm, "settled")
		return err
	}
	scenarios := []scenario{
		{"legacyvm-1", "`legacyvm reset rb-1 --to settled`", b.vms[:1], func(ctx context.Context) error {
			_, err := b.legacyvm(ctx, "reset", b.vms[0], "--to", "settled")
			return err
		}},
		{"virsh-1", "`virsh snapshot-revert rb-1 settled`", b.vms[:1], func(ctx context.Context) error {
			return virshRevert(ctx, b.vms[0])
		}},
		{fmt.Sprintf("legacyvm-%d", n), fmt.Sprintf("`legacyvm reset rb-1..rb-%d --to settled --parallelism %d`", n, n), b.vms, func(ctx context.Context) error {
			_, err := b.legacyvm(ctx, append([]string{"reset", "--to", "settled", "--parallelism", fmt.Sprint(n)}, b.vms...)...)
			return err
		}},
		{fmt.Sprintf("virsh-%d-seq", n), fmt.Sprintf("`virsh snapshot-revert` for rb-1..rb-%d, one after another", n), b.vms, func(ctx context.Context) error {
			for _, vm := range b.vms {
				if err := virshRevert(ctx, vm); err != nil {
					return err
				}
			}
			return nil
		}},
		{fmt.Sprintf("virsh-%d-par", n), fmt.Sprintf("the same %d `virsh snapshot-revert` started at once", n), b.vms, func(ctx context.Context) error {
			errs := make([]error, len(b.vms))
			var wg sync.WaitGroup
			for i, vm := range b.vms {
				wg.Add(1)
				go func() { defer wg.Done(); errs[i] = virshRevert(ctx, vm) }()
			}
			wg.Wait()
			return errors.Join(errs...)
		}},
	}
	loadBefore := loadAvg()
	results := map[string][]time.Duration{}
	for r := 0; r < rounds; r++ {
		for k := range scenarios {
			s := scenarios[(k+r)%len(scenarios)]
			if err := ctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			if err := s.run(ctx); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			took := time.Since(start)
			results[s.name] = append(results[s.name], took)
			logf("round %d %-14s %s", r+1, s.name, took.Round(time.Millisecond))
			if err := b.waitRunning(ctx, s.vms, "RIG hb n="); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}

	loadAfter := loadAvg()
	ver, _ := env.Virsh(ctx, "version")
	fmt.Printf("## Reset latency, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("Machine: %s, %d CPUs, accelerator %s (qemu = TCG), %s. Load average (1 min) %s before, %s after.\n",
		cpuModel(), runtime.NumCPU(), env.Accel, versions(string(ver)), loadBefore, loadAfter)
	fmt.Printf("%d VMs of %s, stand-in guest booted and idle, memory snapshot \"settled\"; %d rounds per scenario, order rotated each round.\n\n", n, mem, rounds)
	fmt.Println("| scenario | what is timed (whole command, wall clock) | median | min | max |")
	fmt.Println("|---|---|---|---|---|")
	for _, s := range scenarios {
		d := results[s.name]
		slices.Sort(d)
		fmt.Printf("| %s | %s | %s | %s | %s |\n", s.name, s.what, ms(d[len(d)/2]), ms(d[0]), ms(d[len(d)-1]))
	}
	return nil
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
func (b *bench) waitRunning(ctx context.Context, vms []string, prefix string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	re := regexp.MustCompile(regexp.QuoteMeta(prefix))
	for _, vm := range vms {
		if _, err := testenv.WaitSerial(ctx, filepath.Join(b.logDir, vm+".serial.log"), re); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
		return strings.TrimSpace(string(m[1]))
	}
	return "unknown CPU"
}

// versions picks libvirt's and QEMU's versions out of virsh version.
func versions(v string) string {
	lib := regexp.MustCompile(`Using library: (libvirt [0-9.]+)`).FindStringSubmatch(v)
	hv := regexp.MustCompile(`Running hypervisor: (QEMU [0-9.]+)`).FindStringSubmatch(v)
	if lib == nil || hv == nil {
		return strings.Join(strings.Fields(v), " ")
	}
	return lib[1] + ", " + hv[1]
}

// loadAvg is the 1-minute load average: other work on the machine skews
// the numbers.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
