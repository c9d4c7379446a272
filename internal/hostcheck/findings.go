package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Findings checks the local system for the tools nwfilter needs and
// for kernel settings that weaken isolation.
func Findings(ctx context.Context, sys System) []Finding {
	var fs []Finding
	add := func(check string, sev Severity, msg, fix string) {
		fs = append(fs, Finding{Check: check, Severity: sev, Message: msg, Fix: fix})
	}
	for _, tool := range []string{"ebtables", "iptables"} {
		if sys.Has(tool) {
			add(tool, SeverityOK, tool+" is installed (libvirt's traffic filters need it)", "")
		} else {
			add(tool, SeverityFail, tool+" is missing: libvirt cannot install the traffic filters that isolate the VMs",
				"apt-get install iptables (it provides ebtables-nft and iptables-nft), then restart libvirtd")
		}
	}
	// br_netfilter: with it loaded and bridge-nf-call-iptables off, the
	// iptables half of nwfilter (and libvirt's own bridge rules) do nothing.
	if v, ok := sys.Read("proc/sys/net/bridge/bridge-nf-call-iptables"); ok {
		if v == "0" {
			add("bridge-nf-call-iptables", SeverityWarn,
				"net.bridge.bridge-nf-call-iptables is 0: iptables rules do not see bridged guest traffic, so only legacyvm's ebtables-level guard protects the host",
				"sysctl -w net.bridge.bridge-nf-call-iptables=1 (persist it in /etc/sysctl.d/99-legacyvm.conf)")
		} else {
			add("bridge-nf-call-iptables", SeverityOK, "bridged traffic passes through iptables (br_netfilter loaded, bridge-nf-call-iptables=1)", "")
		}
	} else {
		add("bridge-nf-call-iptables", SeverityInfo, "br_netfilter is not loaded; libvirt loads it when a filter needs it", "")
	}
	// rp_filter: 0 lets a guest reach host addresses of other interfaces
	// through the bridge (weak host model).
	all, okAll := sys.Read("proc/sys/net/ipv4/conf/all/rp_filter")
	def, okDef := sys.Read("proc/sys/net/ipv4/conf/default/rp_filter")
	if okAll || okDef {
		if (all == "0" || !okAll) && (def == "0" || !okDef) {
			add("rp_filter", SeverityWarn,
				"reverse-path filtering is off (net.ipv4.conf.all.rp_filter=0 and default=0): a guest can address the host's other interfaces through its bridge; legacyvm's guard drops such traffic, but a second layer is gone",
				"sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 (persist in /etc/sysctl.d/99-legacyvm.conf)")
		} else {
			add("rp_filter", SeverityOK, fmt.Sprintf("reverse-path filtering on (all=%s default=%s)", all, def), "")
		}
	}
	if sys.Exists("run/firewalld") || sys.Exists("var/run/firewalld/firewalld.pid") {
		add("firewalld", SeverityWarn,
			"firewalld is running: libvirt puts bridges in its \"libvirt\" zone, which lets guests reach DNS, DHCP, TFTP and SSH on the host unless the zone is changed",
			"restrict the zone: firewall-cmd --permanent --zone=libvirt --remove-service=ssh (and tftp), firewall-cmd --reload")
	}
	fs = append(fs, forwardPolicyFindings(ctx, sys)...)
	if v, ok := sys.Read("proc/sys/net/ipv4/ip_forward"); ok && v == "1" {
		add("ip_forward", SeverityInfo, "IP forwarding is on; legacyvm networks have no <forward> element, so libvirt rejects forwarding from them", "")
	}
	return fs
}

// forwardPolicyFindings reads the filter table with `iptables -S` and
// reports a FORWARD policy of ACCEPT on a host where Docker's chains exist:
// Docker turns IP forwarding on and normally sets the policy to DROP; put
// back to ACCEPT (a common "fix" for Docker breaking VM networking), the
// host routes between all its interfaces, and only libvirt's reject rules
// (which a firewall reload removes) stand between a guest and other
// networks.
func forwardPolicyFindings(ctx context.Context, sys System) []Finding {
	lp := sys.LookPath
	if lp == nil {
		lp = exec.LookPath
	}
	path, err := lp("iptables")
	if err != nil {
		return nil // reported by the iptables check
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-S").Output()
	if err != nil {
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return []Finding{{Check: "forward-policy", Severity: SeverityInfo,
			Message: "cannot read the iptables rules (iptables -S: " + msg + "); run as root to check the FORWARD policy"}}
	}
	return []Finding{forwardPolicyFinding(string(out))}
}

// forwardPolicyFinding judges the output of `iptables -S`.
func forwardPolicyFinding(rules string) Finding {
	policy, docker := "", ""
	for _, line := range strings.Split(rules, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "-P" && f[1] == "FORWARD":
			policy = f[2]
		case len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "DOCKER") && docker == "":
			docker = f[1]
		}
	}
	f := Finding{Check: "forward-policy", Severity: SeverityOK}
	switch {
	case policy == "ACCEPT" && docker != "":
		f.Severity = SeverityWarn
		f.Message = fmt.Sprintf("the FORWARD policy is ACCEPT on a host with Docker (chain %s): Docker turns IP forwarding on, so the host routes between all its interfaces and only libvirt's reject rules, which a firewall reload removes, keep guests off other networks; legacyvm's guard drops routed guest traffic, but a second layer is gone", docker)
		f.Fix = "iptables -P FORWARD DROP (Docker's own default; allow what containers need in the DOCKER-USER chain) and persist it"
	case policy == "":
		f.Severity = SeverityInfo
		f.Message = "no FORWARD policy in `iptables -S` output"
	case docker != "":
		f.Message = fmt.Sprintf("FORWARD policy %s (Docker chains present)", policy)
	default:
		f.Message = fmt.Sprintf("FORWARD policy %s, no Docker chains", policy)
	}
	return f
}
