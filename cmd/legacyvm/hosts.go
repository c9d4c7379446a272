package main

import (
	"context"
	"fmt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// profileTarget is one host a command works on.
type profileTarget struct{ name, uri string }

// profileTargets are the distinct hosts of the profile at path, in the
// profile's host order, and the profile's name.
func (f *Factory) profileTargets(path string) ([]profileTarget, string, error) {
	p, err := f.loadProfile(path)
	if err != nil {
		return nil, "", err
	}
	seen := map[string]bool{}
	var out []profileTarget
	for _, h := range p.Hosts {
		u := f.planOptions().HostURI(h)
		if !seen[u] {
			seen[u] = true
			out = append(out, profileTarget{h.Name, u})
		}
	}
	return out, p.Name, nil
}

// onEachHost connects to every target in turn and runs fn with the
// connection and the names of the profile's domains there. A host that
// cannot be reached (or whose domains cannot be listed) is skipped and
// returned, unless it is the only one: then its error is returned.
func (f *Factory) onEachHost(ctx context.Context, targets []profileTarget, profile string, fn func(t profileTarget, hv virt.Hypervisor, vms []string) error) ([]skippedHost, error) {
	var sk []skippedHost
	for _, t := range targets {
		err := func() error {
			hv, err := f.Connect(ctx, t.uri)
			if err != nil {
				return fmt.Errorf("connect to %s: %w", t.uri, err)
			}
			defer hv.Close()
			doms, err := hv.ListDomains(ctx)
			if err != nil {
				return fmt.Errorf("list domains on %s: %w", t.uri, err)
			}
			var vms []string
			for _, d := range doms {
				if d.Metadata != nil && d.Metadata.Profile == profile {
					vms = append(vms, d.Name)
				}
			}
			return fn(t, hv, vms)
		}()
		if err != nil {
			if len(targets) == 1 {
				return nil, err
			}
			sk = append(sk, skippedHost{Host: t.name, URI: t.uri, Error: err.Error()})
		}
	}
	return sk, nil
}
