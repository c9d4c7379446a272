package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// Severity of a doctor finding.
type Severity string

const (
	SeverityOK   Severity = "ok"
	SeverityInfo Severity = "info"
	SeverityWarn Severity = "warning"
	SeverityFail Severity = "error"
)

// Finding is one host check: what was checked, what was found and, when
// something is wrong, how to fix it.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
	// Hint names what the user can do next (event.HintVerifyOnHost: check
	// on the libvirt host itself); front ends word it.
	Hint event.Hint `json:"hint,omitempty"`
}

// HostSystem reads the local system: the machine legacyvm runs on, which is
// the libvirt host when the URI is local. Tests substitute a fake root.
type HostSystem struct {
	// Root prefixes every path read (e.g. a test directory holding
	// proc/sys/...); "" is the real root.
	Root string
	// LookPath finds programs (nil: exec.LookPath).
	LookPath func(string) (string, error)
}

// path is the absolute path of a root-relative path ("proc/sys/...").
func (h HostSystem) path(p string) string {
	root := h.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

func (h HostSystem) read(path string) (string, bool) {
	b, err := os.ReadFile(h.path(path))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

func (h HostSystem) exists(path string) bool {
	_, err := os.Stat(h.path(path))
	return err == nil
}

func (h HostSystem) lookPath(name string) bool {
	lp := h.LookPath
	if lp == nil {
		lp = exec.LookPath
	}
	_, err := lp(name)
	return err == nil
}

// IsLocalURI reports whether a libvirt URI names this machine (no host
// part), so local files describe the libvirt host.
func IsLocalURI(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	return u.Host == "" || u.Hostname() == "localhost"
}

// Doctor checks a host for what legacyvm needs and for conditions that
// weaken isolation. hv may be nil when the connection failed (connErr says
// why); local system checks run only for local URIs.
func Doctor(ctx context.Context, uri string, hv virt.Hypervisor, connErr error, sys HostSystem, poolName string) []Finding {
	var fs []Finding
	add := func(check string, sev Severity, msg, fix string) {
		fs = append(fs, Finding{Check: check, Severity: sev, Message: msg, Fix: fix})
	}
	if hv == nil {
		// The finding is one line; its fix says what the connection
		// error's hint (its later lines) says.
		msg, _, _ := strings.Cut(connErr.Error(), "\n")
		add("libvirt", SeverityFail, fmt.Sprintf("cannot connect to %s: %s", uri, msg),
			"start libvirtd (systemctl start libvirtd, or `libvirtd -d` and `virtlogd -d` without an init system) and check you may use the socket (root or the libvirt group)")
	} else {
		fs = append(fs, libvirtFindings(ctx, uri, hv, poolName)...)
	}
	if !IsLocalURI(uri) {
		add("host system", SeverityInfo, "the libvirt host is remote: its firewall and sysctl settings are checked only on the host itself", "")
		fs[len(fs)-1].Hint = event.HintVerifyOnHost
		return fs
	}
	fs = append(fs, SystemFindings(sys)...)
	return fs
}

func libvirtFindings(ctx context.Context, uri string, hv virt.Hypervisor, poolName string) []Finding {
	var fs []Finding
	add := func(check string, sev Severity, msg, fix string) {
		fs = append(fs, Finding{Check: check, Severity: sev, Message: msg, Fix: fix})
	}
	hi, err := hv.HostInfo(ctx)
	if err != nil {
		add("libvirt", SeverityFail, fmt.Sprintf("connected to %s but cannot read host information: %v", uri, err), "check libvirtd's log")
		return fs
	}
	add("libvirt", SeverityOK, fmt.Sprintf("libvirtd %s reachable at %s (host %s)", versionString(hi.DaemonVersion), uri, hi.Hostname), "")
	if hi.Emulator == "" {
		add("qemu", SeverityFail, "libvirt reports no QEMU emulator for x86_64", "install qemu-system-x86 on the libvirt host")
	} else {
		add("qemu", SeverityOK, "QEMU emulator "+hi.Emulator, "")
	}
	if hi.KVM {
		add("accelerator", SeverityOK, "KVM is usable: VMs run with hardware acceleration", "")
	} else {
		add("accelerator", SeverityWarn, "KVM is not usable ("+hi.KVMProblem+"): VMs fall back to TCG (software emulation, many times slower; fine for tests, painful for Windows)",
			"enable virtualisation (VT-x/AMD-V) in the firmware or for this VM, load kvm_intel or kvm_amd, and make /dev/kvm accessible to libvirt's QEMU user")
	}
	if poolName == "" {
		poolName = "default"
	}
	pool, err := hv.GetPool(ctx, poolName)
	switch {
	case errors.Is(err, virt.ErrNotFound):
		add("storage pool", SeverityWarn, fmt.Sprintf("storage pool %q does not exist", poolName),
			fmt.Sprintf("applying a profile creates \"default\" at /var/lib/libvirt/images; or: virsh pool-define-as %s dir --target /var/lib/libvirt/images && virsh pool-build %s && virsh pool-start %s && virsh pool-autostart %s", poolName, poolName, poolName, poolName))
	case err != nil:
		add("storage pool", SeverityFail, fmt.Sprintf("cannot read storage pool %q: %v", poolName, err), "check libvirtd's log")
	case !pool.Active:
		add("storage pool", SeverityFail, fmt.Sprintf("storage pool %q is not active", poolName), "virsh pool-start "+poolName+" && virsh pool-autostart "+poolName)
	default:
		add("storage pool", SeverityOK, fmt.Sprintf("storage pool %q at %s (%s free)", poolName, pool.Path, humanBytes(pool.Available)), "")
	}
	if f, ok := agentFinding(ctx, hv); ok {
		fs = append(fs, f)
	}
	return fs
}

func versionString(v uint32) string {
	if v == 0 {
		return "(unknown version)"
	}
	return fmt.Sprintf("%d.%d.%d", v/1000000, v/1000%1000, v%1000)
}

// SystemFindings checks the local system for the tools nwfilter needs and
// for kernel settings that weaken isolation.
func SystemFindings(sys HostSystem) []Finding {
	var fs []Finding
	add := func(check string, sev Severity, msg, fix string) {
		fs = append(fs, Finding{Check: check, Severity: sev, Message: msg, Fix: fix})
	}
	for _, tool := range []string{"ebtables", "iptables"} {
		if sys.lookPath(tool) {
			add(tool, SeverityOK, tool+" is installed (libvirt's traffic filters need it)", "")
		} else {
			add(tool, SeverityFail, tool+" is missing: libvirt cannot install the traffic filters that isolate the VMs",
				"apt-get install iptables (it provides ebtables-nft and iptables-nft), then restart libvirtd")
		}
	}
	// br_netfilter: with it loaded and bridge-nf-call-iptables off, the
	// iptables half of nwfilter (and libvirt's own bridge rules) do nothing.
	if v, ok := sys.read("proc/sys/net/bridge/bridge-nf-call-iptables"); ok {
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
	all, okAll := sys.read("proc/sys/net/ipv4/conf/all/rp_filter")
	def, okDef := sys.read("proc/sys/net/ipv4/conf/default/rp_filter")
	if okAll || okDef {
		if (all == "0" || !okAll) && (def == "0" || !okDef) {
			add("rp_filter", SeverityWarn,
				"reverse-path filtering is off (net.ipv4.conf.all.rp_filter=0 and default=0): a guest can address the host's other interfaces through its bridge; legacyvm's guard drops such traffic, but a second layer is gone",
				"sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 (persist in /etc/sysctl.d/99-legacyvm.conf)")
		} else {
			add("rp_filter", SeverityOK, fmt.Sprintf("reverse-path filtering on (all=%s default=%s)", all, def), "")
		}
	}
	if sys.exists("run/firewalld") || sys.exists("var/run/firewalld/firewalld.pid") {
		add("firewalld", SeverityWarn,
			"firewalld is running: libvirt puts bridges in its \"libvirt\" zone, which lets guests reach DNS, DHCP, TFTP and SSH on the host unless the zone is changed",
			"restrict the zone: firewall-cmd --permanent --zone=libvirt --remove-service=ssh (and tftp), firewall-cmd --reload")
	}
	fs = append(fs, forwardPolicyFindings(sys)...) // verify.go
	if v, ok := sys.read("proc/sys/net/ipv4/ip_forward"); ok && v == "1" {
		add("ip_forward", SeverityInfo, "IP forwarding is on; legacyvm networks have no <forward> element, so libvirt rejects forwarding from them", "")
	}
	return fs
}
