package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/legacyvm/legacyvm/internal/virt"

	"github.com/legacyvm/legacyvm/profiles"
)

// planProfileDestroy plans the removal of everything profile p owns on each of its
// hosts: its domains (with their disks, answer media and snapshots), its
// networks and their filters. Objects are recognised by legacyvm's metadata
// naming the profile; nothing else is touched. A host that cannot be
// reached gets a HostPlan with Err (partial: the others are destroyed);
// when no host can be reached the first error is returned. only, when not empty, limits
// the plan to those instances (networks are then kept). Only the observer
// talks to the hosts (observeForDestroy); planHostDestroy is pure.
func planProfileDestroy(ctx context.Context, p *profiles.Profile, connect Connector, opts Options, only []string) ([]*HostPlan, error) {
	var hps []*HostPlan
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	// Names --only may use: the profile's instances and the domains it
	// owns on its hosts (a VM removed from the profile but not yet
	// destroyed). Anything else is a typo, not "nothing to do".
	known := map[string]bool{}
	for _, in := range p.Instances {
		known[in.Name] = true
	}
	for _, part := range split(p) {
		h := part.Hosts[0]
		uri := opts.HostURI(h)
		hv, err := connect(ctx, uri)
		if err != nil {
			hps = append(hps, &HostPlan{Host: h, URI: uri, Err: fmt.Errorf("connect to %s: %w", uri, err), Skipped: instanceNames(p, h, want)})
			continue
		}
		hp := &HostPlan{Host: h, URI: uri, HV: hv}
		hps = append(hps, hp)
		pool := poolOf(h)
		o, err := observeForDestroy(ctx, hv, p.Name, pool)
		if err != nil {
			_ = hv.Close()
			hp.HV, hp.Err, hp.Skipped = nil, fmt.Errorf("observe %s: %w", uri, err), instanceNames(p, h, want)
			continue
		}
		hp.observed = o
		plan, err := planHostDestroy(p, part, uri, pool, o, want, known)
		if err != nil {
			closeAll(hps)
			return nil, err
		}
		hp.Plan = plan
	}
	if err := checkNames(only, known, p.Name); err != nil {
		closeAll(hps)
		return nil, err
	}
	if len(plannedOf(hps)) == 0 {
		for _, hp := range hps {
			if hp.Err != nil {
				return nil, hp.Err
			}
		}
	}
	return hps, nil
}

// planHostDestroy plans the removal of what profile p owns on one host from
// what was observed there (pure): part is p's part on that host, want the
// instances to destroy (all when empty). The names of the domains p owns
// there are added to known.
func planHostDestroy(p, part *profiles.Profile, uri, pool string, o *observation, want, known map[string]bool) (*Plan, error) {
	plan := &Plan{Profile: p.Name, Host: uri, Accel: "-"}
	for _, name := range sortedKeys(o.Domains) {
		d := o.Domains[name]
		if ownedBy(d.Metadata, p.Name) {
			known[name] = true
		}
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
			fn := filterName(pn.Name)
			if _, ok := o.Networks[networkName(pn.Name)]; ok {
				continue
			}
			root, ok := o.Filters[fn]
			if !ok || !strings.EqualFold(root.UUID, filterUUID(p.Name, pn.Name)) {
				continue
			}
			for _, name := range []string{fn, fn + "-guard"} {
				if _, ok := o.Filters[name]; ok && (name == fn || containsString(root.Refs, name)) {
					plan.Changes = append(plan.Changes, Change{Kind: KindFilter, Name: name, Action: ActionDelete,
						Reasons: []Reason{{Code: ReasonFilterLeftOver}}})
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
	deleting := map[string]bool{}
	for _, c := range plan.Changes {
		if c.Kind == KindVM {
			deleting[c.Name] = true
		}
	}
	pools, err := unusedImagePools(o, deleting)
	if err != nil {
		return nil, err
	}
	plan.Changes = append(plan.Changes, pools...)
	return plan, nil
}

// checkNames returns an error naming every name that is not in known (the
// VMs of profile), with a suggestion for each and the names that exist.
func checkNames(names []string, known map[string]bool, profile string) error {
	var bad []string
	for _, n := range names {
		if known[n] {
			continue
		}
		msg := fmt.Sprintf("%q", n)
		if s := closestName(n, sortedKeys(known)); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		bad = append(bad, msg)
	}
	if len(bad) == 0 {
		return nil
	}
	if len(known) == 0 {
		return fmt.Errorf("profile %s has no VM named %s: it has no VMs", profile, strings.Join(bad, ", "))
	}
	return fmt.Errorf("profile %s has no VM named %s; its VMs are %s", profile, strings.Join(bad, ", "), strings.Join(sortedKeys(known), ", "))
}

// closestName is the known name nearest to n (edit distance at most 3),
// or "".
func closestName(n string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		if d := levenshtein.Distance(n, k, nil); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// instanceNames lists the profile's instances that may live on host h
// (fixed there, or placed by policy with h among the candidates), limited
// to want when it is not empty.
func instanceNames(p *profiles.Profile, h *profiles.Host, want map[string]bool) []string {
	var out []string
	for _, in := range p.Instances {
		if len(want) > 0 && !want[in.Name] {
			continue
		}
		if in.VM.Host == h || (in.VM.Placement != profiles.PlacementFixed && containsHost(in.VM.Candidates, h)) {
			out = append(out, in.Name)
		}
	}
	return out
}

func containsHost(hs []*profiles.Host, h *profiles.Host) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

// unusedImagePools plans the removal of the storage pools legacyvm made for
// the image directories of the domains being deleted (named by
// imagePoolName, with that directory) that no other managed domain's image
// or ISO lives in. Only the pool definitions go: the directories and their
// files stay. Pools legacyvm did not make are never listed. It reads the
// pool lookups observeForDestroy made (pure).
func unusedImagePools(o *observation, deleting map[string]bool) ([]Change, error) {
	used := map[string]bool{}
	var candidates []string
	for _, name := range sortedKeys(o.Domains) {
		d := o.Domains[name]
		if d.Metadata == nil || d.Metadata.Image == "" {
			continue
		}
		dir := filepath.Dir(filepath.Clean(d.Metadata.Image))
		if deleting[name] {
			candidates = append(candidates, dir)
		} else {
			used[dir] = true
		}
	}
	var out []Change
	seen := map[string]bool{}
	for _, dir := range candidates {
		if used[dir] || seen[dir] {
			continue
		}
		seen[dir] = true
		name, look := o.imagePool(dir)
		p, err := look.pool, look.err
		if errors.Is(err, virt.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up storage pool %s: %w", name, err)
		}
		if filepath.Clean(p.Path) != dir {
			continue // not the pool legacyvm makes for dir
		}
		out = append(out, Change{Kind: KindPool, Name: name, Action: ActionDelete,
			Reasons: []Reason{{Code: ReasonImagesUnused, Subject: dir}},
			Details: []string{"removes the pool definition only: " + dir + " and its files stay"},
			pool:    &poolChange{Name: name, Path: dir}})
	}
	return out, nil
}
