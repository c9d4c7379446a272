package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// Connector opens a hypervisor connection for a libvirt URI.
type Connector func(ctx context.Context, uri string) (virt.Hypervisor, error)

// Options are the settings planning needs beyond the profile.
type Options struct {
	// DefaultURI is used for VMs whose host block names no URI (from
	// --connect, LIBVIRT_DEFAULT_URI or qemu:///system).
	DefaultURI string
	// SerialLogDir is where guests' serial consoles are logged on the host
	// ("" = /var/log/libvirt/qemu).
	SerialLogDir string
	// ProbeListen, when set, checks that the listen addresses of the
	// profile's doors are free on this machine (set it only when the
	// libvirt host is this machine); OwnListeners are the addresses
	// legacyvm daemon's relay already holds, which are not probed.
	ProbeListen  func(addr string) error
	OwnListeners map[string]bool
	// ReadKeys lets planning read the product keys of the licences whose
	// VMs the plan creates or replaces (apply; plan --check-keys), once
	// per command, with the session's Getenv and Fingerprint, and match
	// them with the seats on the hosts by fingerprint (see licenses.go);
	// the plans carry what was read to Apply, which reads nothing again.
	// false: planning reads no secrets and matches seats by licence name.
	ReadKeys bool
	// keys reads and fingerprints the keys when ReadKeys (set by
	// Session.Plan; tests set it themselves).
	keys keyIdentifier
	// ImageUpdates names image blocks whose newest version every VM should
	// use (apply --image-update NAME): VMs on an older version are
	// replaced, as with image_version = "latest".
	ImageUpdates []string
}

// HostPlan is the plan for the part of a profile that lives on one host,
// with the connection it was made on. When Err is set the host could not
// be reached or planned (HV and Plan are nil): nothing is done there, and
// Skipped names the instances that were left out because of it.
type HostPlan struct {
	Host    *profiles.Host
	URI     string
	HV      virt.Hypervisor
	Plan    *Plan
	Err     error
	Skipped []string

	// observed is what the host held at planning; desired what the
	// profile wants there (both nil with Err).
	observed *observation
	desired  *desiredState
}

// Planned reports whether the host was reached and planned: the plan is
// set and Err is not.
func (hp *HostPlan) Planned() bool { return hp.Err == nil && hp.Plan != nil }

// plannedOf returns the host plans that have a plan (Err not set).
func plannedOf(hps []*HostPlan) []*HostPlan {
	var out []*HostPlan
	for _, hp := range hps {
		if hp.Planned() {
			out = append(out, hp)
		}
	}
	return out
}

// failedOf returns the host plans whose host could not be reached or planned.
func failedOf(hps []*HostPlan) []*HostPlan {
	var out []*HostPlan
	for _, hp := range hps {
		if hp.Err != nil {
			out = append(out, hp)
		}
	}
	return out
}

// closeAll closes every connection of the plans.
func closeAll(hps []*HostPlan) {
	for _, hp := range hps {
		if hp.HV != nil {
			_ = hp.HV.Close()
		}
	}
}

// HostURI is the URI a host block resolves to: its own, else DefaultURI,
// else profiles.DefaultURI.
func (opts Options) HostURI(h *profiles.Host) string {
	if h != nil && h.URI != "" {
		return h.URI
	}
	if opts.DefaultURI != "" {
		return opts.DefaultURI
	}
	return profiles.DefaultURI
}

// split divides a profile by host: each part holds the instances placed on
// that host (Instance.Host, see place; a placed instance not placed yet is
// in no part), their vm blocks and the networks they use (a network nobody
// uses goes with the first host). Every host of the profile has a part.
// Parts are ordered by host name.
func split(p *profiles.Profile) []*profiles.Profile {
	hosts := map[*profiles.Host]*profiles.Profile{}
	var order []*profiles.Host
	part := func(h *profiles.Host) *profiles.Profile {
		if sp, ok := hosts[h]; ok {
			return sp
		}
		sp := *p
		sp.Hosts = []*profiles.Host{h}
		sp.Instances, sp.Networks, sp.VMs = nil, nil, nil
		hosts[h] = &sp
		order = append(order, h)
		return &sp
	}
	for _, h := range p.Hosts {
		part(h)
	}
	netHosts := map[*profiles.Network]map[*profiles.Host]bool{}
	for _, in := range p.Instances {
		h := in.Host
		if h == nil {
			h = in.VM.Host
		}
		if h == nil {
			continue // a placed instance that placement could not place
		}
		sp := part(h)
		sp.Instances = append(sp.Instances, in)
		if n := len(sp.VMs); n == 0 || sp.VMs[n-1] != in.VM {
			sp.VMs = append(sp.VMs, in.VM)
		}
		if in.VM.Network != nil {
			if netHosts[in.VM.Network] == nil {
				netHosts[in.VM.Network] = map[*profiles.Host]bool{}
			}
			netHosts[in.VM.Network][h] = true
		}
	}
	for _, n := range p.Networks {
		hs := netHosts[n]
		if len(hs) == 0 && len(order) > 0 {
			sp := part(order[0])
			sp.Networks = append(sp.Networks, n)
			continue
		}
		for _, h := range order {
			if hs[h] {
				hosts[h].Networks = append(hosts[h].Networks, n)
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].Name < order[j].Name })
	out := make([]*profiles.Profile, 0, len(order))
	for _, h := range order {
		out = append(out, hosts[h])
	}
	return out
}

// planProfile connects to every host of p, places the instances (see
// place), observes each host and plans. A host that cannot be reached or
// observed does not stop the others when the profile has several: its
// HostPlan carries Err and the instances skipped because of it (partial
// failure; see Planned and Failed). When no host can be planned the error
// of the first is returned. On error the connections already opened are
// closed. Diagnostics are problems the profile author can fix (name
// clashes, missing pools, hosts at max_vms).
//
// Only the observer (observe.go) talks to the hosts; with opts.ReadKeys,
// the product keys of the VMs the plans create or replace are read once,
// after planning, and the plans carry them to Engine.Apply (see
// secretBundle).
func planProfile(ctx context.Context, p *profiles.Profile, connect Connector, opts Options) ([]*HostPlan, hcl.Diagnostics, error) {
	var (
		hps   []*HostPlan
		diags hcl.Diagnostics
	)
	conns := connectHosts(ctx, p, connect, opts)
	observeDomains(ctx, conns)
	unplaced, d := place(p, conns)
	diags = append(diags, d...)
	byHost := map[*profiles.Host]*hostConn{}
	for _, c := range conns {
		byHost[c.Host] = c
	}
	for _, part := range split(p) {
		h := part.Hosts[0]
		c := byHost[h]
		hp := &HostPlan{Host: h, URI: c.URI, HV: c.HV}
		hps = append(hps, hp)
		if c.Err != nil {
			hp.HV, hp.Err = nil, c.Err
		} else if o, err := observeHost(ctx, c.HV, part, h, c.URI, opts, c.Domains); err != nil {
			hp.Err = fmt.Errorf("plan on %s: %w", hp.URI, err)
		} else {
			hp.observed = o
			ds, plan, d, err := makePlan(part, h, c.URI, o, opts.settings())
			diags = append(diags, d...)
			hp.desired, hp.Plan = ds, plan
			if err != nil {
				hp.Err = fmt.Errorf("plan on %s: %w", hp.URI, err)
			}
		}
		if hp.Err != nil {
			for _, in := range part.Instances {
				hp.Skipped = append(hp.Skipped, in.Name)
			}
			hp.observed, hp.desired, hp.Plan = nil, nil, nil
		}
	}
	for _, u := range unplaced {
		for _, hp := range hps {
			if containsString(u.Hosts, hp.Host.Name) {
				hp.Skipped = append(hp.Skipped, u.Instance)
				break
			}
		}
	}
	if len(plannedOf(hps)) == 0 {
		closeConns(conns)
		for _, hp := range hps {
			if hp.Err != nil {
				return nil, diags, unwrapPlanErr(hp.Err, len(hps))
			}
		}
		return nil, diags, fmt.Errorf("profile %s has no host", p.Name)
	}
	planned := plannedOf(hps)
	var ids map[*profiles.License]keyID
	if opts.ReadKeys {
		sec := opts.keys.bundle()
		var err error
		if ids, err = sec.identify(ctx, keysToRead(p, planned), seatHolders(planned)); err != nil {
			closeAll(hps)
			return nil, diags, err
		}
		for _, hp := range planned {
			hp.Plan.secrets = sec
		}
	}
	diags = append(diags, checkSeats(p, planned, ids, opts.ReadKeys)...)
	diags = append(diags, incompleteSeatWarnings(hps)...)
	return hps, diags, nil
}

// unwrapPlanErr keeps the single-host error as it always was (the
// operation's own error, without the host prefix a multi-host report
// needs).
func unwrapPlanErr(err error, hosts int) error {
	if hosts == 1 {
		if u := errors.Unwrap(err); u != nil && strings.HasPrefix(err.Error(), "plan on ") {
			return u
		}
	}
	return err
}

// resolveAccel picks KVM when the host block allows it and the host really
// has it, TCG otherwise.
func resolveAccel(h *profiles.Host, hi virt.HostInfo) (virt.Accel, hcl.Diagnostics) {
	switch h.Accelerator {
	case profiles.AccelTCG:
		return virt.AccelTCG, nil
	case profiles.AccelKVM:
		if !hi.KVM {
			return virt.AccelKVM, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "KVM is not usable on this host",
				Detail:   fmt.Sprintf("The host block asks for accelerator \"kvm\" but %s cannot run KVM guests: %s. Use accelerator = \"auto\" (falls back to TCG, much slower) or fix KVM on the host (legacyvm doctor explains).", hi.URI, hi.KVMProblem),
				Subject:  h.DeclRange.Ptr(),
			}}
		}
		return virt.AccelKVM, nil
	}
	if hi.KVM {
		return virt.AccelKVM, nil
	}
	return virt.AccelTCG, nil
}

// incompleteSeatWarnings warns, for each vm with licences that the plan
// creates while a host was skipped, that the seats on that host could not
// be counted.
func incompleteSeatWarnings(hps []*HostPlan) hcl.Diagnostics {
	failed := failedOf(hps)
	if len(failed) == 0 {
		return nil
	}
	var names []string
	for _, hp := range failed {
		names = append(names, hp.Host.Name)
	}
	var diags hcl.Diagnostics
	seen := map[*profiles.VM]bool{}
	for _, hp := range plannedOf(hps) {
		for _, c := range hp.Plan.Changes {
			if c.Kind != KindVM || (c.Action != ActionCreate && c.Action != ActionReplace) || c.vm == nil {
				continue
			}
			vm := c.vm.Instance.VM
			if len(vm.Licenses) == 0 || seen[vm] {
				continue
			}
			seen[vm] = true
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning,
				Summary: "Seats counted without a host",
				Detail: fmt.Sprintf("Host %s did not answer, so the licence seats its VMs hold were not counted for vm %q. Apply again when it is back if a key may be in use there.",
					strings.Join(names, ", "), vm.Name),
				Subject: vm.LicensesRange.Ptr()})
		}
	}
	return diags
}
