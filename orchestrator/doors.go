package orchestrator

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/relay"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// doorRefs lists the doors that concern one instance: its publish doors,
// its egress doors, then its network's egress doors.
func doorRefs(vm *profiles.VM) []virt.DoorRef {
	var out []virt.DoorRef
	for _, p := range vm.Publishes {
		var from []string
		for _, f := range p.From {
			from = append(from, f.String())
		}
		out = append(out, virt.DoorRef{Kind: virt.DoorPublish, Name: p.Name, Scope: "vm", Listen: p.Listen.String(),
			Port: p.Port, Protocol: string(p.Protocol), From: from, MaxConnections: p.MaxConnections})
	}
	for _, e := range vm.Egresses {
		out = append(out, virt.DoorRef{Kind: virt.DoorEgress, Name: e.Name, Scope: "vm", Port: e.Port, Protocol: "tcp", To: e.To})
	}
	if vm.Network != nil {
		for _, e := range vm.Network.Egresses {
			out = append(out, virt.DoorRef{Kind: virt.DoorEgress, Name: e.Name, Scope: "network", Port: e.Port, Protocol: "tcp", To: e.To})
		}
	}
	return out
}

// addFilterDoors opens each network's guard for the doors of its VMs
// (after the networks' hashes are computed: a door change updates the
// filter live, never the network).
func addFilterDoors(ds *desiredState) {
	byName := map[string]*desiredNetwork{}
	for _, dn := range ds.Networks {
		byName[dn.Spec.Name] = dn
		for _, e := range dn.Decl.Egresses {
			dn.Filter.Doors = append(dn.Filter.Doors, virt.DoorSpec{Name: fmt.Sprintf("egress %s of network %s", e.Name, dn.Decl.Name), Kind: virt.DoorEgress, Port: e.Port})
		}
	}
	for _, dv := range ds.VMs {
		if len(dv.Spec.Interfaces) == 0 {
			continue
		}
		dn := byName[dv.Spec.Interfaces[0].Network]
		if dn == nil {
			continue
		}
		for _, p := range dv.Instance.VM.Publishes {
			dn.Filter.Doors = append(dn.Filter.Doors, virt.DoorSpec{Name: fmt.Sprintf("publish %s of %s", p.Name, dv.Spec.Name), Kind: virt.DoorPublish, GuestIP: dv.IP, Port: p.Port})
		}
		for _, e := range dv.Instance.VM.Egresses {
			dn.Filter.Doors = append(dn.Filter.Doors, virt.DoorSpec{Name: fmt.Sprintf("egress %s of %s", e.Name, dv.Spec.Name), Kind: virt.DoorEgress, GuestIP: dv.IP, Port: e.Port})
		}
	}
}

// doorKey names a door in plans and results: "app/publish/rdp".
func doorKey(vm string, d virt.DoorRef) string { return vm + "/" + d.Kind + "/" + d.Name }

// doorDetails describes a door in words.
func doorDetails(d virt.DoorRef, dv *desiredVM) string {
	switch d.Kind {
	case virt.DoorPublish:
		to := "the guest"
		if dv != nil && dv.IP.IsValid() {
			to = dv.IP.String()
		}
		return fmt.Sprintf("relay listens on %s for %s (at most %d connections) and connects to %s:%d from the bridge address", d.Listen, strings.Join(d.From, ", "), d.MaxConnections, to, d.Port)
	default:
		who := "the guest"
		if d.Scope == "network" {
			who = "every guest of the network"
		}
		return fmt.Sprintf("%s reaches %s at the bridge address, port %d; the relay connects onward (DNS resolved by the host at connect time)", who, d.To, d.Port)
	}
}

// doorDrift says how an observed door differs from the desired one.
func doorDrift(have, want virt.DoorRef) []Reason {
	var r []Reason
	if have.Listen != want.Listen {
		r = append(r, changed(ReasonDoorListen, have.Listen, want.Listen))
	}
	if have.Port != want.Port {
		r = append(r, changed(ReasonDoorPort, have.Port, want.Port))
	}
	if !slices.Equal(have.From, want.From) {
		r = append(r, changed(ReasonDoorFrom, strings.Join(have.From, ", "), strings.Join(want.From, ", ")))
	}
	if have.MaxConnections != want.MaxConnections {
		r = append(r, changed(ReasonDoorMaxConnections, have.MaxConnections, want.MaxConnections))
	}
	if have.To != want.To {
		r = append(r, changed(ReasonDoorTo, have.To, want.To))
	}
	if have.Scope != want.Scope || have.Protocol != want.Protocol {
		r = append(r, Reason{Code: ReasonDoorMoved})
	}
	return r
}

// planDoors lists every door of the profile's VMs as a change of its own:
// create, update (with what changed) or delete (no longer declared), next
// to the VM that records it.
func planDoors(ds *desiredState, o *observation, vmChanges map[string]Action) []Change {
	var out []Change
	for _, dv := range ds.VMs {
		name := dv.Spec.Name
		var have []virt.DoorRef
		if d, ok := o.Domains[name]; ok && d.Metadata != nil && vmChanges[name] != ActionReplace {
			have = d.Metadata.Doors
		}
		find := func(list []virt.DoorRef, d virt.DoorRef) (virt.DoorRef, bool) {
			for _, x := range list {
				if x.Kind == d.Kind && x.Name == d.Name {
					return x, true
				}
			}
			return virt.DoorRef{}, false
		}
		for _, w := range dv.Spec.Metadata.Doors {
			c := Change{Kind: KindDoor, Name: doorKey(name, w), vm: dv, Details: []string{doorDetails(w, dv)}}
			h, ok := find(have, w)
			switch {
			case !ok:
				c.Action = ActionCreate
			case len(doorDrift(h, w)) > 0:
				c.Action = ActionUpdate
				c.Reasons = doorDrift(h, w)
			default:
				c.Action = ActionNoop
				c.Details = nil
			}
			out = append(out, c)
		}
		for _, h := range have {
			if _, ok := find(dv.Spec.Metadata.Doors, h); !ok {
				out = append(out, Change{Kind: KindDoor, Name: doorKey(name, h), Action: ActionDelete, vm: dv,
					Reasons: []Reason{{Code: ReasonDoorRemoved}}})
			}
		}
	}
	return out
}

// doorDiagnostics reports doors whose listen address is taken.
func doorDiagnostics(ds *desiredState, o *observation) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if o.ListenProblems == nil {
		return nil
	}
	seen := map[string]bool{}
	report := func(addr string, rng hcl.Range, what string) {
		prob := o.ListenProblems[addr]
		if prob == "" || seen[addr] {
			return
		}
		seen[addr] = true
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Listen port already taken",
			Detail:   fmt.Sprintf("%s needs %s, but something on this host already listens there (%s). Stop that service or choose another port; nothing was changed.", what, addr, prob),
			Subject:  rng.Ptr(),
		})
	}
	for _, dv := range ds.VMs {
		for _, p := range dv.Instance.VM.Publishes {
			report(p.Listen.String(), p.ListenRange, fmt.Sprintf("publish %q of vm %q", p.Name, dv.Instance.VM.Name))
		}
		if n := dv.Instance.VM.Network; n != nil && n.HostAddress.IsValid() {
			for _, e := range dv.Instance.VM.Egresses {
				report(netip.AddrPortFrom(n.HostAddress, e.Port).String(), e.PortRange, fmt.Sprintf("egress %q of vm %q", e.Name, dv.Instance.VM.Name))
			}
		}
	}
	for _, dn := range ds.Networks {
		if !dn.Decl.HostAddress.IsValid() {
			continue
		}
		for _, e := range dn.Decl.Egresses {
			report(netip.AddrPortFrom(dn.Decl.HostAddress, e.Port).String(), e.PortRange, fmt.Sprintf("egress %q of network %q", e.Name, dn.Decl.Name))
		}
	}
	return diags
}

// applyDoors records the doors of VMs that are not created, replaced or
// updated (those record them with the rest of their metadata): the VM's
// metadata gets the desired doors, in the definition and live.
func (e *engine) applyDoors(ctx context.Context, plan *Plan, record func(Change, error)) {
	vmAction := map[string]Action{}
	for _, c := range plan.Changes {
		if c.Kind == KindVM {
			vmAction[c.Name] = c.Action
		}
	}
	byVM := map[string][]Change{}
	var order []string
	for _, c := range plan.Changes {
		if c.Kind != KindDoor || c.Action == ActionNoop || c.vm == nil {
			continue
		}
		name := c.vm.Spec.Name
		if _, ok := byVM[name]; !ok {
			order = append(order, name)
		}
		byVM[name] = append(byVM[name], c)
	}
	for _, name := range order {
		cs := byVM[name]
		var err error
		switch vmAction[name] {
		case ActionCreate, ActionReplace, ActionUpdate:
			// Recorded with the VM's metadata (or failed with it).
		default:
			var d virt.Domain
			if d, err = e.HV.GetDomain(ctx, name); err == nil {
				if d.Metadata == nil {
					err = fmt.Errorf("domain %s has no legacyvm metadata", name)
				} else {
					md := *d.Metadata
					md.Doors = cs[0].vm.Spec.Metadata.Doors
					e.begin(event.KindVM, name, event.StepDoors, "recording %d door(s) for the relay", len(md.Doors))
					err = e.HV.SetMetadata(ctx, name, &md)
				}
			}
		}
		for _, c := range cs {
			record(c, err)
		}
	}
}

// hostDoors reads every door recorded on the host (libvirt is the source
// of truth) and resolves it for the relay: a publish door dials its
// guest's reserved address from the network's host address; an egress
// door listens on the network's host address and accepts only its guest
// (vm scope) or the network's subnet (network scope). Doors that cannot be
// resolved (no reservation, no host address) are returned in problems.
func hostDoors(ctx context.Context, hv virt.Hypervisor) (doors []relay.Door, problems []string, err error) {
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return nil, nil, err
	}
	nets, err := hv.ListNetworks(ctx)
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]virt.Network{}
	for _, n := range nets {
		byName[n.Name] = n
	}
	seen := map[string]bool{}
	for _, d := range doms {
		if d.Metadata == nil || len(d.Metadata.Doors) == 0 {
			continue
		}
		if len(d.Interfaces) == 0 {
			problems = append(problems, fmt.Sprintf("%s: doors but no network interface", d.Name))
			continue
		}
		nic := d.Interfaces[0]
		n, ok := byName[nic.Network]
		if !ok || n.Metadata == nil || !isOwnedName(n.Name) || !n.HostAddress.IsValid() {
			problems = append(problems, fmt.Sprintf("%s: network %s is missing, not legacyvm's or has no host address", d.Name, nic.Network))
			continue
		}
		ip := reservedIP(n, nic.MAC)
		for _, ref := range d.Metadata.Doors {
			door := relay.Door{Kind: ref.Kind, VM: d.Name, Network: n.Name, MaxConnections: ref.MaxConnections}
			switch ref.Kind {
			case virt.DoorPublish:
				if !ip.IsValid() {
					problems = append(problems, fmt.Sprintf("%s: publish %s: the VM has no address reservation on %s", d.Name, ref.Name, n.Name))
					continue
				}
				door.Key = "publish/" + d.Name + "/" + ref.Name
				door.Listen = ref.Listen
				for _, f := range ref.From {
					p, perr := netip.ParsePrefix(f)
					if perr != nil {
						problems = append(problems, fmt.Sprintf("%s: publish %s: from %q: %v", d.Name, ref.Name, f, perr))
						continue
					}
					door.From = append(door.From, p)
				}
				door.Target = netip.AddrPortFrom(ip, ref.Port).String()
				door.LocalAddr = n.HostAddress
			case virt.DoorEgress:
				door.Listen = netip.AddrPortFrom(n.HostAddress, ref.Port).String()
				door.Target = ref.To
				if ref.Scope == "network" {
					door.Key = "egress/" + n.Name + "/" + ref.Name
					door.VM = ""
					door.From = []netip.Prefix{n.Subnet.Masked()}
				} else {
					if !ip.IsValid() {
						problems = append(problems, fmt.Sprintf("%s: egress %s: the VM has no address reservation on %s", d.Name, ref.Name, n.Name))
						continue
					}
					door.Key = "egress/" + d.Name + "/" + ref.Name
					door.From = []netip.Prefix{netip.PrefixFrom(ip, 32)}
				}
			default:
				continue
			}
			if seen[door.Key] {
				continue
			}
			seen[door.Key] = true
			doors = append(doors, door)
		}
	}
	return doors, problems, nil
}

// portOf returns the port of "host:port" (0 when there is none).
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
