package isolation

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/testenv"
)

// controlPort is the stand-in guest's control port; every test network
// allows it from the host ("in"), so the host can drive probes.
const controlPort = 7778

// bannerPort is the guest's banner port: never allowed from the host.
const bannerPort = 7777

// allowCtl is the allow block every test network carries.
const allowCtl = `
  allow "ctl" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 7778
  }`

// rig drives guests and the host side of their bridges. Every command runs
// inside the harness's network namespace.
type rig struct {
	t *testing.T
	h *e2eutil.Host
}

func newRig(t *testing.T) *rig {
	return &rig{t: t, h: e2eutil.NewHost(t)}
}

// run runs a command in the harness's namespace; the error includes its
// output.
func (r *rig) run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := r.h.Env.Run(ctx, name, args...)
	return string(out), err
}

// mustRun runs a command in the namespace and fails the test if it fails.
func (r *rig) mustRun(name string, args ...string) string {
	r.t.Helper()
	out, err := r.run(time.Minute, name, args...)
	if err != nil {
		r.t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// bb runs busybox (the host need not have nc or ping) in the namespace.
func (r *rig) bb(timeout time.Duration, args ...string) (string, error) {
	return r.run(timeout, r.h.Guest.Busybox, args...)
}

// send sends one line to ip:port from the host side and returns the reply.
func (r *rig) send(ip string, port int, line string, timeout time.Duration) (string, error) {
	script := fmt.Sprintf("echo %q | timeout %d %s nc -w 3 %s %d", line, int(timeout.Seconds()), r.h.Guest.Busybox, ip, port)
	return r.run(timeout+5*time.Second, "sh", "-c", script)
}

// control sends a command to a guest's control port and returns its reply
// (RIG-OK ... lines). The port answers as soon as the guest reported its
// address; a refused connection right after boot is retried.
func (r *rig) control(ip, cmd string) string {
	r.t.Helper()
	out, err := r.controlErr(ip, cmd)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// controlErr is control for goroutines: it returns the error.
func (r *rig) controlErr(ip, cmd string) (string, error) {
	var out string
	var err error
	for try := 0; try < 20; try++ {
		out, err = r.send(ip, controlPort, cmd, 90*time.Second)
		if err == nil && strings.Contains(out, "RIG-OK") {
			return out, nil
		}
		time.Sleep(250 * time.Millisecond) // the guest's listener starts just after its "RIG net" line
	}
	return "", fmt.Errorf("control %s %q: %v\n%s", ip, cmd, err, out)
}

// probeResult is one "RIG check round=probe" line.
type probeResult struct {
	Kind, Target, Result string
	Line                 string
}

func (p probeResult) field(name string) string {
	m := regexp.MustCompile(`\b` + name + `=(\S*)`).FindStringSubmatch(p.Line)
	if m == nil {
		return ""
	}
	return m[1]
}

var checkLine = regexp.MustCompile(`RIG check round=probe kind=(\S+) target=(\S+) result=(\S+)`)

// probe makes the guest at ip run checks ("ping=IP", "tcp=IP:PORT", ...)
// and returns the results by "kind=target".
func (r *rig) probe(ip string, checks ...string) map[string]probeResult {
	r.t.Helper()
	res, err := r.probeErr(ip, checks...)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// probeErr is probe for goroutines: it returns the error.
func (r *rig) probeErr(ip string, checks ...string) (map[string]probeResult, error) {
	out, err := r.controlErr(ip, "probe "+strings.Join(checks, " "))
	if err != nil {
		return nil, err
	}
	res := map[string]probeResult{}
	for _, line := range strings.Split(out, "\n") {
		if m := checkLine.FindStringSubmatch(line); m != nil {
			res[m[1]+"="+m[2]] = probeResult{Kind: m[1], Target: m[2], Result: m[3], Line: line}
		}
	}
	if len(res) != len(checks) {
		return nil, fmt.Errorf("probe %s: %d results for %d checks:\n%s", ip, len(res), len(checks), out)
	}
	return res, nil
}

// counter is the number of ICMP echo requests the guest at ip received.
func (r *rig) counter(ip string) int {
	r.t.Helper()
	out := r.control(ip, "counters")
	m := regexp.MustCompile(`icmp_in_echos=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		r.t.Fatalf("counters of %s: %q", ip, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// hostPing reports whether ip answers a ping from the host side.
func (r *rig) hostPing(ip string) bool {
	_, err := r.bb(10*time.Second, "ping", "-c", "2", "-w", "3", "-W", "1", "-q", ip)
	return err == nil
}

// hostTCP connects from the host side to ip:port and returns what the
// server said ("" when the connection failed or nothing came back; nc's
// own complaints are left out).
func (r *rig) hostTCP(ip string, port int) string {
	out, _ := r.send(ip, port, "", 8*time.Second)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "nc: ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// listen serves "HOST-BANNER <port>" on every address of the namespace
// until the test ends.
func (r *rig) listen(port int) {
	r.t.Helper()
	script := filepath.Join(r.t.TempDir(), fmt.Sprintf("banner-%d", port))
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\necho HOST-BANNER %d\n", port)), 0o755); err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", r.h.Env.NetNS, r.h.Guest.Busybox, "nc", "-ll", "-p", strconv.Itoa(port), "-e", script)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// The listener is up when the host itself gets the banner.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.hostTCP("127.0.0.1", port), "HOST-BANNER") {
		if time.Now().After(deadline) {
			r.t.Fatalf("host listener on port %d did not come up", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addHostAddress gives the host side another address, on one end of a veth
// pair inside the namespace (the kernel has no dummy interfaces here).
func (r *rig) addHostAddress(name, cidr string) {
	r.t.Helper()
	r.mustRun("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
	r.t.Cleanup(func() { _, _ = r.run(time.Minute, "ip", "link", "del", name) })
	r.mustRun("ip", "addr", "add", cidr, "dev", name)
	r.mustRun("ip", "link", "set", name, "up")
	r.mustRun("ip", "link", "set", name+"p", "up")
}

// enableForwarding turns IP forwarding on in the namespace for the test, so
// that isolation cannot come from a host that does not route.
func (r *rig) enableForwarding() {
	r.t.Helper()
	old := strings.TrimSpace(r.mustRun("cat", "/proc/sys/net/ipv4/ip_forward"))
	r.mustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	r.t.Cleanup(func() { _, _ = r.run(time.Minute, "sysctl", "-qw", "net.ipv4.ip_forward="+old) })
}

// reservation is the address legacyvm reserved for vm on network (the
// libvirt network name).
func (r *rig) reservation(network, vm string) string {
	r.t.Helper()
	n, err := r.h.HV.GetNetwork(context.Background(), network)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, h := range n.DHCPHosts {
		if h.Name == vm {
			return h.IP.String()
		}
	}
	r.t.Fatalf("no reservation for %s on %s: %+v", vm, network, n.DHCPHosts)
	return ""
}

// waitUp waits until each guest got its reserved address by DHCP and its
// control port answers.
func (r *rig) waitUp(guests map[string]string) {
	r.t.Helper()
	var wg sync.WaitGroup
	for vm, ip := range guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			re := regexp.MustCompile(`RIG net .*ip=` + regexp.QuoteMeta(ip) + `/\d+ via=dhcp`)
			if _, err := testenv.WaitSerial(ctx, r.h.SerialLog(vm), re); err != nil {
				b, _ := os.ReadFile(r.h.SerialLog(vm))
				r.t.Errorf("%s did not get %s by DHCP: %v\nserial log:\n%s", vm, ip, err, b)
			}
		}()
	}
	wg.Wait()
	if r.t.Failed() {
		r.t.FailNow()
	}
	for _, ip := range guests {
		r.control(ip, "uptime")
	}
}

// verifyDoc is `legacyvm verify -o json` (docs/json.md).
type verifyDoc struct {
	FormatVersion int  `json:"format_version"`
	OK            bool `json:"ok"`
	Hosts         []struct {
		OK  bool `json:"ok"`
		VMs []struct {
			Name   string `json:"vm"`
			OK     bool   `json:"ok"`
			Checks []struct {
				Check  string `json:"check"`
				Status string `json:"status"`
				Reason string `json:"message"`
				Fix    string `json:"fix"`
			} `json:"checks"`
		} `json:"vms"`
		HostChecks []struct {
			Check   string `json:"check"`
			Status  string `json:"status"`
			Message string `json:"message"`
			Fix     string `json:"fix"`
		} `json:"host_checks"`
	} `json:"hosts"`
}

// verify runs `legacyvm verify -o json` and expects exit code want.
func (r *rig) verify(dir string, want int, extraEnv ...string) verifyDoc {
	r.t.Helper()
	res := r.h.RunEnv(r.t, extraEnv, "verify", "-o", "json", dir)
	if res.Code != want {
		r.t.Fatalf("verify: exit %d, want %d\n%s", res.Code, want, res)
	}
	var doc verifyDoc
	if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil || doc.FormatVersion != 1 {
		r.t.Fatalf("verify -o json: %v (format_version %d)\n%s", err, doc.FormatVersion, res)
	}
	return doc
}

// checkStatus finds a VM check in a verify document.
func (d verifyDoc) checkStatus(vm, check string) (status, reason string) {
	for _, h := range d.Hosts {
		for _, v := range h.VMs {
			if v.Name != vm {
				continue
			}
			for _, c := range v.Checks {
				if c.Check == check {
					return c.Status, c.Reason + " | fix: " + c.Fix
				}
			}
		}
	}
	return "", ""
}

// failedChecks lists "vm/check" of every failed VM check.
func (d verifyDoc) failedChecks() []string {
	var out []string
	for _, h := range d.Hosts {
		for _, v := range h.VMs {
			for _, c := range v.Checks {
				if c.Status == "fail" {
					out = append(out, v.Name+"/"+c.Check)
				}
			}
		}
	}
	return out
}

// vmBlock is a stand-in VM on network with extra OEM strings. Every VM has
// the guest agent channel: the matrix proves it opens no network flow.
func (r *rig) vmBlock(name string, count int, network string, oem ...string) string {
	quoted := make([]string, len(oem))
	for i, o := range oem {
		quoted[i] = strconv.Quote(o)
	}
	c := ""
	if count > 1 {
		c = fmt.Sprintf("  count  = %d\n", count)
	}
	return fmt.Sprintf(`
vm %q {
%s  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image   = %q
    prepare = "none"
  }
  network     = network.%s
  guest_agent = true
  oem_strings = [%s]
}
`, name, c, r.h.Golden, network, strings.Join(quoted, ", "))
}

// writeProfile writes a one-file profile into a directory named name (the
// profile name).
func writeProfile(t *testing.T, name, src string) string {
	t.Helper()
	return e2eutil.Profile(t, name, map[string]string{"main.hcl": src})
}

// rootCmd runs a read-only command in the root namespace (assertions that
// nothing leaked there).
func rootCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
