package isolation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// The LAN of the doors test: a veth pair whose host end (lvd0) is in the
// harness's namespace and whose far end (lvd1) is in a namespace the test
// creates. The LAN client has two addresses: .10 is in the publish door's
// from, .20 is not. The host end has two addresses too; the LAN routes to
// .2 from .20, so each client is picked by the address it dials.
const (
	lanHost      = "192.0.2.1"  // host end, dialled by the allowed client
	lanHostAlt   = "192.0.2.2"  // host end, dialled from the refused address
	lanClient    = "192.0.2.10" // in from
	lanOutsider  = "192.0.2.20" // not in from
	doorsSubnet  = "10.97.1.0/24"
	doorsBridge  = "10.97.1.1"
	publishPort  = 17777 // relay listens here on every host address
	egressPort   = 11433 // guests reach the LAN service here on the bridge address
	lanService   = 1433  // the LAN service the egress door leads to
	metricsAddr  = "127.0.0.1:19464"
	doorsNetwork = "lvm-dnet"
)

// lan is the test's LAN namespace.
type lan struct {
	r    *rig
	name string
}

// newLAN creates the LAN namespace and the veth pair (never in the root
// namespace: lvd0 is created inside the harness's namespace and its peer is
// moved to the LAN's).
func newLAN(r *rig) *lan {
	r.t.Helper()
	l := &lan{r: r, name: fmt.Sprintf("lvlan-%d", os.Getpid())}
	if out, err := exec.Command("ip", "netns", "add", l.name).CombinedOutput(); err != nil {
		r.t.Fatalf("ip netns add %s: %v\n%s", l.name, err, out)
	}
	r.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.name).Run() })
	r.mustRun("ip", "link", "add", "lvd0", "type", "veth", "peer", "name", "lvd1")
	r.t.Cleanup(func() { _, _ = r.run(time.Minute, "ip", "link", "del", "lvd0") })
	r.mustRun("ip", "link", "set", "lvd1", "netns", l.name)
	r.mustRun("ip", "addr", "add", lanHost+"/24", "dev", "lvd0")
	r.mustRun("ip", "addr", "add", lanHostAlt+"/24", "dev", "lvd0")
	r.mustRun("ip", "link", "set", "lvd0", "up")
	l.must("ip", "link", "set", "lo", "up")
	l.must("ip", "addr", "add", lanClient+"/24", "dev", "lvd1")
	l.must("ip", "addr", "add", lanOutsider+"/24", "dev", "lvd1")
	l.must("ip", "link", "set", "lvd1", "up")
	l.must("ip", "route", "add", lanHostAlt+"/32", "dev", "lvd1", "src", lanOutsider)
	// A route to the guests' subnet through the host: only forwarding
	// could carry it, and the host must not forward.
	l.must("ip", "route", "add", doorsSubnet, "via", lanHost)
	return l
}

func (l *lan) run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.name, name}, args...)...).CombinedOutput()
	return string(out), err
}

func (l *lan) must(name string, args ...string) string {
	l.r.t.Helper()
	out, err := l.run(time.Minute, name, args...)
	if err != nil {
		l.r.t.Fatalf("in %s: %s %v: %v\n%s", l.name, name, args, err, out)
	}
	return out
}

// dial connects from the LAN to ip:port and returns what came back (nc's
// own complaints left out).
func (l *lan) dial(ip string, port int) string {
	out, _ := l.run(20*time.Second, l.r.h.Guest.Busybox, "sh", "-c", fmt.Sprintf("timeout 10 %s nc -w 3 %s %d </dev/null", l.r.h.Guest.Busybox, ip, port))
	var lines []string
	for _, s := range strings.Split(out, "\n") {
		if s = strings.TrimSpace(s); s != "" && !strings.HasPrefix(s, "nc: ") {
			lines = append(lines, s)
		}
	}
	return strings.Join(lines, "\n")
}

// serve runs "LAN-SERVICE" on port in the LAN until the test ends.
func (l *lan) serve(port int) {
	l.r.t.Helper()
	script := filepath.Join(l.r.t.TempDir(), "lan-service")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho LAN-SERVICE\n"), 0o755); err != nil {
		l.r.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", l.name, l.r.h.Guest.Busybox, "nc", "-ll", "-p", strconv.Itoa(port), "-e", script)
	if err := cmd.Start(); err != nil {
		l.r.t.Fatal(err)
	}
	l.r.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for l.dial(lanClient, port) != "LAN-SERVICE" {
		if time.Now().After(deadline) {
			l.r.t.Fatalf("LAN service on %d did not come up", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sysctl reads a value in the harness's namespace.
func (r *rig) sysctl(path string) string {
	r.t.Helper()
	return strings.TrimSpace(r.mustRun("cat", path))
}

// TestDoors: a LAN client in from reaches a guest's published port
// through the daemon's relay; a client outside from is refused and logged;
// the guest reaches a LAN service through an egress door and nothing else
// (not the LAN client, not the host, not other ports); the host never
// forwards (ip_forward and the bridge's forwarding unchanged, a LAN route
// to the guest leads nowhere); verify, status and the metrics show the
// doors; a taken listen port is a located diagnostic and nothing changes.
func TestDoors(t *testing.T) {
	r := newRig(t)
	start := time.Now()
	step := func(what string) { t.Logf("[%5.1fs] %s", time.Since(start).Seconds(), what) }
	l := newLAN(r)
	l.serve(lanService)
	runDir := t.TempDir()
	env := []string{"LEGACYVM_RUN_DIR=" + runDir}
	ns := func(args ...string) e2eutil.Result { return r.h.RunNetNS(t, env, args...) }
	mustNS := func(want int, args ...string) e2eutil.Result {
		t.Helper()
		res := ns(args...)
		if res.Code != want {
			t.Fatalf("want exit %d\n%s", want, res)
		}
		return res
	}
	ipForward := r.sysctl("/proc/sys/net/ipv4/ip_forward")

	vm := strings.Replace(r.vmBlock("dv", 1, "dnet"), "  oem_strings", fmt.Sprintf(`  publish "banner" {
    listen          = "0.0.0.0:%d"
    port            = 7777
    from            = [%q]
    max_connections = 4
  }
  oem_strings`, publishPort, lanClient+"/32"), 1)
	src := r.h.HostBlock() + fmt.Sprintf(`
network "dnet" {
  subnet = %q
  dhcp   = true`+allowCtl+`
  egress "svc" {
    to   = "%s:%d"
    port = %d
  }
}
`, doorsSubnet, lanClient, lanService, egressPort) + vm
	dir := writeProfile(t, "doors", src)

	plan := mustNS(2, "plan", dir)
	for _, want := range []string{"door     dv/publish/banner", "door     dv/egress/svc", "relay listens on 0.0.0.0:17777 for 192.0.2.10/32"} {
		if !strings.Contains(plan.Stdout, want) {
			t.Errorf("plan does not show %q:\n%s", want, plan)
		}
	}
	mustNS(0, "apply", "--auto-approve", dir)
	ip := r.reservation(doorsNetwork, "dv")
	r.waitUp(map[string]string{"dv": ip})
	bridgeForward := r.sysctl("/proc/sys/net/ipv4/conf/" + doorsNetwork + "/forwarding")
	step("applied")

	// Before the daemon runs, the doors are closed: nothing listens.
	if got := l.dial(lanHost, publishPort); got != "" {
		t.Fatalf("the published port answers without a relay: %q", got)
	}
	d := e2eutil.StartDaemon(t, r.h, env, true, "--tick", "2s", "--verify-every", "5s", "--metrics-listen", metricsAddr)
	d.WaitLog(t, -1, 2*time.Minute, map[string]string{"msg": "door open", "door": "publish/dv/banner"})
	d.WaitLog(t, -1, 2*time.Minute, map[string]string{"msg": "door open", "door": "egress/" + doorsNetwork + "/svc"})
	step("daemon relays the doors")

	// 1. The LAN client in from reaches the guest's banner port.
	if got := l.dial(lanHost, publishPort); got != "RIG-BANNER dv" {
		t.Errorf("LAN client %s through the relay got %q, want the guest's banner", lanClient, got)
	}
	d.WaitLog(t, -1, time.Minute, map[string]string{"msg": "door connection closed", "door": "publish/dv/banner"})
	// 2. A client outside from is closed at once and logged.
	if got := l.dial(lanHostAlt, publishPort); got != "" {
		t.Errorf("LAN client %s (not in from) got %q, want nothing", lanOutsider, got)
	}
	_, rec := d.WaitLog(t, -1, time.Minute, map[string]string{"msg": "door refused client", "reason": "not in from"})
	if c, _ := rec["client"].(string); !strings.HasPrefix(c, lanOutsider+":") {
		t.Errorf("refusal logged for client %v, want %s", rec["client"], lanOutsider)
	}
	// The egress door's listener is on the bridge address, which the LAN
	// can address through the host: the relay accepts only the guests.
	if got := l.dial(doorsBridge, egressPort); got != "" {
		t.Errorf("the LAN reached the egress door: %q", got)
	}
	d.WaitLog(t, -1, time.Minute, map[string]string{"msg": "door refused client", "door": "egress/" + doorsNetwork + "/svc"})
	// 3. The LAN cannot reach the guest directly: the host does not route.
	if got := l.dial(ip, 7777); got != "" {
		t.Errorf("the LAN reached the guest directly (%q): the host forwards", got)
	}
	step("publish: allowed client relayed, other refused and logged, no route")

	// 4. From the guest: the egress door leads to the LAN service; the
	// LAN client, the host's addresses and other ports stay unreachable.
	checks := map[string]string{
		fmt.Sprintf("tcp=%s:%d", doorsBridge, egressPort):   "pass",
		fmt.Sprintf("tcp=%s:%d", doorsBridge, egressPort+1): "fail",
		fmt.Sprintf("tcp=%s:%d", doorsBridge, egressPort-1): "fail",
		fmt.Sprintf("tcp=%s:%d", doorsBridge, publishPort):  "fail",
		fmt.Sprintf("tcp=%s:%d", lanClient, lanService):     "fail",
		fmt.Sprintf("tcp=%s:%d", lanHost, publishPort):      "fail",
		"ping=" + lanClient:   "fail",
		"ping=" + lanHost:     "fail",
		"ping=" + doorsBridge: "fail",
	}
	var list []string
	for c := range checks {
		list = append(list, c)
	}
	res := r.probe(ip, list...)
	for c, want := range checks {
		if got := res[c]; got.Result != want {
			t.Errorf("guest probe %s = %s, want %s (%s)", c, got.Result, want, got.Line)
		}
	}
	if b := res[fmt.Sprintf("tcp=%s:%d", doorsBridge, egressPort)].field("banner"); b != "LAN-SERVICE" {
		t.Errorf("egress door answered %q, want the LAN service's LAN-SERVICE", b)
	}
	step("egress: the LAN service and nothing else")

	// 5. Forwarding stayed as it was.
	if got := r.sysctl("/proc/sys/net/ipv4/ip_forward"); got != ipForward {
		t.Errorf("ip_forward %s -> %s", ipForward, got)
	}
	if got := r.sysctl("/proc/sys/net/ipv4/conf/" + doorsNetwork + "/forwarding"); got != bridgeForward || got != "0" {
		t.Errorf("forwarding of %s %s -> %s, want 0 throughout", doorsNetwork, bridgeForward, got)
	}

	// 6. verify (where the bridges are) knows the doors; status counts.
	v := ns("verify", "-o", "json", dir)
	if v.Code != 0 {
		t.Errorf("verify with doors:\n%s", v)
	}
	var vdoc verifyDoc
	if err := json.Unmarshal([]byte(v.Stdout), &vdoc); err != nil {
		t.Fatalf("verify -o json: %v\n%s", err, v)
	}
	for _, c := range []string{"doors", "bridge-listeners", "no-forwarding"} {
		if st, why := vdoc.checkStatus("dv", c); st != "pass" {
			t.Errorf("verify %s = %q (%s), want pass", c, st, why)
		}
	}
	time.Sleep(3 * time.Second) // one tick: the state file has the counts
	st := mustNS(0, "status", dir)
	for _, want := range []string{"publish/dv/banner", "0.0.0.0:17777", lanClient + "/32", "listening", "egress/" + doorsNetwork + "/svc"} {
		if !strings.Contains(st.Stdout, want) {
			t.Errorf("status does not show %q:\n%s", want, st)
		}
	}
	var sdoc struct {
		VMs []struct {
			Name  string `json:"vm"`
			Doors []struct {
				Key         string `json:"key"`
				Relay       string `json:"relay"`
				Connections int    `json:"connections"`
				Refused     int    `json:"refused"`
			} `json:"doors"`
		} `json:"vms"`
	}
	sj := mustNS(0, "status", "-o", "json", dir)
	if err := json.Unmarshal([]byte(sj.Stdout), &sdoc); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, sj)
	}
	counted := false
	for _, vmst := range sdoc.VMs {
		for _, dd := range vmst.Doors {
			if dd.Key == "publish/dv/banner" {
				counted = dd.Relay == "listening" && dd.Connections >= 1 && dd.Refused >= 1
			}
		}
	}
	if !counted {
		t.Errorf("status -o json does not count the door's connections:\n%s", sj.Stdout)
	}
	step("verify and status")

	// 7. Metrics: a plain HTTP GET (busybox wget in the namespace).
	out, err := r.run(30*time.Second, r.h.Guest.Busybox, "wget", "-q", "-O", "-", "http://"+metricsAddr+"/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v\n%s", err, out)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader([]byte(out)))
	if err != nil {
		t.Fatalf("metrics are not the Prometheus text format: %v\n%s", err, out)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.GetGauge() != nil:
					return m.GetGauge().GetValue(), true
				case m.GetCounter() != nil:
					return m.GetCounter().GetValue(), true
				}
			}
		}
		return 0, false
	}
	door := map[string]string{"door": "publish/dv/banner"}
	for name, check := range map[string]func(float64) bool{
		"legacyvm_door_connections_total":         func(v float64) bool { return v >= 1 },
		"legacyvm_door_connections_refused_total": func(v float64) bool { return v >= 1 },
		"legacyvm_door_connections_active":        func(v float64) bool { return v == 0 },
		"legacyvm_door_listening":                 func(v float64) bool { return v == 1 },
	} {
		if v, ok := value(name, door); !ok || !check(v) {
			t.Errorf("%s{door=publish/dv/banner} = %v (present %v)", name, v, ok)
		}
	}
	for name, labels := range map[string]map[string]string{
		"legacyvm_vm_isolated":                   {"vm": "dv"},
		"legacyvm_vm_snapshots":                  {"vm": "dv"},
		"legacyvm_verify_last_ok":                nil,
		"legacyvm_verify_last_timestamp_seconds": nil,
	} {
		if _, ok := value(name, labels); !ok {
			t.Errorf("metrics lack %s%v:\n%s", name, labels, out)
		}
	}
	if v, _ := value("legacyvm_vm_isolated", map[string]string{"vm": "dv"}); v != 1 {
		t.Errorf("legacyvm_vm_isolated{vm=dv} = %v, want 1", v)
	}
	step("metrics")

	// 8. Bad input: a listen port something else holds is a located
	// diagnostic at plan time, and apply changes nothing. The relay's own
	// port is not reported.
	r.listen(17900)
	taken := strings.Replace(src, "0.0.0.0:17777", "0.0.0.0:17900", 1)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(taken), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := mustNS(1, "plan", dir)
	if !strings.Contains(bad.Stderr, "Listen port already taken") || !strings.Contains(bad.Stderr, "main.hcl line") {
		t.Errorf("plan with a taken port:\n%s", bad)
	}
	mustNS(1, "apply", "--auto-approve", dir)
	if dom, err := r.h.HV.GetDomain(context.Background(), "dv"); err != nil || dom.Metadata.Doors[0].Listen != "0.0.0.0:17777" {
		t.Errorf("a refused apply changed the doors: %+v, %v", dom.Metadata, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	mustNS(0, "plan", dir)
	step("taken port refused, relay's own port accepted")

	d.Stop(t)
	// With the daemon gone, the doors are closed again.
	if got := l.dial(lanHost, publishPort); got != "" {
		t.Errorf("the published port answers after the daemon stopped: %q", got)
	}
	mustNS(0, "destroy", "--auto-approve", dir)

	// A publish door without from: a located diagnostic, nothing applied.
	noFrom := strings.Replace(src, fmt.Sprintf("    from            = [%q]\n", lanClient+"/32"), "", 1)
	if noFrom == src {
		t.Fatal("the profile has no from line to remove")
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(noFrom), 0o644); err != nil {
		t.Fatal(err)
	}
	res2 := mustNS(1, "apply", "--auto-approve", dir)
	if !strings.Contains(res2.Stderr, "Missing required argument") || !strings.Contains(res2.Stderr, "main.hcl line") || !strings.Contains(res2.Stderr, "implicit \"everyone\"") {
		t.Errorf("apply without from:\n%s", res2)
	}
	if _, err := r.h.HV.GetDomain(context.Background(), "dv"); err == nil {
		t.Errorf("apply with a bad door created the VM")
	}
	if _, err := r.h.HV.GetNetwork(context.Background(), doorsNetwork); err == nil {
		t.Errorf("apply with a bad door created the network")
	}
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, lp := range m.GetLabel() {
		got[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
