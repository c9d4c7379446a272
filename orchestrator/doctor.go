package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// Doctor checks the session's host for what legacyvm needs and for
// conditions that weaken isolation. The session's connection may be nil
// when connecting failed (connErr says why); local system checks run only
// for local URIs.
func (s *Session) Doctor(ctx context.Context, connErr error, sys hostcheck.System, poolName string) []hostcheck.Finding {
	return doctor(ctx, s.Host, s.HV, connErr, sys, poolName)
}

func doctor(ctx context.Context, uri string, hv virt.Hypervisor, connErr error, sys hostcheck.System, poolName string) []hostcheck.Finding {
	var fs []hostcheck.Finding
	add := func(check string, sev hostcheck.Severity, msg, fix string) {
		fs = append(fs, hostcheck.Finding{Check: check, Severity: sev, Message: msg, Fix: fix})
	}
	if hv == nil {
		// The finding is one line; its fix says what the connection
		// error's hint (its later lines) says.
		msg, _, _ := strings.Cut(connErr.Error(), "\n")
		add("libvirt", hostcheck.SeverityFail, fmt.Sprintf("cannot connect to %s: %s", uri, msg),
			"start libvirtd (systemctl start libvirtd, or `libvirtd -d` and `virtlogd -d` without an init system) and check you may use the socket (root or the libvirt group)")
	} else {
		fs = append(fs, libvirtFindings(ctx, uri, hv, poolName)...)
	}
	if !isLocalURI(uri) {
		add("host system", hostcheck.SeverityInfo, "the libvirt host is remote: its firewall and sysctl settings are checked only on the host itself", "")
		fs[len(fs)-1].Hint = event.HintVerifyOnHost
		return fs
	}
	fs = append(fs, hostcheck.Findings(ctx, sys)...)
	return fs
}

func libvirtFindings(ctx context.Context, uri string, hv virt.Hypervisor, poolName string) []hostcheck.Finding {
	var fs []hostcheck.Finding
	add := func(check string, sev hostcheck.Severity, msg, fix string) {
		fs = append(fs, hostcheck.Finding{Check: check, Severity: sev, Message: msg, Fix: fix})
	}
	hi, err := hv.HostInfo(ctx)
	if err != nil {
		add("libvirt", hostcheck.SeverityFail, fmt.Sprintf("connected to %s but cannot read host information: %v", uri, err), "check libvirtd's log")
		return fs
	}
	add("libvirt", hostcheck.SeverityOK, fmt.Sprintf("libvirtd %s reachable at %s (host %s)", versionString(hi.DaemonVersion), uri, hi.Hostname), "")
	if hi.Emulator == "" {
		add("qemu", hostcheck.SeverityFail, "libvirt reports no QEMU emulator for x86_64", "install qemu-system-x86 on the libvirt host")
	} else {
		add("qemu", hostcheck.SeverityOK, "QEMU emulator "+hi.Emulator, "")
	}
	if hi.KVM {
		add("accelerator", hostcheck.SeverityOK, "KVM is usable: VMs run with hardware acceleration", "")
	} else {
		add("accelerator", hostcheck.SeverityWarn, "KVM is not usable ("+hi.KVMProblem+"): VMs fall back to TCG (software emulation, many times slower; fine for tests, painful for Windows)",
			"enable virtualisation (VT-x/AMD-V) in the firmware or for this VM, load kvm_intel or kvm_amd, and make /dev/kvm accessible to libvirt's QEMU user")
	}
	if poolName == "" {
		poolName = "default"
	}
	pool, err := hv.GetPool(ctx, poolName)
	switch {
	case errors.Is(err, virt.ErrNotFound):
		add("storage pool", hostcheck.SeverityWarn, fmt.Sprintf("storage pool %q does not exist", poolName),
			fmt.Sprintf("applying a profile creates \"default\" at /var/lib/libvirt/images; or: virsh pool-define-as %s dir --target /var/lib/libvirt/images && virsh pool-build %s && virsh pool-start %s && virsh pool-autostart %s", poolName, poolName, poolName, poolName))
	case err != nil:
		add("storage pool", hostcheck.SeverityFail, fmt.Sprintf("cannot read storage pool %q: %v", poolName, err), "check libvirtd's log")
	case !pool.Active:
		add("storage pool", hostcheck.SeverityFail, fmt.Sprintf("storage pool %q is not active", poolName), "virsh pool-start "+poolName+" && virsh pool-autostart "+poolName)
	default:
		add("storage pool", hostcheck.SeverityOK, fmt.Sprintf("storage pool %q at %s (%s free)", poolName, pool.Path, humanBytes(pool.Available)), "")
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

// isLocalURI reports whether a libvirt URI names this machine (see
// hostcheck.IsLocal).
func isLocalURI(uri string) bool { return hostcheck.IsLocal(uri) }
