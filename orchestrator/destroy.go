package orchestrator

import (
	"context"
	"fmt"
	"strings"

	"github.com/legacyvm/legacyvm/profiles"
)

// PlanDestroy plans the removal of everything profile p owns on each of its
// hosts: its domains (with their disks, answer media and snapshots), its
// networks and their filters. Objects are recognised by legacyvm's metadata
// naming the profile; nothing else is touched. only, when not empty, limits
// the plan to those instances (networks are then kept).
func PlanDestroy(ctx context.Context, p *profiles.Profile, connect Connector, opts Options, only []string) ([]*HostPlan, error) {
	var hps []*HostPlan
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	for _, part := range Split(p) {
		h := part.Hosts[0]
		uri := HostURI(h, opts)
		hv, err := connect(ctx, uri)
		if err != nil {
			CloseAll(hps)
			return nil, fmt.Errorf("connect to %s: %w", uri, err)
		}
		hp := &HostPlan{Host: h, URI: uri, HV: hv}
		hps = append(hps, hp)
		pool := h.StoragePool
		if pool == "" {
			pool = "default"
		}
		o, err := ObserveHost(ctx, hv, p.Name, pool, nil)
		if err != nil {
			CloseAll(hps)
			return nil, err
		}
		hp.Observed = o
		plan := &Plan{Profile: p.Name, Host: uri, Accel: "-"}
		for _, name := range sortedKeys(o.Domains) {
			d := o.Domains[name]
			if !ownedBy(d.Metadata, p.Name) || (len(want) > 0 && !want[name]) {
				continue
			}
			dc := d
			plan.Changes = append(plan.Changes, Change{Kind: KindVM, Name: name, Action: ActionDelete,
				Destructive: true, Details: deleteDetails(&d, o), observedDomain: &dc})
		}
		if len(want) == 0 {
			for _, name := range sortedKeys(o.Networks) {
				n := o.Networks[name]
				if !ownedBy(n.Metadata, p.Name) {
					continue
				}
				nc := n
				filters := n.Metadata.Filters
				if len(filters) == 0 {
					filters = []string{name, name + "-guard"}
				}
				plan.Changes = append(plan.Changes, Change{Kind: KindNetwork, Name: name, Action: ActionDelete,
					Details: []string{fmt.Sprintf("and its filters %v", filters)}, observedNet: &nc, filterNames: filters})
			}
			// Filters of declared networks whose network is already gone
			// (an interrupted destroy), when they are provably ours: the
			// root filter carries the UUID legacyvm gives it, the guard is
			// referenced by that root. A filter made by hand with such a
			// name is left alone.
			for _, pn := range part.Networks {
				fn := FilterName(pn.Name)
				if _, ok := o.Networks[NetworkName(pn.Name)]; ok {
					continue
				}
				root, ok := o.Filters[fn]
				if !ok || !strings.EqualFold(root.UUID, filterUUID(p.Name, pn.Name)) {
					continue
				}
				for _, name := range []string{fn, fn + "-guard"} {
					if _, ok := o.Filters[name]; ok && (name == fn || containsString(root.Refs, name)) {
						plan.Changes = append(plan.Changes, Change{Kind: KindFilter, Name: name, Action: ActionDelete,
							Reasons: []string{"left over: its network is gone"}})
					}
				}
			}
		}
		// Answer media no VM owns: the profile's instances' are deleted,
		// others reported.
		instances := map[string]bool{}
		for _, in := range part.Instances {
			if len(want) == 0 || want[in.Name] {
				instances[in.Name] = true
			}
		}
		planOrphanAnswers(plan, o, pool, instances)
		hp.Plan = plan
	}
	return hps, nil
}
