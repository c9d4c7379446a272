package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/internal/snapmeta"
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
	// NextSnapshot is when the VM's policy takes its next scheduled
	// snapshot (host clock; now when one is due); nil without a schedule
	// or before provisioning has finished.
	NextSnapshot *time.Time `json:"next_snapshot,omitempty"`
	// Schedule is the resolved cron expression (after the per-VM jitter).
	Schedule string `json:"schedule,omitempty"`
	// Host and URI say where the VM runs (set by callers that list
	// several hosts).
	Host string `json:"host,omitempty"`
	URI  string `json:"uri,omitempty"`
	// Doors are the VM's doors (and its network's egress doors).
	Doors []doorView `json:"doors,omitempty"`
}

// doorView is one door in status: what it opens and, when legacyvm
// daemon runs, what its relay does.
type doorView struct {
	// Key is the relay's name for the door ("publish/app/rdp",
	// "egress/lvm-lab/db").
	Key  string `json:"key"`
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Listen is where the relay listens (host address:port).
	Listen string   `json:"listen"`
	From   []string `json:"from,omitempty"`
	// Target is the guest port (publish) or the outside service (egress).
	Target string `json:"target"`
	// Relay is "listening", "not listening: why" or "daemon not running".
	Relay    string `json:"relay"`
	Accepted uint64 `json:"connections"`
	Refused  uint64 `json:"refused"`
	Active   int64  `json:"active"`
}

// AddRelayState fills the relay columns of the VM's doors from the
// daemon's state (nil: the daemon is not running).
func (s *VMStatus) AddRelayState(st *daemonstate.State) {
	by := map[string]int{}
	if st != nil {
		for i, d := range st.Doors {
			by[d.Key] = i
		}
	}
	for j := range s.Doors {
		v := &s.Doors[j]
		k, ok := by[v.Key]
		switch {
		case st == nil:
			v.Relay = "daemon not running"
		case !ok:
			v.Relay = "not relayed"
		case !st.Doors[k].Listening:
			v.Relay = "not listening: " + st.Doors[k].Error
		default:
			v.Relay = "listening"
		}
		if ok {
			d := st.Doors[k]
			v.Accepted, v.Refused, v.Active = d.Accepted, d.Refused, d.Active
		}
	}
}

// doorViews describes the doors recorded with d.
func doorViews(d virt.Domain, n virt.Network) []doorView {
	var out []doorView
	ip := netip.Addr{}
	if len(d.Interfaces) > 0 {
		ip = reservedIP(n, d.Interfaces[0].MAC)
	}
	for _, r := range d.Metadata.Doors {
		v := doorView{Kind: r.Kind, Name: r.Name, From: r.From}
		switch r.Kind {
		case virt.DoorPublish:
			v.Key = "publish/" + d.Name + "/" + r.Name
			v.Listen = r.Listen
			v.Target = fmt.Sprintf("%s:%d", addrStr(ip), r.Port)
		default:
			v.Key = "egress/" + d.Name + "/" + r.Name
			if r.Scope == "network" {
				v.Key = "egress/" + n.Name + "/" + r.Name
			}
			v.Listen = fmt.Sprintf("%s:%d", addrStr(n.HostAddress), r.Port)
			v.Target = r.To
		}
		out = append(out, v)
	}
	return out
}

// hostStatus lists the VMs legacyvm manages on hv; profile "" means all
// profiles. Sorted by profile, then name.
func hostStatus(ctx context.Context, hv virt.Hypervisor, profile string) ([]VMStatus, error) {
	return hostStatusAt(ctx, hv, profile, time.Now())
}

// hostStatusAt is Status with the clock that decides the next scheduled
// snapshots.
func hostStatusAt(ctx context.Context, hv virt.Hypervisor, profile string, now time.Time) ([]VMStatus, error) {
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
			if sched, ok, err := resolveScheduleWindow(m.Policy.Schedule, m.Policy.Window, d.UUID+"/"+d.Name); err == nil && ok && m.Provisioned {
				s.Schedule = sched.Spec
				if next, ok := nextScheduled(sched, m.Policy.Name, m.Created, classifyAll(snaps, m.Policy.Baseline), now); ok {
					s.NextSnapshot = &next
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
		if len(m.Doors) > 0 {
			n := virt.Network{}
			if len(d.Interfaces) > 0 {
				n = netByName[d.Interfaces[0].Network]
			}
			s.Doors = doorViews(d, n)
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

// nextScheduled is the instant of the next scheduled snapshot of policy:
// the first after the newest scheduled snapshot (or the VM's creation), or
// now when that has passed (due). ok is false when it never comes.
func nextScheduled(s vmSchedule, policy string, created time.Time, snaps []snapmeta.Info, now time.Time) (time.Time, bool) {
	ref := created
	for _, sn := range snaps {
		if at := scheduledAt(sn); sn.Kind == snapmeta.Auto && sn.Policy == policy && at.After(ref) {
			ref = at
		}
	}
	next := s.Next(ref)
	if next.IsZero() {
		return time.Time{}, false
	}
	if !next.After(now) {
		next = now
	}
	return next, true
}

func reservedIP(n virt.Network, mac string) netip.Addr {
	for _, h := range n.DHCPHosts {
		if strings.EqualFold(h.MAC, mac) {
			return h.IP
		}
	}
	return netip.Addr{}
}
