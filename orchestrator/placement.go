package orchestrator

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// hostConn is a connection to one host of a profile, or why there is none.
type hostConn struct {
	Host *profiles.Host
	URI  string
	// HV is nil when Err is set.
	HV  virt.Hypervisor
	Err error
	// Domains are the host's domains, listed by observeDomains (nil
	// before).
	Domains []virt.Domain
}

// connectHosts connects to every host of p, in p.Hosts order. A host that
// cannot be reached gets Err and no HV: the caller decides whether that is
// fatal (a single host) or partial (see HostPlan.Err).
func connectHosts(ctx context.Context, p *profiles.Profile, connect Connector, opts Options) []*hostConn {
	out := make([]*hostConn, 0, len(p.Hosts))
	for _, h := range p.Hosts {
		uri := opts.HostURI(h)
		hc := &hostConn{Host: h, URI: uri}
		hv, err := connect(ctx, uri)
		if err != nil {
			hc.Err = fmt.Errorf("connect to %s: %w", uri, err)
		} else {
			hc.HV = hv
		}
		out = append(out, hc)
	}
	return out
}

// closeConns closes every open connection.
func closeConns(conns []*hostConn) {
	for _, c := range conns {
		if c.HV != nil {
			_ = c.HV.Close()
			c.HV = nil
		}
	}
}

// unplacedInstance is an instance that placement could not put on a host because
// a host it may already live on (or could go to) did not answer.
type unplacedInstance struct {
	Instance string
	// Hosts are the unreachable candidate hosts.
	Hosts []string
}

// place puts every instance of p on a host (Instance.Host) and returns what
// could not be placed. Placement is stable: an instance that exists on a
// reachable host stays there, whatever the policy would choose now (even
// when the host no longer matches host_labels). A new instance of a vm
// with placement goes to a candidate host with room (max_vms counts every
// VM legacyvm manages on the host, of any profile): "spread" picks the one
// with the fewest, "pack" the first by name. A placed instance is left
// unplaced when a candidate host is unreachable and the instance exists on
// no reachable host: it may exist on the host that did not answer, and
// creating it elsewhere would make a second one. Fixed-host instances that
// do not exist yet count against their host's max_vms too; exceeding it
// is a diagnostic at the vm block. Hosts without a connection, or whose
// domains were not listed (observeDomains), are skipped. place is pure:
// it reads the domains the observer listed.
func place(p *profiles.Profile, conns []*hostConn) ([]unplacedInstance, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	count := map[*profiles.Host]int{}
	where := map[string]*profiles.Host{}
	reachable := map[*profiles.Host]bool{}
	for _, c := range conns {
		if c.HV == nil || c.Err != nil || c.Domains == nil {
			continue
		}
		reachable[c.Host] = true
		for _, d := range c.Domains {
			if d.Metadata == nil {
				continue
			}
			count[c.Host]++
			if d.Metadata.Profile == p.Name {
				where[d.Name] = c.Host
			}
		}
	}
	// Fixed instances first: they go where the profile says.
	for _, in := range p.Instances {
		if in.VM.Placement != profiles.PlacementFixed {
			continue
		}
		in.Host = in.VM.Host
		h := in.Host
		if !reachable[h] || where[in.Name] == h {
			continue
		}
		if h.MaxVMs > 0 && count[h] >= h.MaxVMs {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Host is full",
				Detail: fmt.Sprintf("Instance %q goes to host.%s, which allows %d VMs (max_vms at %s) and already has %d managed by legacyvm. Raise max_vms, put the vm on another host, or let legacyvm choose with placement = \"spread\".",
					in.Name, h.Name, h.MaxVMs, rangeAt(h.DeclRange), count[h]),
				Subject: in.VM.DeclRange.Ptr()})
			continue
		}
		count[h]++
	}
	var unplaced []unplacedInstance
	for _, in := range p.Instances {
		vm := in.VM
		if vm.Placement == profiles.PlacementFixed {
			continue
		}
		in.Host = nil
		if h, ok := where[in.Name]; ok {
			in.Host = h
			continue
		}
		var down []string
		var room []*profiles.Host
		for _, h := range vm.Candidates {
			if !reachable[h] {
				down = append(down, h.Name)
				continue
			}
			if h.MaxVMs == 0 || count[h] < h.MaxVMs {
				room = append(room, h)
			}
		}
		if len(down) > 0 {
			unplaced = append(unplaced, unplacedInstance{Instance: in.Name, Hosts: down})
			continue
		}
		if len(room) == 0 {
			var names []string
			for _, h := range vm.Candidates {
				names = append(names, fmt.Sprintf("host.%s (%d of %d)", h.Name, count[h], h.MaxVMs))
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "No host has room",
				Detail: fmt.Sprintf("Instance %q needs a host, but every candidate is at its max_vms: %s. Raise max_vms, add a host block, or lower count.",
					in.Name, strings.Join(names, ", ")),
				Subject: vm.PlacementRange.Ptr()})
			continue
		}
		best := room[0]
		if vm.Placement == profiles.PlacementSpread {
			for _, h := range room[1:] {
				if count[h] < count[best] {
					best = h
				}
			}
		}
		in.Host = best
		count[best]++
	}
	return unplaced, diags
}

func rangeAt(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

// placementNote says, for a plan, which instances placement put on the
// host and why.
func placementNotes(p *profiles.Profile, h *profiles.Host) []string {
	var names []string
	for _, in := range p.Instances {
		if in.Host == h && in.VM.Placement != profiles.PlacementFixed {
			names = append(names, fmt.Sprintf("%s (%s)", in.Name, in.VM.Placement))
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return []string{fmt.Sprintf("placed on host %s: %s", h.Name, strings.Join(names, ", "))}
}
