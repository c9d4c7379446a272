package provision

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// TestGuestAddress: a stand-in guest booted by apply reaches userspace and
// gets, by DHCP on its isolated network, exactly the address the network
// reserves for its MAC; status reports that address (from the lease).
func TestGuestAddress(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	dir := e2eutil.Profile(t, "adr", map[string]string{"main.hcl": h.HostBlock() + `
network "adr" {
  subnet = "10.91.0.0/24"
  dhcp   = true
}
vm "adr" {
  count  = 2
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image   = "` + h.Golden + `"
    prepare = "none"
  }
  network = network.adr
}
`})
	names := []string{"adr-1", "adr-2"}
	serial := map[string]*serialWatch{}
	for _, n := range names {
		serial[n] = watchSerial(t, h.SerialLog(n))
	}
	h.MustRun(t, []string{"plan", dir}, 2)
	r := h.MustRun(t, []string{"apply", "--auto-approve", dir})
	for _, n := range names {
		if !strings.Contains(r.Stderr, n+": done in ") {
			t.Errorf("no progress line saying %s is done:\n%s", n, r)
		}
	}

	res := checkNetwork(t, h, networkWant{name: "adr", profile: "adr", subnet: "10.91.0.0/24", hosts: names})
	netLine := regexp.MustCompile(`^RIG net dev=eth0 mac=(\S+) ip=(\S+)/24 via=dhcp `)
	for _, n := range names {
		line := serial[n].Wait(t, 0, `^RIG net dev=eth0 `, 3*time.Minute)
		m := netLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: guest did not get an address by DHCP: %q", n, line)
			continue
		}
		hh := res[n]
		if !strings.EqualFold(m[1], hh.MAC) || m[2] != hh.IP {
			t.Errorf("%s: guest has %s with MAC %s; the network reserves %s for %s", n, m[2], m[1], hh.IP, hh.MAC)
		}
		d := liveDomain(t, h, n, false)
		if mac := d.Devices.Interfaces[0].MAC.Address; !strings.EqualFold(mac, hh.MAC) {
			t.Errorf("%s: NIC MAC %s, reservation for %s", n, mac, hh.MAC)
		}
	}
	if res["adr-1"].IP == res["adr-2"].IP {
		t.Errorf("both VMs reserved %s", res["adr-1"].IP)
	}

	st := parseStatus(t, h.MustRun(t, []string{"status", "-o", "json", dir}))
	if len(st.VMs) != 2 {
		t.Fatalf("status lists %d VMs, want 2: %+v", len(st.VMs), st.VMs)
	}
	for _, s := range st.VMs {
		if s.IP != res[s.Name].IP || s.IPSource != "lease" || s.State != "running" || s.Network != "lvm-adr" || !s.Provisioned {
			t.Errorf("status of %s: %+v, want running on lvm-adr with ip %s from the lease", s.Name, s, res[s.Name].IP)
		}
	}
	text := h.MustRun(t, []string{"status", dir}).Stdout
	for _, n := range names {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^%s\s+adr\s+running\s+lvm-adr\s+%s\s`, n, regexp.QuoteMeta(res[n].IP))).MatchString(text) {
			t.Errorf("status text has no row for %s with %s:\n%s", n, res[n].IP, text)
		}
	}
	h.MustRun(t, []string{"plan", dir}, 0)
	h.MustRun(t, []string{"destroy", "--auto-approve", dir})
}
