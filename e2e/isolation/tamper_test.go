package isolation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

const (
	tamperBridge = "10.95.1.1"
	tamperSpoof  = "10.95.1.9"
)

// virsh runs virsh against the harness's libvirtd.
func (r *rig) virsh(args ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.h.Env.Virsh(ctx, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return string(out)
}

// redefine edits an object's XML the way someone with virsh would: dump,
// edit, define again. kind is "" (domain), "net" or "nwfilter".
func (r *rig) redefine(kind, name string, edit func(string) string) {
	r.t.Helper()
	dump := []string{"dumpxml", "--inactive", name}
	define := "define"
	switch kind {
	case "net":
		dump, define = []string{"net-dumpxml", "--inactive", name}, "net-define"
	case "nwfilter":
		dump, define = []string{"nwfilter-dumpxml", name}, "nwfilter-define"
	}
	doc := r.virsh(dump...)
	changed := edit(doc)
	if changed == doc {
		r.t.Fatalf("edit of %s %s changed nothing:\n%s", kind, name, doc)
	}
	f := filepath.Join(r.t.TempDir(), name+".xml")
	if err := os.WriteFile(f, []byte(changed), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.virsh(define, f)
}

// wantVerifyFail runs verify and wants exactly the failures listed
// ("vm/check"), each reason containing its text.
func (r *rig) wantVerifyFail(dir string, want map[string]string) verifyDoc {
	r.t.Helper()
	doc := r.verify(dir, 1)
	got := doc.failedChecks()
	if len(got) != len(want) {
		r.t.Errorf("verify failed %v, want %d failures %v", got, len(want), want)
	}
	for key, text := range want {
		vm, check, _ := strings.Cut(key, "/")
		st, why := doc.checkStatus(vm, check)
		if st != "fail" || !strings.Contains(why, text) {
			r.t.Errorf("verify %s = %s (%s), want fail mentioning %q", key, st, why, text)
		}
	}
	return doc
}

// wantPlanUpdate runs plan and wants exit 2 with every text in its output.
func (r *rig) wantPlanUpdate(dir string, texts ...string) {
	r.t.Helper()
	res := r.h.MustRun(r.t, []string{"plan", dir}, 2)
	for _, s := range texts {
		if !strings.Contains(res.Stdout, s) {
			r.t.Errorf("plan does not show %q:\n%s", s, res)
		}
	}
}

// exposure probes from a guest: whether it reaches the host's bridge
// address, and how many of its forged echo requests reached the peer.
func (r *rig) exposure(from, peer string) (reachesHost bool, forged int) {
	r.t.Helper()
	before := r.counter(peer)
	res := r.probe(from, "ping="+tamperBridge, "spoofip="+tamperSpoof+"@"+peer)
	after := r.counter(peer)
	sp := res["spoofip="+tamperSpoof+"@"+peer]
	if sp.field("fence") != "ok,ok" {
		r.t.Fatalf("genuine requests around the forged ones were not answered: %s", sp.Line)
	}
	return res["ping="+tamperBridge].Result == "pass", after - before - 2
}

// TestTamperDetectionAndRepair: each change someone makes by hand is caught
// by verify (exit 1, the check named), shown by plan as an update (exit 2)
// and repaired by apply, after which verify passes again.
func TestTamperDetectionAndRepair(t *testing.T) {
	r := newRig(t)
	start := time.Now()
	step := func(what string) { t.Logf("[%5.1fs] %s", time.Since(start).Seconds(), what) }
	dir := writeProfile(t, "tamper", r.h.HostBlock()+`
network "tnet" {
  subnet = "10.95.1.0/24"
  dhcp   = true`+allowCtl+`
}
`+r.vmBlock("tv", 2, "tnet"))
	r.h.MustRun(t, []string{"apply", "--auto-approve", dir})
	ip1, ip2 := r.reservation("lvm-tnet", "tv-1"), r.reservation("lvm-tnet", "tv-2")
	r.waitUp(map[string]string{"tv-1": ip1, "tv-2": ip2})
	r.verify(dir, 0)
	if host, forged := r.exposure(ip1, ip2); host || forged != 0 {
		t.Fatalf("before tampering: reaches host %v, %d forged requests arrived", host, forged)
	}
	step("applied, verified, probed")

	// 1. A filter reference removed from a domain's definition: detected,
	// exposed once restarted like that, repaired by apply without a
	// restart.
	filterRef := regexp.MustCompile(`(?s)\s*<filterref .*?</filterref>`)
	r.redefine("", "tv-1", func(s string) string { return filterRef.ReplaceAllString(s, "") })
	r.wantVerifyFail(dir, map[string]string{"tv-1/filter-reference": "no traffic filter"})
	r.wantPlanUpdate(dir, "tv-1", "no traffic filter (removed outside legacyvm)")
	// Restarted like this, the VM really is exposed, and verify sees it
	// running unfiltered.
	if err := r.h.HV.DestroyDomain(context.Background(), "tv-1"); err != nil {
		t.Fatal(err)
	}
	r.h.MustRun(t, []string{"start", "tv-1"})
	r.waitUp(map[string]string{"tv-1": ip1})
	r.wantVerifyFail(dir, map[string]string{
		"tv-1/filter-reference": "no traffic filter",
		"tv-1/filter-binding":   "no traffic filter bound",
	})
	if host, forged := r.exposure(ip1, ip2); !host || forged != 3 {
		t.Errorf("unfiltered guest: reaches host %v, %d of 3 forged requests arrived; want both exposures (else the probes prove nothing)", host, forged)
	}
	step("filter reference removed: exposed and detected")
	id := r.domID("tv-1")
	res := r.h.MustRun(t, []string{"apply", "--auto-approve", dir})
	if strings.Contains(res.Stderr, "legacyvm stop tv-1") {
		t.Errorf("apply still asks for a restart:\n%s", res)
	}
	r.verify(dir, 0)
	if host, forged := r.exposure(ip1, ip2); host || forged != 0 {
		t.Errorf("after apply: reaches host %v, %d forged requests arrived", host, forged)
	}
	if got := r.domID("tv-1"); got != id {
		t.Errorf("apply restarted tv-1 (domain id %s -> %s); the filter must be bound live", id, got)
	}
	step("filter reference repaired by apply, live")

	// 1b. The filter removed from the running interface only (virsh
	// update-device --live): the definition is intact, the VM runs
	// unfiltered. apply binds it again, live.
	r.removeLiveFilter("tv-1")
	r.wantVerifyFail(dir, map[string]string{"tv-1/filter-binding": "no traffic filter bound"})
	r.wantPlanUpdate(dir, "tv-1", "no traffic filter bound (removed outside legacyvm): apply binds lvm-tnet again, live")
	if host, forged := r.exposure(ip1, ip2); !host || forged != 3 {
		t.Errorf("live-unfiltered guest: reaches host %v, %d of 3 forged requests arrived; want both exposures", host, forged)
	}
	r.h.MustRun(t, []string{"apply", "--auto-approve", dir})
	r.verify(dir, 0)
	if host, forged := r.exposure(ip1, ip2); host || forged != 0 {
		t.Errorf("after apply: reaches host %v, %d forged requests arrived", host, forged)
	}
	if got := r.domID("tv-1"); got != id {
		t.Errorf("apply restarted tv-1 (domain id %s -> %s)", id, got)
	}
	step("live removal repaired by apply, live")

	// 1c. The same with the daemon running: it verifies every
	// --verify-every and binds the filter again without any command.
	d := e2eutil.StartDaemon(t, r.h, []string{"LEGACYVM_RUN_DIR=" + t.TempDir()}, true, "--verify-every", "3s")
	d.WaitLog(t, -1, 2*time.Minute, map[string]string{"msg": "isolation verified", "ok": "true"})
	r.removeLiveFilter("tv-1")
	d.WaitLog(t, -1, 2*time.Minute, map[string]string{"msg": "traffic filter was not bound: bound it again, live", "vm": "tv-1"})
	r.verify(dir, 0)
	if host, forged := r.exposure(ip1, ip2); host || forged != 0 {
		t.Errorf("after the daemon's repair: reaches host %v, %d forged requests arrived", host, forged)
	}
	if got := r.domID("tv-1"); got != id {
		t.Errorf("the daemon restarted tv-1 (domain id %s -> %s)", id, got)
	}
	d.Stop(t)
	step("filter reference repaired")

	// 1d. The filters of an earlier legacyvm: the root filter referencing
	// libvirt's clean-traffic and the guard, the guard in its own
	// ipv4-lvguard chain. verify and plan see the difference; apply
	// redefines both in place and libvirt re-instantiates the running
	// NICs (no restart).
	prio := regexp.MustCompile(`priority='(-?\d+)'`)
	r.redefine("nwfilter", "lvm-tnet-guard", func(s string) string {
		s = prio.ReplaceAllStringFunc(s, func(m string) string {
			var n int
			fmt.Sscanf(m, "priority='%d'", &n)
			return fmt.Sprintf("priority='%d'", n+1000)
		})
		return strings.Replace(s, "chain='root'", "chain='ipv4-lvguard' priority='-705'", 1)
	})
	rules := regexp.MustCompile(`(?s)<rule .*</rule>|<rule [^>]*/>`)
	r.redefine("nwfilter", "lvm-tnet", func(s string) string {
		s = rules.ReplaceAllString(s, "")
		return strings.Replace(s, "<filterref filter='lvm-tnet-guard'", "<filterref filter='clean-traffic'/>\n  <filterref filter='lvm-tnet-guard'", 1)
	})
	if doc := r.virsh("nwfilter-dumpxml", "lvm-tnet"); !strings.Contains(doc, "clean-traffic") || strings.Contains(doc, "<rule") {
		t.Fatalf("earlier layout not in place:\n%s", doc)
	}
	r.wantVerifyFail(dir, map[string]string{
		"tv-1/filter-rules": "differs from the profile",
		"tv-2/filter-rules": "differs from the profile",
	})
	r.wantPlanUpdate(dir, "chain ipv4-lvguard differs from root")
	r.h.MustRun(t, []string{"apply", "--auto-approve", dir})
	r.verify(dir, 0)
	if doc := r.virsh("nwfilter-dumpxml", "lvm-tnet"); strings.Contains(doc, "clean-traffic") {
		t.Errorf("apply left the earlier layout:\n%s", doc)
	}
	if host, forged := r.exposure(ip1, ip2); host || forged != 0 {
		t.Errorf("after redefining the filters: reaches host %v, %d forged requests arrived", host, forged)
	}
	if got := r.domID("tv-1"); got != id {
		t.Errorf("apply restarted tv-1 (domain id %s -> %s); filters are redefined live", id, got)
	}
	step("earlier filter layout redefined by apply, live")

	// 2. A <forward mode='nat'/> added to the network.
	r.redefine("net", "lvm-tnet", func(s string) string {
		return strings.Replace(s, "<bridge ", "<forward mode='nat'/>\n  <bridge ", 1)
	})
	r.wantVerifyFail(dir, map[string]string{
		"tv-1/no-forward": "<forward mode='nat'>",
		"tv-2/no-forward": "<forward mode='nat'>",
	})
	r.wantPlanUpdate(dir, "lvm-tnet", `has <forward mode="nat">`)
	r.h.MustRun(t, []string{"apply", "--auto-approve", dir})
	r.verify(dir, 0)
	step("forward mode repaired")

	// 3. A rule of the guard edited: the drop of everything sent to the
	// host's MAC becomes a return.
	r.redefine("nwfilter", "lvm-tnet-guard", func(s string) string {
		return strings.Replace(s, "action='drop' direction='out' priority='-300'", "action='return' direction='out' priority='-300'", 1)
	})
	r.wantVerifyFail(dir, map[string]string{
		"tv-1/filter-rules": "lvm-tnet differs from the profile",
		"tv-2/filter-rules": "lvm-tnet differs from the profile",
	})
	r.wantPlanUpdate(dir, "lvm-tnet", "rules differ from the profile")
	r.h.MustRun(t, []string{"apply", "--auto-approve", dir})
	r.verify(dir, 0)
	if host, forged := r.exposure(ip1, ip2); host || forged != 0 {
		t.Errorf("after the guard's repair: reaches host %v, %d forged requests arrived", host, forged)
	}
	step("guard rule repaired")

	// 4. An uplink enslaved to the bridge: verify names it and the fix
	// (apply cannot undo host plumbing; plan has nothing to change).
	r.mustRun("ip", "link", "add", "lvup0", "type", "veth", "peer", "name", "lvup1")
	t.Cleanup(func() { _, _ = r.run(time.Minute, "ip", "link", "del", "lvup0") })
	r.mustRun("ip", "link", "set", "lvup0", "master", "lvm-tnet")
	doc := r.wantVerifyFail(dir, map[string]string{
		"tv-1/no-uplink": "lvup0",
		"tv-2/no-uplink": "lvup0",
	})
	if _, why := doc.checkStatus("tv-1", "no-uplink"); !strings.Contains(why, "ip link set lvup0 nomaster") {
		t.Errorf("no fix for the uplink: %s", why)
	}
	r.h.MustRun(t, []string{"plan", dir}, 0)
	r.mustRun("ip", "link", "set", "lvup0", "nomaster")
	r.verify(dir, 0)
	step("uplink detected")

	// verify --all sees the same VMs without the profile.
	all := r.h.MustRun(t, []string{"verify", "--all"})
	for _, want := range []string{"tv-1 (running, lvm-tnet, profile tamper)", "pass  filter-binding", "OK: 2 VMs isolated"} {
		if !strings.Contains(all.Stdout, want) {
			t.Errorf("verify --all does not show %q:\n%s", want, all)
		}
	}

	// A VM added to the network while the others run gets its reserved
	// address at once (the address its filter expects), and verify passes.
	main := filepath.Join(dir, "main.hcl")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, []byte(strings.Replace(string(src), "count  = 2", "count  = 3", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	res = r.h.MustRun(t, []string{"apply", "--auto-approve", dir})
	if strings.Contains(res.Stderr, "keep the old network settings") {
		t.Errorf("adding a VM left the network stale:\n%s", res)
	}
	ip3 := r.reservation("lvm-tnet", "tv-3")
	r.waitUp(map[string]string{"tv-3": ip3})
	r.verify(dir, 0)
	if host, forged := r.exposure(ip3, ip1); host || forged != 0 {
		t.Errorf("added VM: reaches host %v, %d forged requests arrived", host, forged)
	}
	step("VM added to the running network")

	r.h.MustRun(t, []string{"destroy", "--auto-approve", dir})
	step("destroyed")
}

// TestHostConditionsFlagged: doctor and verify flag a host where rp_filter
// is 0 and bridge-nf-call-iptables is off (a fake host root), each with its
// fix; warnings fail verify only with --strict.
func TestHostConditionsFlagged(t *testing.T) {
	r := newRig(t)
	root := t.TempDir()
	for path, v := range map[string]string{
		"proc/sys/net/ipv4/conf/all/rp_filter":        "0",
		"proc/sys/net/ipv4/conf/default/rp_filter":    "0",
		"proc/sys/net/bridge/bridge-nf-call-iptables": "0",
	} {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"LEGACYVM_HOST_ROOT=" + root}
	dir := writeProfile(t, "hostcond", r.h.HostBlock()+`
network "hc" {
  subnet = "10.96.1.0/24"
  dhcp   = true
}
`)
	r.h.MustRun(t, []string{"apply", "--auto-approve", dir})

	fixes := map[string]string{
		"rp_filter":               "sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2",
		"bridge-nf-call-iptables": "sysctl -w net.bridge.bridge-nf-call-iptables=1",
	}
	doc := r.verify(dir, 0, env...)
	for check, fix := range fixes {
		found := false
		for _, h := range doc.Hosts {
			for _, f := range h.HostChecks {
				if f.Check == check {
					found = true
					if f.Status != "warn" || !strings.Contains(f.Fix, fix) {
						t.Errorf("verify %s: %s %q fix %q, want a warning with fix %q", check, f.Status, f.Message, f.Fix, fix)
					}
				}
			}
		}
		if !found {
			t.Errorf("verify reports no %s finding", check)
		}
	}
	strict := r.h.RunEnv(t, env, "verify", "--strict", dir)
	if strict.Code != 1 || !strings.Contains(strict.Stdout, "WARN  rp_filter") || !strings.Contains(strict.Stdout, "fix: "+fixes["rp_filter"]) {
		t.Errorf("verify --strict: want exit 1 with the rp_filter warning and its fix\n%s", strict)
	}
	doctor := r.h.RunEnv(t, env, "doctor")
	for check, fix := range fixes {
		if !regexp.MustCompile(`(?m)^WARN  `+regexp.QuoteMeta(check)+` `).MatchString(doctor.Stdout) || !strings.Contains(doctor.Stdout, "fix: "+fix) {
			t.Errorf("doctor does not flag %s with its fix:\n%s", check, doctor)
		}
	}
	// A host with both set right passes the same checks.
	good := t.TempDir()
	for path, v := range map[string]string{
		"proc/sys/net/ipv4/conf/all/rp_filter":        "2",
		"proc/sys/net/ipv4/conf/default/rp_filter":    "2",
		"proc/sys/net/bridge/bridge-nf-call-iptables": "1",
	} {
		full := filepath.Join(good, path)
		_ = os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := r.h.RunEnv(t, []string{"LEGACYVM_HOST_ROOT=" + good}, "verify", dir)
	for check := range fixes {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^  pass  %s `, regexp.QuoteMeta(check))).MatchString(out.Stdout) {
			t.Errorf("verify on a good host: %s not passed\n%s", check, out)
		}
	}
	r.h.MustRun(t, []string{"destroy", "--auto-approve", dir})
}

// domID is the running domain's id (it changes when the domain restarts).
func (r *rig) domID(vm string) string {
	r.t.Helper()
	return strings.TrimSpace(r.virsh("domid", vm))
}

// removeLiveFilter removes the filter reference from the running domain's
// interface only, as someone with virsh update-device --live would.
func (r *rig) removeLiveFilter(vm string) {
	r.t.Helper()
	live := r.virsh("dumpxml", vm)
	nic := regexp.MustCompile(`(?s)<interface type='network'>.*?</interface>`).FindString(live)
	if nic == "" || !strings.Contains(nic, "<filterref") {
		r.t.Fatalf("no filtered interface in the live XML of %s:\n%s", vm, live)
	}
	stripped := regexp.MustCompile(`(?s)\s*<filterref .*?</filterref>`).ReplaceAllString(nic, "")
	f := filepath.Join(r.t.TempDir(), vm+"-nic.xml")
	if err := os.WriteFile(f, []byte(stripped), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.virsh("update-device", vm, f, "--live")
}
