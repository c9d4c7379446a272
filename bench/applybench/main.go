// Command applybench measures `legacyvm apply` of N VMs against a shell
// script that makes the same objects one by one with qemu-img and virsh
// (the raw floor), alternating in one run on one private libvirtd
// (internal/testenv) with the stand-in guest. It is run by
// bench/apply.sh and prints a Markdown report; see
// bench/README.md for the method and recorded results.
//
// The profile: one isolated network with DHCP and port isolation
// (guest_to_guest = false, so legacyvm's anti-spoofing + host-guard filter pair on
// every NIC), N VMs of 256 MiB, linked clones of the stand-in golden image,
// a memory baseline taken right after start.
//
// The script makes the same objects from the XML legacyvm defined in a
// warm-up apply (dumped with virsh, so the filter content and the domain
// and network definitions are the same): net-define + net-start, the two
// nwfilters, then for each VM: qemu-img create (overlay), virsh define,
// virsh start, virsh snapshot-create-as (memory, as libvirt takes it of a
// running domain). What apply does and the script does not (planning,
// locks, secrets, metadata marks, the not-provisioned definition first, the
// verify after apply) is part of apply's time: that is the point.
//
// Each round runs both variants (order alternating), each followed by an
// untimed teardown; the report gives median, min and max.
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
		bin    = flag.String("legacyvm", "bin/legacyvm", "legacyvm binary to measure")
		rounds = flag.Int("rounds", 5, "measurements per variant")
		n      = flag.Int("vms", 6, "VMs per apply")
		mem    = flag.String("memory", "256MiB", "memory of each VM")
		par    = flag.String("parallelism", "", "apply --parallelism; a comma-separated list measures each value as its own variant (empty: legacyvm's default)")
		only   = flag.String("only", "", "run only this variant (legacyvm or script), for profiling")
		keep   = flag.String("logs", "", "directory to keep apply's stderr of each round in (and the libvirtd debug log when -libvirt-log is set)")
		vlog   = flag.Bool("libvirt-log", false, "turn on libvirtd's debug log (timings of every API call; slows libvirtd down)")
		simg   = flag.Bool("script-image", false, "also measure the script variant whose baseline is a saved memory image + disk snapshot + restore (legacyvm's memory baseline since #13 item 3)")
		cmp    = flag.String("compare", "", "another legacyvm binary (e.g. built from an earlier commit) measured as variant legacyvm-compare")
		slay   = flag.Bool("script-layer", false, "also measure the script variant whose baseline is one external snapshot of the running domain (memory image + the disk frozen as a layer, the domain going on in a new layer)")
		clog   = flag.Bool("client-log", false, "turn on the libvirt client library's debug log in legacyvm (rpc and remote driver) into the -logs directory")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := opts{scriptLayer: *slay, scriptImage: *simg, compare: *cmp, clientLog: *clog, bin: *bin, rounds: *rounds, n: *n, mem: *mem, par: *par, only: *only, logs: *keep, libvirtLog: *vlog}
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "applybench:", err)
		os.Exit(1)
	}
}

type opts struct {
	bin, mem, only, logs  string
	par, compare          string
	rounds, n             int
	libvirtLog, clientLog bool
	scriptImage           bool
	scriptLayer           bool
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

type bench struct {
	lastCPU time.Duration // user + system time of the last command and the children it waited for
	env     *testenv.Env
	bin     string
	environ []string
	profile string
}

func run(ctx context.Context, o opts) (err error) {
	if o.n < 1 || o.rounds < 1 {
		return errors.New("-vms and -rounds must be at least 1")
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("legacyvm binary: %w (run make build)", err)
	}
	if o.logs != "" {
		if err := os.MkdirAll(o.logs, 0o755); err != nil {
			return err
		}
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
	home, err := env.NewPoolDir("home")
	if err != nil {
		return err
	}
	logDir, err := env.NewPoolDir("serial")
	if err != nil {
		return err
	}
	b := &bench{env: env, bin: bin}
	b.environ = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LIBVIRT_DEFAULT_URI=" + env.URI,
		"LEGACYVM_SERIAL_LOG_DIR=" + logDir, "LEGACYVM_LOCK_DIR=" + filepath.Join(home, "locks"),
		"LEGACYVM_FINGERPRINT_KEY=" + filepath.Join(home, "fingerprint.key"),
	}
	if o.clientLog {
		if o.logs == "" {
			return errors.New("-client-log needs -logs DIR")
		}
		b.environ = append(b.environ, "LIBVIRT_LOG_FILTERS=1:rpc 1:remote 1:libvirt 3:util 3:object", "LIBVIRT_LOG_OUTPUTS=1:file:"+filepath.Join(o.logs, "client-debug.log"))
	}
	accel := "tcg"
	if env.Accel == "kvm" {
		accel = "auto"
	}
	b.profile = filepath.Join(home, "bench")
	if err := os.MkdirAll(b.profile, 0o755); err != nil {
		return err
	}
	hcl := fmt.Sprintf(`profile {
  name = "ab"
}
host "bench" {
  uri          = %q
  accelerator  = %q
  storage_pool = "bench"
}
network "iso" {
  subnet         = "10.99.0.0/24"
  dhcp           = true
  guest_to_guest = false
}
snapshot_policy "live" {
  memory = true
}
vm "ab" {
  count  = %d
  os     = "win7-x64"
  cpus   = 1
  memory = %q
  disk {
    image   = %q
    prepare = "none"
  }
  network         = network.iso
  snapshot_policy = snapshot_policy.live
  oem_strings     = ["rig.hb=5"]
}
`, env.URI, accel, o.n, o.mem, golden)
	if err := os.WriteFile(filepath.Join(b.profile, "main.hcl"), []byte(hcl), 0o644); err != nil {
		return err
	}

	// Warm-up apply: legacyvm defines the objects, virsh dumps their XML
	// for the script; then everything goes again.
	logf("warm-up apply of %d VMs (its XML is the script's)", o.n)
	if _, err := b.apply(ctx, ""); err != nil {
		return err
	}
	script, err := b.writeScript(ctx, home, pool, golden, o.n)
	if err != nil {
		return err
	}
	if o.logs != "" {
		if out, err := exec.CommandContext(ctx, "cp", "-r", script, filepath.Join(home, "script-xml"), o.logs).CombinedOutput(); err != nil {
			return fmt.Errorf("keep the script: %w: %s", err, out)
		}
	}
	if err := b.destroy(ctx); err != nil {
		return err
	}
	if o.libvirtLog {
		out := filepath.Join(o.logs, "libvirtd-debug.log")
		if o.logs == "" {
			return errors.New("-libvirt-log needs -logs DIR")
		}
		// Timestamps of every API call and job: what libvirtd spends its time on.
		if _, err := b.virtAdmin(ctx, "daemon-log-filters", "1:qemu 1:nwfilter 1:rpc.netserver 1:util.command 3:object 3:util 3:rpc 3:event 3:conf 3:security 3:storage 1:libvirt"); err != nil {
			return err
		}
		if _, err := b.virtAdmin(ctx, "daemon-log-outputs", "1:file:"+out); err != nil {
			return err
		}
	}

	type variant struct {
		name, what string
		run        func(context.Context, int) error
		undo       func(context.Context) error
	}
	var variants []variant
	pars := []string{""}
	if o.par != "" {
		pars = strings.Split(o.par, ",")
	}
	for _, par := range pars {
		name, what := "legacyvm", "`legacyvm apply --auto-approve` (plan, locks, apply, verify)"
		if par != "" {
			name, what = "legacyvm-p"+par, fmt.Sprintf("`legacyvm apply --auto-approve --parallelism %s` (plan, locks, apply, verify)", par)
		}
		variants = append(variants, variant{name, what, func(ctx context.Context, r int) error {
			stderr, err := b.apply(ctx, par)
			if o.logs != "" {
				_ = os.WriteFile(filepath.Join(o.logs, fmt.Sprintf("%s-%d.log", name, r)), []byte(stderr), 0o644)
			}
			return err
		}, b.destroy})
	}
	if o.compare != "" {
		cbin, err := filepath.Abs(o.compare)
		if err != nil {
			return err
		}
		variants = append(variants, variant{"legacyvm-compare", fmt.Sprintf("`%s apply --auto-approve` (the -compare binary)", filepath.Base(cbin)), func(ctx context.Context, r int) error {
			stderr, err := b.run(ctx, cbin, "apply", "--auto-approve", b.profile)
			if o.logs != "" {
				_ = os.WriteFile(filepath.Join(o.logs, fmt.Sprintf("legacyvm-compare-%d.log", r)), []byte(stderr), 0o644)
			}
			return err
		}, b.destroy})
	}
	// scriptVariant runs `sh apply.sh ARG` (name: the variant, "script-"
	// plus ARG's suffix), keeping its per-step timestamps with -logs.
	scriptVariant := func(name, arg, what string) variant {
		return variant{name, what, func(ctx context.Context, r int) error {
			out, err := b.sh(ctx, script, arg)
			if o.logs != "" {
				_ = os.WriteFile(filepath.Join(o.logs, fmt.Sprintf("%s-%d.log", name, r)), []byte(out), 0o644)
			}
			return err
		}, func(ctx context.Context) error { _, err := b.sh(ctx, script, "down"); return err }}
	}
	variants = append(variants, scriptVariant("script", "up", "`sh apply.sh up`, the issue's script: net-define + net-start, 2 nwfilter-define (clean-traffic + the host guard in a chain of its own), then per VM qemu-img create, virsh define, start, snapshot-create-as (internal, with memory)"))
	if o.scriptImage {
		variants = append(variants, scriptVariant("script-image", "up-image", "`sh apply.sh up-image`: the same, with the baseline as a memory image: per VM ... start, `virsh save`, snapshot-create-as (disks of the shut off domain), `virsh restore`"))
	}
	if o.scriptLayer {
		variants = append(variants, scriptVariant("script-layer", "up-layer", "`sh apply.sh up-layer`, legacyvm's objects: its one-chain filter; per VM qemu-img create (overlay, then the layer with `qemu-img snapshot -c`), define, start, `snapshot-create-as --memspec ... --diskspec ...,snapshot=external` onto the layer"))
	}
	loadBefore := benchhost.LoadAvg()
	results := map[string][]time.Duration{}
	ratios := map[string][]float64{}
	cpu := map[string][]time.Duration{}   // the client side: legacyvm, or sh with virsh and qemu-img
	dcpus := map[string][]time.Duration{} // libvirtd with the commands it ran
	for r := 0; r < o.rounds; r++ {
		took := map[string]time.Duration{}
		for k := range variants {
			v := variants[(k+r)%len(variants)]
			if o.only != "" && !strings.HasPrefix(v.name, o.only) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			start, dcpu := time.Now(), b.daemonCPU()
			if err := v.run(ctx, r+1); err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			took[v.name] = time.Since(start)
			cpu[v.name] = append(cpu[v.name], b.lastCPU)
			dcpus[v.name] = append(dcpus[v.name], b.daemonCPU()-dcpu)
			results[v.name] = append(results[v.name], took[v.name])
			logf("round %d %-13s %s (load %s; CPU: client %s, libvirtd %s)", r+1, v.name, took[v.name].Round(time.Millisecond), benchhost.LoadAvg(),
				b.lastCPU.Round(10*time.Millisecond), dcpus[v.name][len(dcpus[v.name])-1].Round(10*time.Millisecond))
			if err := v.undo(ctx); err != nil {
				return fmt.Errorf("%s teardown: %w", v.name, err)
			}
		}
		for _, v := range variants {
			if a, s := took[v.name], took["script"]; strings.HasPrefix(v.name, "legacyvm") && a > 0 && s > 0 {
				ratios[v.name] = append(ratios[v.name], float64(a)/float64(s))
			}
			if a, s := took[v.name], took["script-image"]; strings.HasPrefix(v.name, "legacyvm") && a > 0 && s > 0 {
				ratios[v.name+"/image"] = append(ratios[v.name+"/image"], float64(a)/float64(s))
			}
			if a, s := took[v.name], took["script-layer"]; strings.HasPrefix(v.name, "legacyvm") && a > 0 && s > 0 {
				ratios[v.name+"/layer"] = append(ratios[v.name+"/layer"], float64(a)/float64(s))
			}
		}
	}
	loadAfter := benchhost.LoadAvg()

	ver, _ := env.Virsh(ctx, "version")
	fmt.Printf("## Apply against the one-by-one script, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("Machine: %s, %d CPUs, accelerator %s (qemu = TCG), %s. Load average (1 min) %s before, %s after.\n",
		benchhost.CPUModel(), runtime.NumCPU(), env.Accel, benchhost.Versions(string(ver)), loadBefore, loadAfter)
	fmt.Printf("%d VMs of %s on one isolated network (DHCP, port isolation, anti-spoofing + host-guard filters), linked clones, memory baseline right after start; %d rounds, order rotated each round.\n\n", o.n, o.mem, o.rounds)
	fmt.Println("| variant | what is timed (wall clock) | median | min | max | legacyvm / script in the same round: median (min-max) | CPU, client side (median) | CPU, libvirtd + its commands (median) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, v := range variants {
		d := results[v.name]
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		ratio := ""
		if rs := ratios[v.name]; len(rs) > 0 {
			slices.Sort(rs)
			ratio = fmt.Sprintf("%.2f (%.2f-%.2f)", rs[len(rs)/2], rs[0], rs[len(rs)-1])
		}
		if rs := ratios[v.name+"/image"]; len(rs) > 0 {
			slices.Sort(rs)
			ratio += fmt.Sprintf("; to script-image %.2f (%.2f-%.2f)", rs[len(rs)/2], rs[0], rs[len(rs)-1])
		}
		if rs := ratios[v.name+"/layer"]; len(rs) > 0 {
			slices.Sort(rs)
			ratio += fmt.Sprintf("; to script-layer %.2f (%.2f-%.2f)", rs[len(rs)/2], rs[0], rs[len(rs)-1])
		}
		c, dc := cpu[v.name], dcpus[v.name]
		slices.Sort(c)
		slices.Sort(dc)
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", v.name, v.what, ms(d[len(d)/2]), ms(d[0]), ms(d[len(d)-1]), ratio, ms(c[len(c)/2]), ms(dc[len(dc)/2]))
	}
	return nil
}

func cpuOf(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// daemonCPU is libvirtd's CPU time so far, its own and that of the
// commands it ran and reaped (ebtables, iptables, qemu-img, dnsmasq):
// nwfilter instantiation is most of it.
func (b *bench) daemonCPU() time.Duration {
	pid, err := os.ReadFile(filepath.Join(b.env.Dir, "libvirtd.pid"))
	if err != nil {
		return 0
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(pid)), "stat"))
	if err != nil {
		return 0
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields after the command: state is f[0]; utime, stime, cutime,
	// cstime are fields 14-17 of stat, f[11]..f[14] here.
	var ticks int64
	for _, v := range f[11:15] {
		var n int64
		fmt.Sscan(v, &n)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func (b *bench) apply(ctx context.Context, par string) (string, error) {
	args := []string{"apply", "--auto-approve"}
	if par != "" {
		args = append(args, "--parallelism", par)
	}
	return b.legacyvm(ctx, append(args, b.profile)...)
}

func (b *bench) destroy(ctx context.Context) error {
	_, err := b.legacyvm(ctx, "destroy", "--auto-approve", b.profile)
	return err
}

// legacyvm runs the binary and returns its stderr (the progress log); a
// failure carries stdout and stderr.
func (b *bench) legacyvm(ctx context.Context, args ...string) (string, error) {
	return b.run(ctx, b.bin, args...)
}

func (b *bench) run(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = b.environ
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	b.lastCPU = cpuOf(cmd.ProcessState)
	if err != nil {
		return errb.String(), fmt.Errorf("legacyvm %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return errb.String(), nil
}

func (b *bench) sh(ctx context.Context, script, arg string) (string, error) {
	cmd := exec.CommandContext(ctx, "sh", script, arg)
	cmd.Env = append(os.Environ(), "LIBVIRT_DEFAULT_URI="+b.env.URI)
	out, err := cmd.CombinedOutput()
	b.lastCPU = cpuOf(cmd.ProcessState)
	if err != nil {
		return string(out), fmt.Errorf("sh %s %s: %w\n%s", script, arg, err, out)
	}
	return string(out), nil
}

func (b *bench) virtAdmin(ctx context.Context, args ...string) ([]byte, error) {
	uri := "libvirtd:///system?socket=" + filepath.Join(b.env.Dir, "sock", "libvirt-admin-sock")
	cmd := exec.CommandContext(ctx, "virt-admin", append([]string{"-c", uri}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("virt-admin %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

var (
	reUUID     = regexp.MustCompile(`(?m)^\s*<uuid>[^<]*</uuid>\n`)
	reMetadata = regexp.MustCompile(`(?s)\s*<metadata>.*</metadata>`)
	// A VM with a layered memory baseline runs on its layer, whose backing
	// chain libvirt writes into the definition; the script defines the VM
	// on its system disk, as legacyvm does before the baseline.
	reBacking = regexp.MustCompile(`(?s)\s*<backingStore.*</backingStore>`)
	reLayer   = regexp.MustCompile(`-live\.qcow2'`)
	// The guard's filter element, whatever chain and priority it has.
	reGuardChain = regexp.MustCompile(`<filter name='lvm-iso-guard'[^>]*>`)
)

// writeScript dumps the network, the filters and the first VM's domain
// from the warm-up apply and writes the one-by-one script that makes them
// again (VM i with VM i's own XML). The filters are defined under their own
// names, as legacyvm does, so the domain XML is unchanged.
func (b *bench) writeScript(ctx context.Context, dir, pool, golden string, n int) (string, error) {
	xdir := filepath.Join(dir, "script-xml")
	if err := os.MkdirAll(xdir, 0o755); err != nil {
		return "", err
	}
	dump := func(file string, args ...string) error {
		out, err := b.env.Virsh(ctx, args...)
		if err != nil {
			return err
		}
		// The UUID goes (libvirt makes a new one, as for legacyvm's
		// objects); legacyvm's metadata goes too: the script's objects
		// are not legacyvm's.
		out = reUUID.ReplaceAll(out, nil)
		out = reMetadata.ReplaceAll(out, nil)
		out = reBacking.ReplaceAll(out, nil)
		out = reLayer.ReplaceAll(out, []byte("-system.qcow2'"))
		return os.WriteFile(filepath.Join(xdir, file), out, 0o644)
	}
	if err := dump("net.xml", "net-dumpxml", "--inactive", "lvm-iso"); err != nil {
		return "", err
	}
	if err := dump("guard.xml", "nwfilter-dumpxml", "lvm-iso-guard"); err != nil {
		return "", err
	}
	if err := dump("filter.xml", "nwfilter-dumpxml", "lvm-iso"); err != nil {
		return "", err
	}
	// The script filters as legacyvm did until it wrote its own
	// one-chain filter: a root filter referencing libvirt's clean-traffic
	// and the guard, whose rules (the same as legacyvm's) live in a chain
	// of their own ordered before clean-traffic's ipv4 chain.
	guard, err := os.ReadFile(filepath.Join(xdir, "guard.xml"))
	if err != nil {
		return "", err
	}
	classic := reGuardChain.ReplaceAll(guard, []byte("<filter name='lvm-iso-guard' chain='ipv4-lvguard' priority='-705'>"))
	if string(classic) == string(guard) && !strings.Contains(string(guard), "ipv4-lvguard") {
		return "", fmt.Errorf("guard filter: no filter element to rewrite in %s", guard)
	}
	if err := os.WriteFile(filepath.Join(xdir, "guard-classic.xml"), classic, 0o644); err != nil {
		return "", err
	}
	root := "<filter name='lvm-iso' chain='root'>\n  <filterref filter='clean-traffic'/>\n  <filterref filter='lvm-iso-guard'/>\n</filter>\n"
	if err := os.WriteFile(filepath.Join(xdir, "filter-classic.xml"), []byte(root), 0o644); err != nil {
		return "", err
	}
	var vms []string
	for i := 1; i <= n; i++ {
		vm := fmt.Sprintf("ab-%d", i)
		vms = append(vms, vm)
		if err := dump(vm+".xml", "dumpxml", "--inactive", vm); err != nil {
			return "", err
		}
	}
	// The overlay's path is the one in the domain XML: the pool's
	// directory and legacyvm's volume name.
	x, err := os.ReadFile(filepath.Join(xdir, vms[0]+".xml"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`<source file='(` + regexp.QuoteMeta(pool) + `/[^']+)'`).FindSubmatch(x)
	if m == nil {
		return "", fmt.Errorf("no disk in %s under %s:\n%s", vms[0], pool, x)
	}
	diskTmpl := strings.Replace(string(m[1]), vms[0], "$vm", 1)
	tm := regexp.MustCompile(`<source file='` + regexp.QuoteMeta(string(m[1])) + `'[^>]*/>\s*(?:<[^>]*>\s*)*?<target dev='([a-z]+)'`).FindSubmatch(x)
	if tm == nil {
		return "", fmt.Errorf("no target of disk %s in %s:\n%s", m[1], vms[0], x)
	}
	target := string(tm[1])
	s := fmt.Sprintf(`#!/bin/sh
# The one-by-one floor: the objects of legacyvm apply, made with virsh and
# qemu-img from the XML legacyvm defined (dumped by applybench).
set -e
t() { echo "$(date +%%s.%%N) $*"; }
# net_up GUARD ROOT: the network, then the two filters (guard first).
net_up() {
	virsh -q net-define "$X/net.xml" >/dev/null
	virsh -q net-start lvm-iso >/dev/null
	virsh -q nwfilter-define "$X/$1" >/dev/null
	virsh -q nwfilter-define "$X/$2" >/dev/null
}
X=%q
G=%q
VMS=%q
case "$1" in
up)
	net_up guard-classic.xml filter-classic.xml
	for vm in $VMS; do
		disk=%q
		t "$vm overlay"
		qemu-img create -q -f qcow2 -b "$G" -F qcow2 "$disk"
		t "$vm define"
		virsh -q define "$X/$vm.xml" >/dev/null
		t "$vm start"
		virsh -q start "$vm" >/dev/null
		t "$vm snapshot"
		virsh -q snapshot-create-as "$vm" baseline >/dev/null
		t "$vm done"
	done
	;;
up-image)
	# The same, with the baseline as legacyvm takes it since the memory
	# image mechanism (#13 item 3): save the memory, snapshot the disks of
	# the shut off domain, restore the memory.
	net_up guard.xml filter.xml
	for vm in $VMS; do
		disk=%q
		mem="${disk%%-system.qcow2}-baseline.mem"
		t "$vm overlay"
		qemu-img create -q -f qcow2 -b "$G" -F qcow2 "$disk"
		t "$vm define"
		virsh -q define "$X/$vm.xml" >/dev/null
		t "$vm start"
		virsh -q start "$vm" >/dev/null
		t "$vm save"
		virsh -q save "$vm" "$mem" >/dev/null
		t "$vm snapshot"
		virsh -q snapshot-create-as "$vm" baseline >/dev/null
		t "$vm restore"
		virsh -q restore "$mem" >/dev/null
		t "$vm done"
	done
	;;
up-layer)
	# The baseline as one external snapshot of the running domain: the
	# memory into an image file, the disk frozen as the layer it ran on,
	# the domain going on in a new layer above it (prepared beforehand,
	# holding an internal snapshot of its empty state). One QEMU start.
	net_up guard.xml filter.xml
	for vm in $VMS; do
		disk=%q
		mem="${disk%%-system.qcow2}-baseline.mem"
		top="${disk%%.qcow2}-run.qcow2"
		t "$vm overlay"
		qemu-img create -q -f qcow2 -b "$G" -F qcow2 "$disk"
		qemu-img create -q -f qcow2 -b "$disk" -F qcow2 "$top"
		qemu-img snapshot -c baseline "$top"
		t "$vm define"
		virsh -q define "$X/$vm.xml" >/dev/null
		t "$vm start"
		virsh -q start "$vm" >/dev/null
		t "$vm snapshot"
		virsh -q snapshot-create-as "$vm" baseline --no-metadata --reuse-external \
			--memspec "file=$mem,snapshot=external" --diskspec "%s,snapshot=external,file=$top" >/dev/null
		t "$vm done"
	done
	;;
down)
	for vm in $VMS; do
		disk=%q
		virsh -q destroy "$vm" >/dev/null 2>&1 || true
		virsh -q snapshot-delete "$vm" baseline --metadata >/dev/null 2>&1 || true
		virsh -q undefine "$vm" >/dev/null
		rm -f "$disk" "${disk%%-system.qcow2}-baseline.mem" "${disk%%.qcow2}-run.qcow2"
	done
	virsh -q nwfilter-undefine lvm-iso >/dev/null
	virsh -q nwfilter-undefine lvm-iso-guard >/dev/null
	virsh -q net-destroy lvm-iso >/dev/null
	virsh -q net-undefine lvm-iso >/dev/null
	;;
esac
`, xdir, golden, strings.Join(vms, " "), diskTmpl, diskTmpl, diskTmpl, target, diskTmpl)
	path := filepath.Join(dir, "apply.sh")
	return path, os.WriteFile(path, []byte(s), 0o755)
}
