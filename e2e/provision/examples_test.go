package provision

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// exampleVM is what one instance of an example must become.
type exampleVM struct {
	name, vm string
	// computer is the computer name the guest reads from its answer media;
	// "" when the example needs no answer media (prepare = "none").
	computer string
	install  bool // installed from media (Autounattend.xml, Windows ISO on sdc)
	full     bool // clone = "full": no backing store
	memMiB   uint
	vcpus    int
	oem      []string
	license  string
	key      string
	// memoryBaseline: the policy snapshots memory (taken running).
	memoryBaseline bool
	autostart      bool
	// diskGiB is the disk size the example sets (0: the golden image's).
	diskGiB uint64
}

type exampleCase struct {
	dir string
	// setup prepares the host and returns the --var arguments and the
	// image the system disks are overlays of ("" = none).
	setup   func(t *testing.T, h *e2eutil.Host) (vars []string, golden string)
	env     []string
	files   map[string]string
	network networkWant
	vms     []exampleVM
}

// opsGolden is where examples/ops-daily expects its golden image: a fixed
// path, seen by the harness's libvirtd (whose /var/lib/libvirt is the
// instance's "lib" directory).
const opsGolden = "/var/lib/libvirt/images/win7-sp1-x64-golden.qcow2"

var exampleCases = []exampleCase{
	{
		dir: "quickstart",
		setup: func(t *testing.T, h *e2eutil.Host) ([]string, string) {
			return []string{"--var", "golden=" + h.Golden}, h.Golden
		},
		network: networkWant{name: "demo", subnet: "10.77.7.0/24", hosts: []string{"demo"}},
		vms:     []exampleVM{{name: "demo", vm: "demo", memMiB: 2048, vcpus: 1}},
	},
	{
		dir: "single-vm",
		setup: func(t *testing.T, h *e2eutil.Host) ([]string, string) {
			return []string{"--var", "golden=" + h.Golden}, h.Golden
		},
		env:     []string{"WIN7_KEY=" + keySingle},
		network: networkWant{name: "single", subnet: "10.77.1.0/24", hosts: []string{"legacy-app"}},
		vms: []exampleVM{{name: "legacy-app", vm: "legacy-app", computer: "LEGACY-APP", memMiB: 4096, vcpus: 2,
			license: "win7", key: keySingle, diskGiB: 60}},
	},
	{
		dir: "lab",
		setup: func(t *testing.T, h *e2eutil.Host) ([]string, string) {
			return []string{"--var", "golden=" + h.Golden}, h.Golden
		},
		env:     []string{"ACCT_WIN7_MAK=" + keyLab},
		network: networkWant{name: "acct-lab", subnet: "10.77.0.0/24", allowPorts: []uint{3389}, hosts: []string{"acct-1", "acct-2"}},
		vms: []exampleVM{
			{name: "acct-1", vm: "acct", computer: "ACCT-1", memMiB: 4096, vcpus: 2, license: "acct", key: keyLab, diskGiB: 60},
			{name: "acct-2", vm: "acct", computer: "ACCT-2", memMiB: 4096, vcpus: 2, license: "acct", key: keyLab, diskGiB: 60},
		},
	},
	{
		dir: "ops-daily",
		setup: func(t *testing.T, h *e2eutil.Host) ([]string, string) {
			// The example names a fixed golden image path; put the stand-in
			// there, as libvirtd sees it.
			dst := filepath.Join(h.Env.Dir, "lib", strings.TrimPrefix(opsGolden, "/var/lib/libvirt/"))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			copyFile(t, h.Golden, dst)
			return nil, ""
		},
		files:   map[string]string{"keys/ops.key": keyOps + "\n"},
		network: networkWant{name: "ops", subnet: "10.77.3.0/28", isolated: true, allowPorts: []uint{3389, 8000}, hosts: []string{"ops"}},
		vms: []exampleVM{{name: "ops", vm: "ops", computer: "LEDGER-OPS", full: true, memMiB: 6144, vcpus: 2,
			oem: []string{"legacyvm:app=ledger"}, license: "ops", key: keyOps, memoryBaseline: true, autostart: true, diskGiB: 80}},
	},
	{
		dir: "install-media",
		setup: func(t *testing.T, h *e2eutil.Host) ([]string, string) {
			// The stand-in installer ISO (imitates Windows Setup), copied so
			// that libvirt's pool and relabelling touch only the copy.
			iso := filepath.Join(h.PoolDir, "..", filepath.Base(h.PoolDir)+"-iso", "win7-standin.iso")
			if err := os.MkdirAll(filepath.Dir(iso), 0o755); err != nil {
				t.Fatal(err)
			}
			copyFile(t, h.Guest.Installer, iso)
			return []string{"--var", "iso=" + iso}, ""
		},
		files: map[string]string{
			"secrets/win7.key":       keyInstall + "\n",
			"secrets/admin.password": fakePassword + "\n",
		},
		network: networkWant{name: "install", subnet: "10.77.2.0/24", hosts: []string{"fresh"}},
		vms: []exampleVM{{name: "fresh", vm: "fresh", computer: "FRESH-W7", install: true, memMiB: 4096, vcpus: 2,
			license: "ultimate", key: keyInstall, diskGiB: 40}},
	},
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestExamples applies every example profile (a copy of it, with a host
// block for the harness) and checks what libvirt then holds, object by
// object, by parsing its XML; then that a second apply changes nothing, and
// that destroy leaves only the golden image.
func TestExamples(t *testing.T) {
	dirs, err := os.ReadDir(filepath.Join(repoRoot(), "examples"))
	if err != nil {
		t.Fatal(err)
	}
	// Examples whose flow needs more than apply are proven by their own
	// package.
	covered := map[string]bool{
		"golden-image": true, // e2e/images TestGoldenImageExample: image build, then apply
	}
	for _, c := range exampleCases {
		covered[c.dir] = true
	}
	for _, d := range dirs {
		if d.IsDir() && !covered[d.Name()] {
			t.Errorf("examples/%s has no case in TestExamples", d.Name())
		}
	}
	for _, c := range exampleCases {
		t.Run(c.dir, func(t *testing.T) {
			t.Parallel()
			testExample(t, c)
		})
	}
}

func testExample(t *testing.T, c exampleCase) {
	h := e2eutil.NewHost(t)
	vars, golden := c.setup(t, h)
	dir := copyExample(t, h, c.dir, c.files)
	profile := c.dir
	c.network.profile = profile
	outputs := map[string]string{}
	run := func(want int, args ...string) e2eutil.Result {
		t.Helper()
		r := h.RunEnv(t, c.env, append(args, vars...)...)
		outputs[fmt.Sprintf("%s #%d", strings.Join(args, " "), len(outputs))] = r.Stdout + r.Stderr
		if r.Code != want {
			t.Fatalf("exit %d, want %d\n%s", r.Code, want, r)
		}
		return r
	}

	// Plan: the network, its filter, one VM per instance, all created.
	p := parsePlan(t, run(2, "plan", "-o", "json", dir))
	creates := map[string]string{}
	for _, hp := range p.Hosts {
		if hp.Accel != "tcg" && h.Env.Accel == "qemu" {
			t.Errorf("plan accelerator %q, want tcg", hp.Accel)
		}
		for _, ch := range hp.Changes {
			creates[ch.Kind+" "+ch.Name] = ch.Action
		}
	}
	wantCreates := []string{"network lvm-" + c.network.name, "filter lvm-" + c.network.name}
	for _, vm := range c.vms {
		wantCreates = append(wantCreates, "vm "+vm.name)
	}
	for _, k := range wantCreates {
		if creates[k] != "create" {
			t.Errorf("plan: %s is %q, want create (plan: %v)", k, creates[k], creates)
		}
	}

	// Apply, watching each guest's serial console and CD-ROM drives.
	serial := map[string]*serialWatch{}
	media := map[string]*mediaWatch{}
	for _, vm := range c.vms {
		serial[vm.name] = watchSerial(t, h.SerialLog(vm.name))
		media[vm.name] = watchMedia(t, h, vm.name)
	}
	start := time.Now()
	r := run(0, "apply", "--auto-approve", dir)
	t.Logf("apply took %s", time.Since(start).Round(100*time.Millisecond))
	for _, vm := range c.vms {
		media[vm.name].Stop()
		if !regexp.MustCompile(`(?m)\] ` + regexp.QuoteMeta(vm.name) + `: done in `).MatchString(r.Stderr) {
			t.Errorf("no progress line saying %s is done:\n%s", vm.name, r.Stderr)
		}
	}

	res := checkNetwork(t, h, c.network)
	var domains, memory []string
	for _, vm := range c.vms {
		domains = append(domains, vm.name)
		if vm.memoryBaseline {
			memory = append(memory, vm.name)
		}
		checkExampleVM(t, h, c, vm, golden, res[vm.name], serial[vm.name], media[vm.name].Seen())
	}

	// The host holds exactly what the example declares.
	inv := wantInv{profile: profile, domains: domains, snapshots: []string{"clean"}, networks: []string{c.network.name}, memory: memory}
	switch {
	case golden == "":
		// No pool was made for the harness's golden-image directory.
		inv.images = []string{}
		inv.extra = []string{"file images/" + filepath.Base(h.Golden)}
	}
	scope := regexp.MustCompile(`^(lvm-)?(` + strings.Join(append(domains, c.network.name), "|") + `)(-|$)`)
	checkInventory(t, "after apply", inventory(t, h, scope, profile), inv.lines(h))

	// Idempotency: nothing to do, on plan and on apply.
	run(0, "plan", dir)
	r = run(0, "apply", "--auto-approve", dir)
	if !strings.Contains(r.Stdout, "No changes") {
		t.Errorf("second apply did not say it had nothing to do:\n%s", r)
	}

	// Status reports each VM with its reserved address and baseline.
	st := parseStatus(t, run(0, "status", "-o", "json", dir))
	if len(st.VMs) != len(c.vms) {
		t.Errorf("status lists %d VMs, want %d: %+v", len(st.VMs), len(c.vms), st.VMs)
	}
	for _, s := range st.VMs {
		hh := res[s.Name]
		if s.State != "running" || !s.Provisioned || s.Baseline != "clean" || s.Snapshots != 1 || s.IP != hh.IP || s.Network != "lvm-"+c.network.name {
			t.Errorf("status of %s: %+v, want running, provisioned, baseline clean (1 snapshot), ip %s on lvm-%s", s.Name, s, hh.IP, c.network.name)
		}
		// ops-daily snapshots at 02:30 host time: status says when next.
		if c.dir == "ops-daily" {
			next, err := time.Parse(time.RFC3339, s.NextSnapshot)
			if err != nil || s.Schedule != "30 2 * * *" || next.Local().Hour() != 2 || next.Local().Minute() != 30 || !next.After(time.Now()) {
				t.Errorf("status of %s: next snapshot %q (schedule %q), want the coming 02:30", s.Name, s.NextSnapshot, s.Schedule)
			}
		}
	}

	// A reset to the baseline (taken with memory for ops-daily, shut off for
	// the others) is not drift either.
	// --profile scopes the reset to this profile (and takes its variables).
	run(0, append([]string{"reset", "--profile", dir}, domains...)...)
	run(0, "plan", dir)

	// No secret anywhere: command outputs, libvirt's documents, consoles.
	for k, v := range hostTexts(t, h, domains, []string{"lvm-" + c.network.name}) {
		outputs[k] = v
	}
	noSecrets(t, outputs)

	// Destroy leaves nothing but the golden image.
	run(0, "destroy", "--auto-approve", dir)
	empty := wantInv{profile: profile, images: inv.images, extra: inv.extra, unpooled: true}
	checkInventory(t, "after destroy", inventory(t, h, scope, profile), empty.lines(h))
	if golden == "" && c.dir == "ops-daily" {
		if _, err := os.Stat(filepath.Join(h.Env.Dir, "lib", strings.TrimPrefix(opsGolden, "/var/lib/libvirt/"))); err != nil {
			t.Errorf("destroy touched the golden image: %v", err)
		}
	}
}

func checkExampleVM(t *testing.T, h *e2eutil.Host, c exampleCase, vm exampleVM, golden string, hh libvirtxml.NetworkDHCPHost,
	serial *serialWatch, seen map[string]string) {
	t.Helper()
	backing := golden
	if vm.full || vm.install {
		backing = ""
	}
	w := domainWant{name: vm.name, profile: c.dir, vm: vm.vm, memMiB: vm.memMiB, vcpus: vm.vcpus, network: c.network.name,
		golden: backing, oem: vm.oem, license: vm.license, memoryBaseline: vm.memoryBaseline}
	if vm.key != "" {
		w.keyTail = lastGroup(vm.key)
	}
	mac, ip := checkDomain(t, h, w)
	if !strings.EqualFold(mac, hh.MAC) || ip.String() != hh.IP {
		t.Errorf("%s: NIC %s with filter IP %s, but the network reserves %s for %s", vm.name, mac, ip, hh.IP, hh.MAC)
	}
	checkBinding(t, h, vm.name, mac, "lvm-"+c.network.name, ip)

	// The guest, booted by apply, reaches userspace and gets the reserved
	// address by DHCP.
	net := serial.Wait(t, -1, `^RIG net dev=eth0 `, 3*time.Minute)
	want := fmt.Sprintf("mac=%s ip=%s/", strings.ToLower(hh.MAC), hh.IP)
	if !strings.Contains(net, want) || !strings.Contains(net, "via=dhcp") {
		t.Errorf("%s: guest reports %q, want %q via dhcp", vm.name, net, want)
	}

	// Answer media: attached for setup, read by the guest (which saw its own
	// computer name), then detached and deleted before the baseline.
	answer := filepath.Join(h.PoolDir, "lvm-"+vm.name+"-answer.iso")
	boots := serial.Boots()
	if vm.computer == "" {
		if len(seen) != 0 {
			t.Errorf("%s: media attached although the example needs none: %v", vm.name, seen)
		}
		if len(boots) != 1 {
			t.Errorf("%s: booted %d times, want once:\n%s", vm.name, len(boots), serial)
		}
	} else {
		if seen["sdb="+answer] != "present" {
			t.Errorf("%s: answer media %s never seen attached (seen: %v)", vm.name, answer, seen)
		}
		if vm.install {
			var iso string
			for k := range seen {
				if strings.HasPrefix(k, "sdc=") {
					iso = k
				}
			}
			if !strings.HasSuffix(iso, "win7-standin.iso") {
				t.Errorf("%s: installation ISO never seen on sdc (seen: %v)", vm.name, seen)
			}
		}
		if len(boots) != 2 {
			t.Errorf("%s: booted %d times, want twice (setup, then the provisioned VM):\n%s", vm.name, len(boots), serial)
		}
		file := "Unattend.xml"
		if vm.install {
			file = "Autounattend.xml"
			if serial.Find(0, regexp.MustCompile(`^RIG install target=sda result=written`)) == "" {
				t.Errorf("%s: setup did not install the system on sda:\n%s", vm.name, serial)
			}
		}
		// ISO 9660 names may come back upper-cased; the computer name may not.
		want := "RIG answer file=" + file + " computername="
		if l := serial.Find(0, regexp.MustCompile(`(?i)^`+regexp.QuoteMeta(want))); !strings.EqualFold(l[:min(len(l), len(want))], want) || l[len(want):] != vm.computer {
			t.Errorf("%s: setup read %q, want %s with computer name %s:\n%s", vm.name, l, file, vm.computer, serial)
		}
		if serial.Find(0, regexp.MustCompile(`^RIG poweroff reason=answercd`)) == "" {
			t.Errorf("%s: setup did not power the guest off:\n%s", vm.name, serial)
		}
		if serial.Find(-1, regexp.MustCompile(`^RIG answer file=none`)) == "" {
			t.Errorf("%s: the provisioned VM still found answer media:\n%s", vm.name, serial)
		}
		if _, err := os.Stat(answer); !os.IsNotExist(err) {
			t.Errorf("%s: answer media %s still exists after setup (%v)", vm.name, answer, err)
		}
	}

	// The system volume as the storage pool describes it.
	ctx := ctxT(t, time.Minute)
	vols, err := h.HV.ListVolumes(ctx, h.Pool)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range vols {
		if v.Name != "lvm-"+vm.name+"-system.qcow2" {
			continue
		}
		found = true
		if v.Format != "qcow2" || v.BackingPath != backing {
			t.Errorf("%s: system volume format %q backing %q, want qcow2 backed by %q", vm.name, v.Format, v.BackingPath, backing)
		}
		want := vm.diskGiB << 30
		if want == 0 {
			g, err := h.HV.VolumeByPath(ctx, h.Golden)
			if err != nil {
				t.Fatal(err)
			}
			want = g.CapacityBytes
		}
		if v.CapacityBytes != want {
			t.Errorf("%s: system volume capacity %d, want %d", vm.name, v.CapacityBytes, want)
		}
	}
	if !found {
		t.Errorf("%s: no system volume in pool %s", vm.name, h.Pool)
	}

	// The baseline: one protected snapshot, taken after setup.
	snaps, err := h.HV.ListSnapshots(ctx, vm.name)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Name != "clean" {
		t.Fatalf("%s: snapshots %+v, want only the baseline clean", vm.name, snaps)
	}
	s := snaps[0]
	wantState := virt.StateShutoff
	if vm.memoryBaseline {
		wantState = virt.StateRunning
	}
	// A memory baseline is a disk snapshot plus a memory image: the
	// classified snapshot is what snapshot list shows.
	if c := snapmeta.Classify(s, "clean"); c.State != wantState || c.Memory != vm.memoryBaseline {
		t.Errorf("%s: baseline state %s memory %v, want %s %v", vm.name, s.State, s.Memory, wantState, vm.memoryBaseline)
	}
	if desc, ok := snapmeta.ParseDescription(s.Description); !ok || desc.Kind != snapmeta.Baseline {
		t.Errorf("%s: baseline description %q is not legacyvm's baseline record", vm.name, s.Description)
	}
	var snap libvirtxml.DomainSnapshot
	if err := snap.Unmarshal(virsh(t, h, "snapshot-dumpxml", vm.name, "clean")); err != nil {
		t.Fatal(err)
	}
	if snap.Domain == nil || snap.Domain.Devices == nil {
		t.Fatalf("%s: baseline without its domain definition", vm.name)
	}
	for _, dk := range snap.Domain.Devices.Disks {
		if dk.Device == "cdrom" && dk.Source != nil && dk.Source.File != nil && dk.Source.File.File != "" {
			t.Errorf("%s: the baseline was taken with %s in its CD-ROM drive", vm.name, dk.Source.File.File)
		}
	}

	d, err := h.HV.GetDomain(ctx, vm.name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Autostart != vm.autostart {
		t.Errorf("%s: autostart %v, want %v", vm.name, d.Autostart, vm.autostart)
	}
}
