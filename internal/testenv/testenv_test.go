package testenv_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func exec(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func netnsList(t testing.TB) string {
	t.Helper()
	out, err := exec("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hasNetNS(list, name string) bool {
	for _, l := range strings.Split(list, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// TestInstanceLifecycle starts and stops an instance of its own and checks
// that everything it created lived in its namespace and is gone after Stop.
func TestInstanceLifecycle(t *testing.T) {
	testenv.Libvirt(t) // fail/skip like every libvirt test when the host cannot run one
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	linksBefore, addrsBefore := rootNetState(t)

	t0 := time.Now()
	e, err := testenv.Start(ctx, testenv.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("instance %s started in %.2fs", e.NetNS, time.Since(t0).Seconds())
	stopped := false
	defer func() {
		if !stopped {
			_ = e.Stop(context.Background())
		}
	}()

	if !hasNetNS(netnsList(t), e.NetNS) {
		t.Errorf("ip netns list has no %s", e.NetNS)
	}
	if want := "qemu:///system?socket=" + filepath.Join(e.Dir, "sock", "libvirt-sock"); e.URI != want {
		t.Errorf("URI = %q, want %q", e.URI, want)
	}
	if e.Accel != "kvm" && e.Accel != "qemu" {
		t.Errorf("Accel = %q", e.Accel)
	}
	if out := virsh(t, ctx, e, "uri"); !strings.HasPrefix(out, "qemu:///system?socket=") {
		t.Errorf("virsh uri = %q", out)
	}
	// The private /etc/libvirt copy has the built-in filters but none of the
	// host's networks (Debian's "default" would be autostarted otherwise).
	if out := virsh(t, ctx, e, "nwfilter-list"); !strings.Contains(out, "clean-traffic") {
		t.Errorf("nwfilter-list lacks clean-traffic:\n%s", out)
	}
	if out := virsh(t, ctx, e, "net-list", "--all", "--name"); strings.TrimSpace(out) != "" {
		t.Errorf("fresh instance has networks: %q", out)
	}

	// A network with a bridge and an address: it must appear in the
	// namespace only.
	defineXML(t, ctx, e, "net-define", isolatedNetwork("lvt-life", "lvtlife0", "10.91.0", nil))
	virsh(t, ctx, e, "net-start", "lvt-life")
	out, err := e.Run(ctx, "ip", "-o", "addr", "show", "dev", "lvtlife0")
	if err != nil || !strings.Contains(string(out), "10.91.0.1/24") {
		t.Errorf("bridge address in namespace: %v %s", err, out)
	}
	if links, addrs := rootNetState(t); links != linksBefore || addrs != addrsBefore {
		t.Errorf("root namespace changed while the instance runs:\nlinks before:\n%s\nlinks now:\n%s\naddrs before:\n%s\naddrs now:\n%s", linksBefore, links, addrsBefore, addrs)
	}
	// libvirtd sees the instance's directories at libvirt's standard paths.
	pid, err := os.ReadFile(filepath.Join(e.Dir, "libvirtd.pid"))
	if err != nil {
		t.Fatalf("libvirtd pid file: %v", err)
	}
	mounts, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt"} {
		if !regexp.MustCompile(`(?m)^\S+ \S+ \S+ \S+ ` + regexp.QuoteMeta(dir) + ` `).Match(mounts) {
			t.Errorf("libvirtd's mount namespace has no private %s", dir)
		}
	}
	if own, _ := os.ReadFile("/proc/self/mountinfo"); regexp.MustCompile(`(?m)^\S+ \S+ \S+ \S+ /run/libvirt `).Match(own) {
		t.Errorf("the test's own mount namespace has a mount on /run/libvirt")
	}

	t1 := time.Now()
	if err := e.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	stopped = true
	t.Logf("instance stopped in %.2fs", time.Since(t1).Seconds())
	if hasNetNS(netnsList(t), e.NetNS) {
		t.Errorf("namespace %s still exists after Stop", e.NetNS)
	}
	if _, err := os.Stat(e.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance dir %s still exists after Stop (%v)", e.Dir, err)
	}
	if links, addrs := rootNetState(t); links != linksBefore || addrs != addrsBefore {
		t.Errorf("root namespace changed after Stop")
	}
	if _, err := e.Virsh(ctx, "version"); err == nil {
		t.Errorf("libvirtd still answers after Stop")
	}
}

// TestTwoInstancesSameBridge defines the same network (same bridge name and
// subnet) in two instances at once; both work because each lives in its own
// namespace.
func TestTwoInstancesSameBridge(t *testing.T) {
	a := testenv.Libvirt(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := testenv.Start(ctx, testenv.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("start second instance: %v", err)
	}
	defer func() {
		if err := b.Stop(context.Background()); err != nil {
			t.Errorf("stop second instance: %v", err)
		}
	}()
	if a.NetNS == b.NetNS || a.Dir == b.Dir || a.URI == b.URI {
		t.Fatalf("instances share identity: %+v %+v", a, b)
	}
	for _, e := range []*testenv.Env{a, b} {
		defineXML(t, ctx, e, "net-define", isolatedNetwork("lvt-twin", "lvttwin0", "10.92.0", nil))
		virsh(t, ctx, e, "net-start", "lvt-twin")
	}
	defer func() {
		_, _ = a.Virsh(context.Background(), "net-destroy", "lvt-twin")
		_, _ = a.Virsh(context.Background(), "net-undefine", "lvt-twin")
	}()
	for _, e := range []*testenv.Env{a, b} {
		if out := virsh(t, ctx, e, "net-list", "--name"); !strings.Contains(out, "lvt-twin") {
			t.Errorf("%s: network not active: %q", e.NetNS, out)
		}
		out, err := e.Run(ctx, "ip", "-o", "addr", "show", "dev", "lvttwin0")
		if err != nil || !strings.Contains(string(out), "10.92.0.1/24") {
			t.Errorf("%s: bridge lvttwin0: %v %s", e.NetNS, err, out)
		}
	}
	// Each daemon sees only its own objects.
	defineXML(t, ctx, b, "net-define", isolatedNetwork("lvt-only-b", "lvtonlyb0", "10.93.0", nil))
	if out := virsh(t, ctx, a, "net-list", "--all", "--name"); strings.Contains(out, "lvt-only-b") {
		t.Errorf("instance %s sees a network defined in %s", a.NetNS, b.NetNS)
	}
	if _, err := exec("ip", "link", "show", "lvttwin0"); err == nil {
		t.Errorf("bridge lvttwin0 exists in the root namespace")
	}
}

var (
	netLine  = regexp.MustCompile(`^RIG net dev=eth0 .* ip=(\d+\.\d+\.\d+\.\d+)/\d+ via=dhcp`)
	bootLine = regexp.MustCompile(`^RIG boot `)
)

// TestGuestBootSATA boots the stand-in guest like legacyvm boots Windows 7
// (pc machine, SeaBIOS, qcow2 overlay of the golden disk on SATA, e1000 on
// an isolated network with DHCP and clean-traffic) and reaches it from the
// namespace. It also proves storage pools, lifecycle events, internal
// snapshots with memory and the disk marker through the instance's URI.
func TestGuestBootSATA(t *testing.T) {
	e := testenv.Libvirt(t)
	g := testenv.Guest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	linksBefore, addrsBefore := rootNetState(t)

	// Lifecycle events, from the root namespace through the URI.
	evLog := filepath.Join(t.TempDir(), "events.log")
	evf, err := os.Create(evLog)
	if err != nil {
		t.Fatal(err)
	}
	ev := osexec.Command("virsh", "-c", e.URI, "event", "--event", "lifecycle", "--loop")
	ev.Stdout, ev.Stderr = evf, evf
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ev.Process.Kill(); _ = ev.Wait(); evf.Close() }()

	// A dir pool and a qcow2 overlay of the golden disk, through libvirt.
	pool := e.PoolDir(t)
	defineXML(t, ctx, e, "pool-define", &libvirtxml.StoragePool{
		Type: "dir", Name: "lvt-boot", Target: &libvirtxml.StoragePoolTarget{Path: pool},
	})
	virsh(t, ctx, e, "pool-start", "lvt-boot")
	defer func() {
		_, _ = e.Virsh(context.Background(), "pool-destroy", "lvt-boot")
		_, _ = e.Virsh(context.Background(), "pool-undefine", "lvt-boot")
	}()
	vol := &libvirtxml.StorageVolume{
		Name:         "boot1.qcow2",
		Capacity:     &libvirtxml.StorageVolumeSize{Unit: "MiB", Value: 64},
		Target:       &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{Path: g.Disk, Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
	}
	x, _ := vol.Marshal()
	volXML := filepath.Join(t.TempDir(), "vol.xml")
	if err := os.WriteFile(volXML, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	virsh(t, ctx, e, "vol-create", "lvt-boot", volXML)
	overlay := strings.TrimSpace(virsh(t, ctx, e, "vol-path", "--pool", "lvt-boot", "boot1.qcow2"))

	const mac, ip = "52:54:00:91:00:10", "10.94.0.10"
	defineXML(t, ctx, e, "net-define", isolatedNetwork("lvt-boot", "lvtboot0", "10.94.0", map[string]string{"boot1": mac}))
	virsh(t, ctx, e, "net-start", "lvt-boot")
	defer func() {
		_, _ = e.Virsh(context.Background(), "net-destroy", "lvt-boot")
		_, _ = e.Virsh(context.Background(), "net-undefine", "lvt-boot")
	}()

	serial := filepath.Join(pool, "boot1.serial.log")
	v := vm{name: "lvt-boot1", accel: e.Accel, disk: overlay, network: "lvt-boot", mac: mac, filterIP: ip,
		serialLog: serial, rig: []string{"rig.hb=1", "rig.diskcheck=1"}}
	t0 := time.Now()
	v.start(t, ctx, e)
	tStarted := time.Since(t0)
	line, err := testenv.WaitSerial(ctx, serial, netLine)
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(e.DaemonLog(), 20))
	}
	t.Logf("define+start %.2fs, boot to RIG net %.2fs: %s", tStarted.Seconds(), time.Since(t0).Seconds(), line)
	if got := netLine.FindStringSubmatch(line)[1]; got != ip {
		t.Fatalf("guest got %s, want the reserved %s", got, ip)
	}
	if l, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`^RIG disk marker=`)); err != nil || !strings.Contains(l, "marker=absent dev=sda") {
		t.Errorf("disk check on the fresh overlay: %q %v", l, err)
	}

	// Host side of the bridge -> guest: ICMP and the guest's TCP banner.
	if out, err := e.Run(ctx, g.Busybox, "ping", "-c", "2", "-W", "2", ip); err != nil {
		t.Errorf("ping %s from the namespace: %v\n%s", ip, err, out)
	}
	if out, err := e.Run(ctx, g.Busybox, "nc", "-w", "3", ip, "7777"); err != nil || !strings.Contains(string(out), "RIG-BANNER lvt-boot1") {
		t.Errorf("banner from %s:7777: %v %q", ip, err, out)
	}
	// The bridge, the tap and the nwfilter rules live in the namespace only.
	if _, err := exec("ip", "link", "show", "lvtboot0"); err == nil {
		t.Errorf("bridge lvtboot0 exists in the root namespace")
	}
	if links, addrs := rootNetState(t); links != linksBefore || addrs != addrsBefore {
		t.Errorf("root namespace changed while the guest runs:\n%s\n%s", links, addrs)
	}
	if out, err := e.Run(ctx, "ebtables", "-t", "nat", "-L"); err != nil || !strings.Contains(string(out), "libvirt-I-") {
		t.Errorf("clean-traffic ebtables chains in the namespace: %v\n%s", err, out)
	}
	if out, _ := exec("ebtables", "-t", "nat", "-L"); strings.Contains(out, "libvirt-I-") {
		t.Errorf("libvirt ebtables chains in the root namespace:\n%s", out)
	}

	// Internal snapshot with memory, change memory and disk, revert.
	hbBefore := waitHeartbeat(t, ctx, serial, 2)
	t1 := time.Now()
	virsh(t, ctx, e, "snapshot-create-as", v.name, "clean")
	t.Logf("snapshot-create (running, with memory) %.2fs", time.Since(t1).Seconds())
	if out := control(t, ctx, e, g, ip, "touch"); !strings.Contains(out, "marker=written") {
		t.Fatalf("control touch: %q", out)
	}
	if out := control(t, ctx, e, g, ip, "check"); !strings.Contains(out, "marker=present") {
		t.Fatalf("control check after touch: %q", out)
	}
	waitHeartbeat(t, ctx, serial, hbBefore+3)
	t2 := time.Now()
	virsh(t, ctx, e, "snapshot-revert", v.name, "clean")
	t.Logf("snapshot-revert (running) %.2fs", time.Since(t2).Seconds())
	// Memory state: the heartbeat counter continues from where the snapshot
	// was taken. Disk state: the marker written after it is gone.
	if out := control(t, ctx, e, g, ip, "check"); !strings.Contains(out, "marker=absent") {
		t.Errorf("disk marker after revert: %q (want absent)", out)
	}
	hbAfter := firstHeartbeatAfterRevert(t, ctx, serial, hbBefore)
	if hbAfter > hbBefore+3 {
		t.Errorf("heartbeat after revert n=%d, snapshot taken at n~%d: memory not restored", hbAfter, hbBefore)
	}

	virsh(t, ctx, e, "shutdown", v.name) // ACPI -> guest powers off
	waitState(t, ctx, e, v.name, "shut off")
	time.Sleep(300 * time.Millisecond)
	evs, _ := os.ReadFile(evLog)
	for _, want := range []string{"event 'lifecycle' for domain 'lvt-boot1': Started", "event 'lifecycle' for domain 'lvt-boot1': Stopped"} {
		if !strings.Contains(string(evs), want) {
			t.Errorf("lifecycle events lack %q:\n%s", want, evs)
		}
	}
}

var hbLine = regexp.MustCompile(`^RIG hb n=(\d+) `)

// waitHeartbeat waits until the serial log shows heartbeat n (or later) and
// returns the newest heartbeat number.
func waitHeartbeat(t testing.TB, ctx context.Context, path string, n int) int {
	t.Helper()
	for {
		last := lastHeartbeat(path)
		if last >= n {
			return last
		}
		select {
		case <-ctx.Done():
			t.Fatalf("heartbeat %d not reached (last %d)", n, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func lastHeartbeat(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	last := -1
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m := hbLine.FindStringSubmatch(strings.TrimRight(s.Text(), "\r")); m != nil {
			fmt.Sscan(m[1], &last)
		}
	}
	return last
}

// firstHeartbeatAfterRevert returns the first heartbeat printed after a
// revert. The pty log is opened with append='off' by the new QEMU process,
// so it starts over: its first heartbeat line is the restored guest's.
func firstHeartbeatAfterRevert(t testing.TB, ctx context.Context, path string, before int) int {
	t.Helper()
	line, err := testenv.WaitSerial(ctx, path, hbLine)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(hbLine.FindStringSubmatch(line)[1], &n)
	return n
}

// control sends one command to the guest's control port from the namespace.
func control(t testing.TB, ctx context.Context, e *testenv.Env, g *testenv.GuestImages, ip, cmd string) string {
	t.Helper()
	var out []byte
	var err error
	for i := 0; i < 20; i++ { // the guest may just be restarting (revert)
		out, err = e.Run(ctx, "sh", "-c", fmt.Sprintf("echo %s | %s nc -w 5 %s 7778", cmd, g.Busybox, ip))
		if err == nil && strings.Contains(string(out), "RIG-OK") {
			return string(out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("control %s: %v %q", cmd, err, out)
	return ""
}

// TestAnswerCD attaches an answer ISO (Joliet, Autounattend.xml) as a SATA
// CD-ROM: the guest reports the ComputerName and powers itself off, like
// Windows Setup finishing. The product key in the file never reaches the
// serial log.
func TestAnswerCD(t *testing.T) {
	e := testenv.Libvirt(t)
	g := testenv.Guest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool := e.PoolDir(t)

	const fakeKey = "BCDFG-HJKMP-QRTVW-XY234-6789B"
	answer := `<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="specialize">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64">
      <ComputerName>STANDIN-01</ComputerName>
      <ProductKey>` + fakeKey + `</ProductKey>
    </component>
  </settings>
</unattend>
`
	iso := answerISO(t, pool, answer)
	disk := filepath.Join(pool, "answer1.qcow2")
	if _, err := exec("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", g.Disk, disk); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(pool, "answer1.serial.log")
	v := vm{name: "lvt-answer1", accel: e.Accel, disk: disk, cdroms: []string{iso}, serialLog: serial,
		rig: []string{"rig.answercd=1", "rig.answermark=1"}}
	t0 := time.Now()
	v.start(t, ctx, e)
	line, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`^RIG answer file=`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "RIG answer file=Autounattend.xml computername=STANDIN-01"; line != want {
		t.Errorf("answer line = %q, want %q", line, want)
	}
	waitState(t, ctx, e, v.name, "shut off")
	t.Logf("answer CD: boot, report and power off in %.2fs", time.Since(t0).Seconds())
	log, _ := os.ReadFile(serial)
	if strings.Contains(string(log), fakeKey) || strings.Contains(string(log), "ProductKey") {
		t.Errorf("serial log leaks the answer file:\n%s", log)
	}
	if !strings.Contains(string(log), "RIG answer marker=written dev=sda") {
		t.Errorf("answer marker not written:\n%s", log)
	}
	// The marker is on the overlay (read with qemu-io while the VM is off).
	if got := readSector(t, disk, 57346); !strings.HasPrefix(got, "RIG-ANSWER computername=STANDIN-01\n") {
		t.Errorf("answer marker on disk = %q", got)
	}
}

// TestInstallerISO boots the stand-in installer from a SATA CD-ROM with an
// empty disk and an answer CD: it "installs" the stand-in system, reports
// the ComputerName and powers off; the disk then boots on its own.
func TestInstallerISO(t *testing.T) {
	e := testenv.Libvirt(t)
	g := testenv.Guest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pool := e.PoolDir(t)

	answer := answerISO(t, pool, "<unattend><settings><component>\n<ComputerName>LAB-PC7</ComputerName>\n</component></settings></unattend>\n")
	disk := filepath.Join(pool, "inst1.qcow2")
	if _, err := exec("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(pool, "inst1.serial.log")
	v := vm{name: "lvt-inst1", accel: e.Accel, disk: disk, cdroms: []string{g.Installer, answer}, bootCD: true, serialLog: serial}
	t0 := time.Now()
	v.start(t, ctx, e)
	if l, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`^RIG install `)); err != nil || l != "RIG install target=sda result=written" {
		t.Fatalf("install: %q %v", l, err)
	}
	if l, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`^RIG answer `)); err != nil || l != "RIG answer file=Autounattend.xml computername=LAB-PC7" {
		t.Errorf("answer: %q %v", l, err)
	}
	waitState(t, ctx, e, v.name, "shut off")
	t.Logf("install from the stand-in ISO: %.2fs", time.Since(t0).Seconds())

	// Second boot from the installed disk only.
	_, _ = e.Virsh(ctx, "undefine", v.name)
	_ = os.Remove(serial)
	v2 := vm{name: "lvt-inst1", accel: e.Accel, disk: disk, serialLog: serial, rig: []string{"rig.ip=none", "rig.halt=1"}}
	v2.start(t, ctx, e)
	if _, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`^RIG poweroff reason=rig.halt`)); err != nil {
		t.Fatalf("installed disk does not boot: %v", err)
	}
}

const reapChildEnv = "LEGACYVM_TESTENV_REAP_CHILD"

// reapChild runs in a child test binary: it starts an instance, reports it
// and waits to be killed.
func reapChild() {
	e, err := testenv.Start(context.Background(), testenv.Options{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("STARTED %s %s\n", e.NetNS, e.Dir)
	select {}
}

// TestReapKilledOwner kills (SIGKILL) a process that owns a running
// instance and checks that Reap removes the instance and only that one.
func TestReapKilledOwner(t *testing.T) {
	mine := testenv.Libvirt(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := osexec.Command(bin)
	child.Env = append(os.Environ(), reapChildEnv+"=1")
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "STARTED" {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	name, dir := f[1], f[2]
	pids, _ := exec("ip", "netns", "pids", name)
	if len(strings.Fields(string(pids))) < 2 {
		t.Errorf("child instance runs no daemons? pids %q", pids)
	}
	_ = child.Process.Signal(syscall.SIGKILL)
	_ = child.Wait()

	reaped, err := testenv.Reap(ctx)
	if err != nil {
		t.Fatalf("reap: %v", err)
	}
	if !contains(reaped, name) {
		t.Errorf("Reap = %v, want it to include %s", reaped, name)
	}
	if contains(reaped, mine.NetNS) || !hasNetNS(netnsList(t), mine.NetNS) {
		t.Fatalf("Reap removed the live instance %s", mine.NetNS)
	}
	if hasNetNS(netnsList(t), name) {
		t.Errorf("namespace %s still exists", name)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance dir %s still exists", dir)
	}
	for _, p := range strings.Fields(string(pids)) {
		if _, err := os.Stat("/proc/" + p + "/ns"); err == nil {
			if st, _ := os.ReadFile("/proc/" + p + "/stat"); len(st) > 0 && !strings.Contains(string(st), ") Z") {
				t.Errorf("process %s of the reaped instance still runs: %s", p, st)
			}
		}
	}
	if _, err := mine.Virsh(ctx, "version"); err != nil {
		t.Errorf("live instance broken by Reap: %v", err)
	}
}

// answerISO writes dir/answer.iso (ISO9660 + Joliet) holding one file,
// Autounattend.xml, with the given content.
func answerISO(t testing.TB, dir, xml string) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "Autounattend.xml"), []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "answer.iso")
	if err := testenv.WriteISO(iso, src, "ANSWER", nil); err != nil {
		t.Fatal(err)
	}
	return iso
}

// readSector reads one 512-byte sector of a (shut-off) qcow2 disk with
// qemu-io and returns its bytes up to the first NUL.
func readSector(t testing.TB, disk string, n int) string {
	t.Helper()
	out, err := exec("qemu-io", "-r", "-f", "qcow2", "-c", fmt.Sprintf("read -v %d 512", n*512), disk)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 17 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		for _, h := range f[1:17] {
			var c byte
			if _, err := fmt.Sscanf(h, "%02x", &c); err != nil {
				t.Fatalf("qemu-io output %q: %v", l, err)
			}
			b = append(b, c)
		}
	}
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDirectKernelBoot boots GuestImages.Vmlinux + Initrd (PVH direct kernel
// boot, the fastest way under TCG) through libvirt and waits for the guest
// to power itself off.
func TestDirectKernelBoot(t *testing.T) {
	e := testenv.Libvirt(t)
	g := testenv.Guest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool := e.PoolDir(t)
	serial := filepath.Join(pool, "dkb.serial.log")
	v := vm{name: "lvt-dkb", accel: e.Accel, serialLog: serial, fileLog: true}
	d := v.domain()
	d.OS.Kernel, d.OS.Initrd = g.Vmlinux, g.Initrd
	d.OS.Cmdline = g.Cmdline + " rig.ip=none rig.halt=1"
	defineXML(t, ctx, e, "define", d)
	t.Cleanup(func() { _, _ = e.Virsh(context.Background(), "undefine", "lvt-dkb") })
	t0 := time.Now()
	virsh(t, ctx, e, "start", "lvt-dkb")
	if _, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`^RIG poweroff reason=rig.halt`)); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, e, "lvt-dkb", "shut off")
	t.Logf("direct kernel boot to poweroff: %.2fs", time.Since(t0).Seconds())
}

// TestGuestBallast: rig.ballast=N dirties N MiB of the guest's RAM with
// random data and keeps it: QEMU's resident memory (which under TCG grows
// only with the guest pages touched) holds at least that much, and a saved
// memory image of the guest (no compression) is at least as large.
func TestGuestBallast(t *testing.T) {
	e := testenv.Libvirt(t)
	g := testenv.Guest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const mib = 64 // of 256 MiB (the guest sees about 205)
	pool := e.PoolDir(t)
	serial := filepath.Join(pool, "ballast.serial.log")
	v := vm{name: "lvt-ballast", accel: e.Accel, serialLog: serial, fileLog: true}
	d := v.domain()
	d.OS.Kernel, d.OS.Initrd = g.Vmlinux, g.Initrd
	d.OS.Cmdline = g.Cmdline + fmt.Sprintf(" rig.ip=none rig.listen=0 rig.control=0 rig.ballast=%d", mib)
	defineXML(t, ctx, e, "define", d)
	t.Cleanup(func() {
		_, _ = e.Virsh(context.Background(), "destroy", "lvt-ballast")
		_, _ = e.Virsh(context.Background(), "undefine", "lvt-ballast")
	})
	virsh(t, ctx, e, "start", "lvt-ballast")
	line, err := testenv.WaitSerial(ctx, serial, regexp.MustCompile(`^RIG ballast `))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, fmt.Sprintf("mib=%d result=done", mib)) {
		t.Fatalf("ballast line %q, want mib=%d result=done", line, mib)
	}
	out := virsh(t, ctx, e, "dommemstat", "lvt-ballast")
	m := regexp.MustCompile(`(?m)^rss (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dommemstat has no rss:\n%s", out)
	}
	rss, _ := strconv.ParseInt(m[1], 10, 64)
	if rss < mib*1024 {
		t.Errorf("QEMU resident memory %d KiB < ballast %d MiB", rss, mib)
	}
	img := filepath.Join(pool, "ballast.sav")
	virsh(t, ctx, e, "save", "lvt-ballast", img)
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < mib<<20 {
		t.Errorf("saved memory image %d bytes < ballast %d MiB", fi.Size(), mib)
	}
	t.Logf("ballast %d MiB: QEMU rss %d KiB, saved image %d MiB", mib, rss, fi.Size()>>20)
}
