package isolation

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The matrix profile: three network shapes at once.
//
//	shared   10.94.1.0/24  guest_to_guest = true, DNS, out tcp 8081 to the host  sh-1, sh-2
//	isolated 10.94.2.0/24  guest_to_guest = false, no DNS                        is-1, is-2
//	left     10.94.3.0/24  two networks side by side                             lf
//	right    10.94.4.0/24                                                        rt
//
// Every network allows the host in on the control port (7778). Each guest
// routes the other lab networks and the host's extra address through its
// bridge address, so that forbidden packets are really sent (isolated
// networks hand out no default route), and the host forwards IP: what stops
// them must be legacyvm's isolation.
const (
	hostExtra     = "198.51.100.7" // another host address (veth in the namespace)
	servicePort   = 8080           // a host service guests must not reach
	allowedPort   = 8081           // a host service the shared network allows
	spoofSource   = "10.94.1.9"    // an unused address of the shared subnet
	spoofMAC      = "52:54:00:de:ad:01"
	sharedBridge  = "10.94.1.1"
	isoBridge     = "10.94.2.1"
	leftBridge    = "10.94.3.1"
	rightBridge   = "10.94.4.1"
	extraRouteVia = "198.51.100.0/24@"
)

func matrixProfile(r *rig) string {
	route := func(via string) string { return "rig.route=10.94.0.0/16@" + via + "," + extraRouteVia + via }
	return r.h.HostBlock() + `
network "shared" {
  subnet         = "10.94.1.0/24"
  dhcp           = true
  dns            = true
  guest_to_guest = true` + allowCtl + `
  allow "svc" {
    direction = "out"
    to        = "host"
    protocol  = "tcp"
    port      = 8081
  }
  allow "udp-control" {
    direction = "out"
    to        = "host"
    protocol  = "udp"
    port      = 5142
  }
}
network "isolated" {
  subnet         = "10.94.2.0/24"
  dhcp           = true
  guest_to_guest = false` + allowCtl + `
}
network "left" {
  subnet = "10.94.3.0/24"
  dhcp   = true` + allowCtl + `
}
network "right" {
  subnet = "10.94.4.0/24"
  dhcp   = true` + allowCtl + `
}
` + r.vmBlock("sh", 2, "shared", route(sharedBridge)) +
		r.vmBlock("is", 2, "isolated", route(isoBridge)) +
		r.vmBlock("lf", 1, "left", route(leftBridge)) +
		r.vmBlock("rt", 1, "right", route(rightBridge))
}

// expect is one flow of the matrix: the guest from probes check, which
// must pass or fail.
type expect struct {
	from, check string
	pass        bool
	why         string
}

func TestProbeMatrix(t *testing.T) {
	r := newRig(t)
	start := time.Now()
	step := func(what string) { t.Logf("[%5.1fs] %s", time.Since(start).Seconds(), what) }
	r.enableForwarding()
	r.addHostAddress("lvtx0", hostExtra+"/24")
	r.listen(servicePort)
	r.listen(allowedPort)

	dir := writeProfile(t, "matrix", matrixProfile(r))
	r.h.MustRun(t, []string{"apply", "--auto-approve", dir})

	ip := map[string]string{
		"sh-1": r.reservation("lvm-shared", "sh-1"),
		"sh-2": r.reservation("lvm-shared", "sh-2"),
		"is-1": r.reservation("lvm-isolated", "is-1"),
		"is-2": r.reservation("lvm-isolated", "is-2"),
		"lf":   r.reservation("lvm-left", "lf"),
		"rt":   r.reservation("lvm-right", "rt"),
	}
	// DHCP works: every guest gets its reservation; the control port
	// (allowed in from the host) answers.
	guests := map[string]string{}
	for vm, a := range ip {
		guests[vm] = a
	}
	r.waitUp(guests)
	step("6 guests up with their reservations")
	// The guest agent channel is live in the guests the matrix probes.
	for _, vm := range []string{"sh-1", "is-1"} {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			res := r.h.Run(t, "exec", vm, "--agent-timeout", "5s", "--", "echo", "agent-ok")
			if res.Code == 0 && res.Stdout == "agent-ok\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the guest agent of %s does not answer:\n%s", vm, res)
			}
			time.Sleep(2 * time.Second)
		}
	}
	step("guest agent answers in sh-1 and is-1")

	// From the outside first: verify passes on the applied profile.
	doc := r.verify(dir, 0)
	if f := doc.failedChecks(); len(f) > 0 || !doc.OK {
		t.Fatalf("verify of the applied matrix profile failed: %v", f)
	}

	// Positive controls on the host side: its services answer locally on
	// every address guests will try.
	for _, a := range []string{sharedBridge, isoBridge, hostExtra} {
		if got := r.hostTCP(a, servicePort); !strings.Contains(got, "HOST-BANNER") {
			t.Fatalf("host service on %s:%d does not answer the host itself (%q): the matrix would prove nothing", a, servicePort, got)
		}
	}

	tcp := func(host string, port int) string { return fmt.Sprintf("tcp=%s:%d", host, port) }
	ping := func(host string) string { return "ping=" + host }
	matrix := []expect{
		// Shared network: guests reach each other, the host only where allowed.
		{"sh-1", ping(ip["sh-2"]), true, "guest to guest on a shared network"},
		{"sh-1", tcp(ip["sh-2"], bannerPort), true, "guest to guest on a shared network"},
		{"sh-1", "dns=sh-2@" + sharedBridge, true, "DNS on the bridge address when dns = true"},
		{"sh-1", tcp(sharedBridge, allowedPort), true, "out allow rule to the host"},
		{"sh-1", ping(sharedBridge), false, "guest to the bridge address"},
		{"sh-1", tcp(sharedBridge, servicePort), false, "guest to the bridge address, a port not allowed"},
		{"sh-1", ping(hostExtra), false, "guest to another host address"},
		{"sh-1", tcp(hostExtra, servicePort), false, "guest to another host address"},
		{"sh-1", tcp(hostExtra, allowedPort), false, "the out allow rule is for the bridge address only"},
		{"sh-1", ping(isoBridge), false, "guest to another network's bridge address"},
		{"sh-1", ping(ip["is-1"]), false, "guest to a VM on another network"},
		{"sh-2", tcp(ip["sh-1"], bannerPort), true, "guest to guest on a shared network"},
		// Port-isolated network: no guest to guest, no DNS.
		{"is-1", ping(ip["is-2"]), false, "guest to guest with guest_to_guest = false"},
		{"is-1", tcp(ip["is-2"], bannerPort), false, "guest to guest with guest_to_guest = false"},
		{"is-1", "dns=is-2@" + isoBridge, false, "DNS when dns is off"},
		{"is-1", ping(isoBridge), false, "guest to the bridge address"},
		{"is-1", tcp(isoBridge, servicePort), false, "guest to the bridge address"},
		{"is-1", ping(ip["sh-1"]), false, "guest to a VM on another network"},
		{"is-2", tcp(ip["is-1"], bannerPort), false, "guest to guest with guest_to_guest = false"},
		// Two networks side by side.
		{"lf", ping(ip["rt"]), false, "guest to a VM on the network next door"},
		{"lf", tcp(ip["rt"], bannerPort), false, "guest to a VM on the network next door"},
		{"lf", ping(rightBridge), false, "guest to the other network's bridge address"},
		{"lf", tcp(rightBridge, servicePort), false, "guest to the other network's bridge address"},
		{"lf", tcp(leftBridge, servicePort), false, "guest to its own bridge address"},
		{"lf", "dns=rt@" + leftBridge, false, "DNS when dns is off"},
		{"rt", ping(ip["lf"]), false, "guest to a VM on the network next door"},
		{"rt", tcp(ip["lf"], bannerPort), false, "guest to a VM on the network next door"},
		{"rt", ping(hostExtra), false, "guest to another host address"},
	}
	byGuest := map[string][]string{}
	for _, e := range matrix {
		byGuest[e.from] = append(byGuest[e.from], e.check)
	}
	results := map[string]map[string]probeResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for vm, checks := range byGuest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.probeErr(ip[vm], checks...)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			results[vm] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	step(fmt.Sprintf("%d probes from 6 guests", len(matrix)))
	if t.Failed() {
		t.FailNow()
	}
	for _, e := range matrix {
		got := results[e.from][e.check]
		want := map[bool]string{true: "pass", false: "fail"}[e.pass]
		if got.Result != want {
			t.Errorf("%s %s: %s, want %s (%s)\n  %s", e.from, e.check, got.Result, want, e.why, got.Line)
		}
	}

	// Spoofing on the shared network: forged frames from sh-1 to sh-2
	// between genuine ones; sh-2 counts the echo requests it receives. Only
	// the four genuine ones (two fences per attempt) may arrive.
	before := r.counter(ip["sh-2"])
	spoof := r.probe(ip["sh-1"], "spoofip="+spoofSource+"@"+ip["sh-2"], "spoofmac="+spoofMAC+"@"+ip["sh-2"])
	after := r.counter(ip["sh-2"])
	for _, p := range spoof {
		if p.field("fence") != "ok,ok" {
			t.Errorf("%s: the genuine requests around the forged ones were not answered: %s", p.Kind, p.Line)
		}
		if p.Result != "fail" {
			t.Errorf("%s: forged requests were answered: %s", p.Kind, p.Line)
		}
	}
	if got := after - before; got != 4 {
		t.Errorf("sh-2 received %d echo requests during the spoofing attempts, want the 4 genuine ones (forged source IP and MAC must be dropped)", got)
	}

	step("spoofing attempts")

	oneWayUDP(t, r, ip)
	step("one-way UDP and rogue DHCP")

	// Host to guests: the allowed port works (the control port), others
	// and ping do not.
	for vm, a := range ip {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := r.controlErr(a, "uptime"); err != nil || !strings.Contains(got, "RIG-OK uptime=") {
				t.Errorf("host -> %s:%d (allowed): %q %v", vm, controlPort, got, err)
			}
			if got := r.hostTCP(a, bannerPort); got != "" {
				t.Errorf("host -> %s:%d (not allowed) answered %q", vm, bannerPort, got)
			}
			if r.hostPing(a) {
				t.Errorf("host -> %s: ping answered (not allowed)", vm)
			}
		}()
	}
	wg.Wait()

	// Everything ran inside the namespace: the root namespace has no
	// legacyvm bridge.
	if out, err := rootCmd("ip", "-o", "link", "show"); err != nil || strings.Contains(out, "lvm-") {
		t.Errorf("root namespace: %v\n%s", err, out)
	}
	step("host -> guest flows")
	r.h.MustRun(t, []string{"destroy", "--auto-approve", dir})
	step("destroyed")
}
