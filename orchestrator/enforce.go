package orchestrator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// enforcement is the outcome of one enforceIsolation pass.
type enforcement struct {
	// Verification is what verify found after the repairs (before them
	// when nothing was repaired).
	Verification *Verification
	// Repaired names each NIC whose filter was bound again ("vm mac").
	Repaired []string
	// Unrepaired are the failed checks no live repair covers
	// ("vm/check: reason").
	Unrepaired []string
	At         time.Time
}

// enforceIsolation verifies every managed VM on hv (the checks that need
// no profile) and repairs, live, what can be repaired without a restart or
// a profile: a NIC on a legacyvm network whose traffic filter reference
// was removed or changed, in the definition or on the running interface,
// gets the network's filter (with its reserved address) again in both.
// Everything else that fails is listed in Unrepaired for a human (or
// apply) to fix. The error is for failures to read the host.
func enforceIsolation(ctx context.Context, hv virt.Hypervisor, opts VerifyOptions) (*enforcement, error) {
	v, err := verifyHost(ctx, hv, opts)
	if err != nil {
		return nil, err
	}
	out := &enforcement{Verification: v, At: time.Now().UTC()}
	var nets map[string]virt.Network
	for _, vm := range v.VMs {
		broken := false
		for _, c := range vm.Checks {
			if c.Status == CheckFail && (c.Check == checkFilterRef || c.Check == checkFilterBinding) {
				broken = true
			}
		}
		if !broken {
			continue
		}
		if nets == nil {
			ns, err := hv.ListNetworks(ctx)
			if err != nil {
				return nil, err
			}
			nets = map[string]virt.Network{}
			for _, n := range ns {
				nets[n.Name] = n
			}
		}
		d, err := hv.GetDomain(ctx, vm.Name)
		if err != nil {
			return nil, err
		}
		for _, nic := range d.Interfaces {
			n, ok := nets[nic.Network]
			if !ok || n.Metadata == nil || !isOwnedName(n.Name) {
				continue // not ours: reported, never touched
			}
			params := nic.FilterParams
			if ip := reservedIP(n, nic.MAC); ip.IsValid() {
				params = []virt.FilterParam{{Name: "IP", Value: ip.String()}}
			} else if nic.Filter != n.Name {
				params = nil
			}
			if err := hv.SetInterfaceFilter(ctx, d.Name, nic.MAC, n.Name, params); err != nil {
				return nil, fmt.Errorf("bind filter %s to %s of %s: %w", n.Name, nic.MAC, d.Name, err)
			}
			out.Repaired = append(out.Repaired, d.Name+" "+nic.MAC)
		}
	}
	if len(out.Repaired) > 0 {
		if out.Verification, err = verifyHost(ctx, hv, opts); err != nil {
			return nil, err
		}
	}
	for _, vm := range out.Verification.VMs {
		for _, c := range vm.Checks {
			if c.Status == CheckFail {
				out.Unrepaired = append(out.Unrepaired, fmt.Sprintf("%s/%s: %s", vm.Name, c.Check, c.Reason))
			}
		}
	}
	for _, f := range out.Verification.HostChecks {
		if f.Severity == hostcheck.SeverityFail {
			out.Unrepaired = append(out.Unrepaired, fmt.Sprintf("host/%s: %s", f.Check, strings.TrimSpace(f.Message)))
		}
	}
	return out, nil
}
