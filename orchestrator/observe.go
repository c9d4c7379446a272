package orchestrator

import (
	"context"
	"errors"
	"fmt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Observed is what a host holds that matters to one profile. Collecting it
// is the only part of planning that talks to the host.
type Observed struct {
	Host virt.HostInfo
	// Domains, Networks, Filters hold every object of that kind on the
	// host, by name (ownership is decided by the planner).
	Domains  map[string]virt.Domain
	Networks map[string]virt.Network
	Filters  map[string]virt.Filter
	// FilterDiffs holds, for each desired filter that exists, how the host
	// differs from the desired rules (empty: identical).
	FilterDiffs map[string][]string
	// PoolFound is false when the target pool does not exist.
	PoolFound bool
	Pool      virt.Pool
	// Volumes in the target pool, by name.
	Volumes map[string]virt.Volume
	// Snapshots of domains the profile owns, by domain name.
	Snapshots map[string][]virt.Snapshot
	// ListenProblems maps the listen addresses of the profile's doors to
	// why they cannot be used ("" = free); nil when nobody probed (a
	// remote host). See ProbeDoors.
	ListenProblems map[string]string
	// Bindings are the traffic filters bound to the NICs of running
	// domains (listed only when a domain of the profile runs).
	Bindings []virt.FilterBinding
	// Images maps every golden image and install ISO the profile uses to
	// the volume libvirt knows at that path; missing paths are absent.
	Images map[string]virt.Volume
	// ImageVersions holds, per image block the profile's VMs clone, the
	// versions registered in the image's pool (sorted by version).
	ImageVersions map[string][]ImageVersion
}

// ObserveHost lists what the host holds: every domain, network and filter,
// the snapshots of the profile's domains, the volumes of poolName and the
// volumes libvirt knows at the image paths.
func ObserveHost(ctx context.Context, hv virt.Hypervisor, profile string, poolName string, images []string) (*Observed, error) {
	o := &Observed{
		Domains:       map[string]virt.Domain{},
		Networks:      map[string]virt.Network{},
		Filters:       map[string]virt.Filter{},
		FilterDiffs:   map[string][]string{},
		Volumes:       map[string]virt.Volume{},
		Snapshots:     map[string][]virt.Snapshot{},
		Images:        map[string]virt.Volume{},
		ImageVersions: map[string][]ImageVersion{},
	}
	var err error
	if o.Host, err = hv.HostInfo(ctx); err != nil {
		return nil, err
	}
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	running := false
	for _, d := range doms {
		o.Domains[d.Name] = d
		if d.Metadata != nil && d.Metadata.Profile == profile {
			running = running || d.State != virt.StateShutoff
			snaps, err := hv.ListSnapshots(ctx, d.Name)
			if err != nil && !errors.Is(err, virt.ErrNotFound) {
				return nil, err
			}
			o.Snapshots[d.Name] = snaps
		}
	}
	if running {
		if o.Bindings, err = hv.FilterBindings(ctx); err != nil {
			return nil, err
		}
	}
	nets, err := hv.ListNetworks(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		o.Networks[n.Name] = n
	}
	filters, err := hv.ListFilters(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range filters {
		o.Filters[f.Name] = f
	}
	if poolName != "" {
		pool, err := hv.GetPool(ctx, poolName)
		switch {
		case err == nil:
			o.PoolFound, o.Pool = true, pool
			vols, err := hv.ListVolumes(ctx, poolName)
			if err != nil {
				return nil, err
			}
			for _, v := range vols {
				o.Volumes[v.Name] = v
			}
		case errors.Is(err, virt.ErrNotFound):
		default:
			return nil, err
		}
	}
	for _, path := range images {
		v, err := hv.VolumeByPath(ctx, path)
		switch {
		case err == nil:
			o.Images[path] = v
		case errors.Is(err, virt.ErrNotFound):
		default:
			return nil, fmt.Errorf("look up image %s: %w", path, err)
		}
	}
	return o, nil
}

// CompareFilters records how the host's filters differ from the desired
// ones (FilterDiffs).
func (o *Observed) CompareFilters(ctx context.Context, hv virt.Hypervisor, ds *DesiredState) error {
	for _, dn := range ds.Networks {
		if _, ok := o.Filters[dn.Filter.Name]; !ok {
			continue
		}
		diffs, err := hv.FilterDiff(ctx, dn.Filter)
		if err != nil {
			return err
		}
		o.FilterDiffs[dn.Filter.Name] = diffs
	}
	return nil
}
