package orchestrator

import (
	"context"
	"fmt"
	"sort"

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
	ProbeListen  ListenProbe
	OwnListeners map[string]bool
	// Keys, when set, lets planning read the product keys of the licences
	// whose VMs the plan creates or replaces and match them with the seats
	// on the host by fingerprint (see licenses.go). nil: planning reads no
	// secrets and matches seats by licence name.
	Keys KeyIdentifier
	// ImageUpdates names image blocks whose newest version every VM should
	// use (apply --image-update NAME): VMs on an older version are
	// replaced, as with image_version = "latest".
	ImageUpdates []string
}

// HostPlan is the plan for the part of a profile that lives on one host,
// with the connection it was made on.
type HostPlan struct {
	Host     *profiles.Host
	URI      string
	HV       virt.Hypervisor
	Observed *Observed
	Desired  *DesiredState
	Plan     *Plan
}

// Close closes every connection of the plans.
func CloseAll(hps []*HostPlan) {
	for _, hp := range hps {
		if hp.HV != nil {
			_ = hp.HV.Close()
		}
	}
}

// HostURI is the URI a host block resolves to.
func HostURI(h *profiles.Host, opts Options) string {
	if h != nil && h.URI != "" {
		return h.URI
	}
	if opts.DefaultURI != "" {
		return opts.DefaultURI
	}
	return profiles.DefaultURI
}

// Split divides a profile by host: each part holds the instances placed on
// that host and the networks they use (a network nobody uses goes with the
// first host). Parts are ordered by host name.
func Split(p *profiles.Profile) []*profiles.Profile {
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
	for _, vm := range p.VMs {
		sp := part(vm.Host)
		sp.VMs = append(sp.VMs, vm)
		if vm.Network != nil {
			if netHosts[vm.Network] == nil {
				netHosts[vm.Network] = map[*profiles.Host]bool{}
			}
			netHosts[vm.Network][vm.Host] = true
		}
	}
	for _, in := range p.Instances {
		sp := part(in.VM.Host)
		sp.Instances = append(sp.Instances, in)
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

// PlanProfile connects to every host of p, observes it and plans. On error
// the connections already opened are closed. Diagnostics are problems the
// profile author can fix (name clashes, missing pools).
func PlanProfile(ctx context.Context, p *profiles.Profile, connect Connector, opts Options) ([]*HostPlan, hcl.Diagnostics, error) {
	var (
		hps   []*HostPlan
		diags hcl.Diagnostics
	)
	for _, part := range Split(p) {
		h := part.Hosts[0]
		uri := HostURI(h, opts)
		hv, err := connect(ctx, uri)
		if err != nil {
			CloseAll(hps)
			return nil, diags, fmt.Errorf("connect to %s: %w", uri, err)
		}
		hp := &HostPlan{Host: h, URI: uri, HV: hv}
		hps = append(hps, hp)
		d, err := planHost(ctx, part, hp, opts)
		diags = append(diags, d...)
		if err != nil {
			CloseAll(hps)
			return nil, diags, err
		}
	}
	d, err := checkSeats(ctx, p, hps, opts.Keys)
	diags = append(diags, d...)
	if err != nil {
		CloseAll(hps)
		return nil, diags, err
	}
	return hps, diags, nil
}

func planHost(ctx context.Context, p *profiles.Profile, hp *HostPlan, opts Options) (hcl.Diagnostics, error) {
	poolName := hp.Host.StoragePool
	if poolName == "" {
		poolName = "default"
	}
	var images []string
	seen := map[string]bool{}
	for _, in := range p.Instances {
		d := in.VM.Disk
		img := d.Image
		if d.Install != nil {
			img = d.Install.ISO
		}
		if img != "" && !seen[img] {
			seen[img] = true
			images = append(images, img)
		}
	}
	o, err := ObserveHost(ctx, hp.HV, p.Name, poolName, images)
	if err != nil {
		return nil, err
	}
	hp.Observed = o
	if err := observeImageVersions(ctx, hp.HV, p, o); err != nil {
		return nil, err
	}
	accel, diags := resolveAccel(hp.Host, o.Host)
	isoDiags, err := checkInstallISOs(ctx, p, hp.URI, hp.HV, o)
	diags = append(diags, isoDiags...)
	if err != nil {
		return diags, err
	}
	pool := o.Pool
	if !o.PoolFound {
		pool = virt.Pool{Name: poolName, Path: "/var/lib/libvirt/images"}
	}
	diags = append(diags, checkImageRefs(p, o, opts.ImageUpdates)...)
	diags = append(diags, checkImageSources(p, hp.Host, hp.URI)...)
	t := Target{URI: hp.URI, Accel: accel, Pool: pool, SerialLogDir: opts.SerialLogDir, ImageUpdates: opts.ImageUpdates}
	ds, err := Desired(p, t, o)
	if err != nil {
		return diags, err
	}
	hp.Desired = ds
	if err := o.CompareFilters(ctx, hp.HV, ds); err != nil {
		return diags, err
	}
	if IsLocalURI(hp.URI) {
		o.ProbeDoors(ds, opts.ProbeListen, opts.OwnListeners)
	}
	plan, d := MakePlan(p, ds, o)
	hp.Plan = plan
	return append(diags, d...), nil
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
