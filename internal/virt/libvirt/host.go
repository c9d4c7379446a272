package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// hostArch is the guest architecture legacyvm runs (32-bit Windows 7 also
// runs on x86_64 emulators).
const hostArch = "x86_64"

func (h *Hypervisor) hostInfo(ctx context.Context) (virt.HostInfo, error) {
	const op = "host info of"
	info := virt.HostInfo{URI: h.uri, Machines: map[string]string{}}
	var err error
	if info.LibVersion, err = libvirt.GetVersion(); err != nil {
		return virt.HostInfo{}, wrap(op, h.uri, err)
	}
	if err := alive(ctx, op, h.uri); err != nil {
		return virt.HostInfo{}, err
	}
	if info.DaemonVersion, err = h.conn.GetLibVersion(); err != nil {
		return virt.HostInfo{}, wrap(op, h.uri, err)
	}
	info.SaveFeatures = saveFeatures(info.DaemonVersion)
	if err := alive(ctx, op, h.uri); err != nil {
		return virt.HostInfo{}, err
	}
	if info.Hostname, err = h.conn.GetHostname(); err != nil {
		return virt.HostInfo{}, wrap(op, h.uri, err)
	}

	// Is KVM offered? Domain capabilities for virttype kvm fail when not.
	if err := alive(ctx, op, h.uri); err != nil {
		return virt.HostInfo{}, err
	}
	virttype := string(virt.AccelTCG)
	info.KVMProblem = "libvirt offers no kvm domain type (no /dev/kvm, or no access to it)"
	if doc, err := h.conn.GetDomainCapabilities("", hostArch, "", string(virt.AccelKVM), 0); err == nil {
		var dc libvirtxml.DomainCaps
		if dc.Unmarshal(doc) == nil && dc.Domain == string(virt.AccelKVM) {
			virttype = string(virt.AccelKVM)
			// Offered is not the same as working: on some nested hosts
			// QEMU aborts (MSRs, Hyper-V features) or guests hang.
			if err := h.kvmProbe(ctx); err != nil {
				info.KVMProblem = err.Error()
			} else {
				info.KVM, info.KVMProblem = true, ""
			}
		}
	}

	// Machine aliases: the capabilities list them with their canonical
	// (versioned) type for the accelerator in use.
	if err := alive(ctx, op, h.uri); err != nil {
		return virt.HostInfo{}, err
	}
	doc, err := h.conn.GetCapabilities()
	if err != nil {
		return virt.HostInfo{}, wrap(op, h.uri, err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(doc); err != nil {
		return virt.HostInfo{}, fmt.Errorf("%s %q: parse capabilities: %w", op, h.uri, err)
	}
	for _, g := range caps.Guests {
		if g.OSType != "hvm" || g.Arch.Name != hostArch {
			continue
		}
		info.Emulator = g.Arch.Emulator
		machines := g.Arch.Machines
		for _, d := range g.Arch.Domains {
			if d.Type == virttype {
				if d.Emulator != "" {
					info.Emulator = d.Emulator
				}
				if len(d.Machines) > 0 {
					machines = d.Machines
				}
			}
		}
		for _, m := range machines {
			if m.Canonical != "" {
				info.Machines[m.Name] = m.Canonical
			}
		}
	}
	return info, nil
}

// probeRun is how long the KVM probe domain must keep running.
const probeRun = 300 * time.Millisecond

// kvmProbe starts a transient KVM domain with legacyvm's Windows 7 preset
// (host-model CPU, Hyper-V enlightenments, no disks) and checks that it is
// still running after probeRun: QEMU refuses to start, or dies at once,
// where KVM cannot run what legacyvm defines. The result is cached for the
// connection, and for the process by URI: apply plans on one connection
// and verifies on another, and each probe is a QEMU launch plus probeRun
// (bench/applybench saw two probe domains per apply). The domain is created
// with AUTODESTROY, so it cannot outlive the connection even if this
// process dies.
func (h *Hypervisor) kvmProbe(ctx context.Context) error {
	h.probeMu.Lock()
	defer h.probeMu.Unlock()
	if h.probeDone {
		return h.probeErr
	}
	probeCache.Lock()
	defer probeCache.Unlock()
	if err, ok := probeCache.byURI[h.uri]; ok {
		h.probeErr, h.probeDone = err, true
		return err
	}
	h.probeErr = h.runKVMProbe(ctx)
	h.probeDone = ctx.Err() == nil
	if h.probeDone {
		probeCache.byURI[h.uri] = h.probeErr
	}
	return h.probeErr
}

// probeCache holds the KVM probe's result of each URI this process probed.
var probeCache = struct {
	sync.Mutex
	byURI map[string]error
}{byURI: map[string]error{}}

func (h *Hypervisor) runKVMProbe(ctx context.Context) error {
	name := fmt.Sprintf("lvm-kvm-probe-%d-%s", os.Getpid(), uuid.NewString()[:8])
	xml, err := domainxml.DomainXML(virt.DomainSpec{
		Name: name, UUID: uuid.NewString(), Accel: virt.AccelKVM, Arch: hostArch, Machine: "pc",
		VCPUs: 1, MemoryBytes: 64 << 20, Hyperv: true, SMBIOSSerial: "LVM-KVM-PROBE",
		Metadata: &virt.Metadata{Profile: "legacyvm-kvm-probe"},
	})
	if err != nil {
		return fmt.Errorf("kvm probe: %w", err)
	}
	if err := alive(ctx, "kvm probe on", h.uri); err != nil {
		return err
	}
	dom, err := h.conn.DomainCreateXML(xml, libvirt.DOMAIN_START_AUTODESTROY)
	if err != nil {
		return fmt.Errorf("a KVM guest with legacyvm's settings does not start: %s", lvMessage(err))
	}
	defer dom.Free()
	defer func() { _ = dom.Destroy() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(probeRun):
	}
	state, _, err := dom.GetState()
	if err != nil {
		return fmt.Errorf("a KVM guest with legacyvm's settings stopped at once: %s", lvMessage(err))
	}
	if state != libvirt.DOMAIN_RUNNING {
		return fmt.Errorf("a KVM guest with legacyvm's settings did not keep running (state %d)", state)
	}
	return nil
}

// lvMessage is libvirt's message without the error code decoration.
func lvMessage(err error) string {
	var lerr libvirt.Error
	if errors.As(err, &lerr) {
		return lerr.Message
	}
	return err.Error()
}
