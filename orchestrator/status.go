package orchestrator

import (
	"context"
	"errors"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// VMStatus is what `legacyvm status` shows about a managed VM.
type VMStatus struct {
	Name        string           `json:"name"`
	Profile     string           `json:"profile"`
	State       virt.DomainState `json:"state"`
	Provisioned bool             `json:"provisioned"`
	Network     string           `json:"network,omitempty"`
	IP          string           `json:"ip,omitempty"`
	// IPSource says where IP came from: "lease" or "reservation".
	IPSource  string `json:"ip_source,omitempty"`
	Snapshots int    `json:"snapshots"`
	Baseline  string `json:"baseline,omitempty"`
	License   string `json:"license,omitempty"`
	Policy    string `json:"policy,omitempty"`
	VNC       string `json:"vnc,omitempty"`
	// Agent is the guest agent: "answers", "silent", "off" (not
	// running), or "" when the VM has no agent channel.
	Agent   string    `json:"agent,omitempty"`
	Created time.Time `json:"created,omitempty"`
}

// Status lists the VMs legacyvm manages on hv; profile "" means all
// profiles. Sorted by profile, then name.
func Status(ctx context.Context, hv virt.Hypervisor, profile string) ([]VMStatus, error) {
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	nets, err := hv.ListNetworks(ctx)
	if err != nil {
		return nil, err
	}
	netByName := map[string]virt.Network{}
	for _, n := range nets {
		netByName[n.Name] = n
	}
	leases := map[string][]virt.Lease{}
	var out []VMStatus
	for _, d := range doms {
		m := d.Metadata
		if m == nil || (profile != "" && m.Profile != profile) {
			continue
		}
		s := VMStatus{Name: d.Name, Profile: m.Profile, State: d.State, Provisioned: m.Provisioned, VNC: d.VNC, Created: m.Created}
		if m.License != nil {
			s.License = m.License.Label
		}
		if m.Policy != nil {
			s.Policy = m.Policy.Name
		}
		snaps, err := hv.ListSnapshots(ctx, d.Name)
		if err != nil && !errors.Is(err, virt.ErrNotFound) {
			return nil, err
		}
		s.Snapshots = len(snaps)
		if s.Agent, err = agentState(ctx, hv, d); err != nil {
			return nil, err
		}
		if m.Policy != nil {
			for _, sn := range snaps {
				if sn.Name == m.Policy.Baseline {
					s.Baseline = sn.Name
				}
			}
		}
		if len(d.Interfaces) > 0 {
			iface := d.Interfaces[0]
			s.Network = iface.Network
			if _, ok := leases[iface.Network]; !ok {
				ls, err := hv.Leases(ctx, iface.Network)
				if err != nil && !errors.Is(err, virt.ErrNotFound) && !errors.Is(err, virt.ErrInvalidState) {
					return nil, err
				}
				leases[iface.Network] = ls
			}
			for _, l := range leases[iface.Network] {
				if strings.EqualFold(l.MAC, iface.MAC) && l.IP.IsValid() {
					s.IP, s.IPSource = l.IP.String(), "lease"
				}
			}
			if s.IP == "" {
				if ip := reservedIP(netByName[iface.Network], iface.MAC); ip.IsValid() {
					s.IP, s.IPSource = ip.String(), "reservation"
				}
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Profile != out[j].Profile {
			return out[i].Profile < out[j].Profile
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func reservedIP(n virt.Network, mac string) netip.Addr {
	for _, h := range n.DHCPHosts {
		if strings.EqualFold(h.MAC, mac) {
			return h.IP
		}
	}
	return netip.Addr{}
}
