package libvirt

import (
	"context"
	"fmt"
	"sort"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// revertTimeout bounds the wait for a reverted domain to reach the state
// its snapshot recorded (a running revert restarts QEMU and loads the
// saved RAM).
const revertTimeout = 2 * time.Minute

func observeSnapshot(op, dom string, s *libvirt.DomainSnapshot) (virt.Snapshot, error) {
	doc, err := s.GetXMLDesc(0)
	if err != nil {
		return virt.Snapshot{}, wrap(op, dom, err)
	}
	out, err := domainxml.ParseSnapshot(doc)
	if err != nil {
		return virt.Snapshot{}, fmt.Errorf("%s %q: %w", op, dom, err)
	}
	if out.Current, err = s.IsCurrent(0); err != nil {
		return virt.Snapshot{}, wrap(op, dom, err)
	}
	return out, nil
}

// ListSnapshots implements virt.Hypervisor; snapshots are sorted by
// creation time, parents before their children, then by name.
func (h *Hypervisor) ListSnapshots(ctx context.Context, dom string) ([]virt.Snapshot, error) {
	const op = "list snapshots of domain"
	d, err := h.lookupDomain(ctx, op, dom)
	if err != nil {
		return nil, err
	}
	defer d.Free()
	if err := alive(ctx, op, dom); err != nil {
		return nil, err
	}
	snaps, err := d.ListAllSnapshots(0)
	if err != nil {
		return nil, wrap(op, dom, err)
	}
	defer func() {
		for i := range snaps {
			snaps[i].Free()
		}
	}()
	out := make([]virt.Snapshot, 0, len(snaps))
	for i := range snaps {
		if err := alive(ctx, op, dom); err != nil {
			return nil, err
		}
		s, err := observeSnapshot(op, dom, &snaps[i])
		if isNotFoundWrapped(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sortSnapshots(out)
	return out, nil
}

// sortSnapshots orders by creation time (whole seconds), then depth in the
// tree (a parent taken in the same second comes first), then name.
func sortSnapshots(s []virt.Snapshot) {
	parent := map[string]string{}
	for _, x := range s {
		parent[x.Name] = x.Parent
	}
	depth := func(name string) int {
		n := 0
		for p := parent[name]; p != "" && n < len(s); p = parent[p] {
			n++
		}
		return n
	}
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Created.Equal(s[j].Created) {
			return s[i].Created.Before(s[j].Created)
		}
		if di, dj := depth(s[i].Name), depth(s[j].Name); di != dj {
			return di < dj
		}
		return s[i].Name < s[j].Name
	})
}

// CreateSnapshot implements virt.Hypervisor: an internal snapshot, with RAM
// when the domain runs (a full system snapshot; spec.Memory is required
// then), of the disks only when it is shut off. ATOMIC: all disks or none.
func (h *Hypervisor) CreateSnapshot(ctx context.Context, dom string, spec virt.SnapshotSpec) (snap virt.Snapshot, err error) {
	const op = "create snapshot of domain"
	// On a connection of its own (longcall.go): a memory snapshot takes
	// as long as writing the guest's RAM.
	err = h.longDomainCall(ctx, op, dom, func(d *libvirt.Domain) error {
		active, err := d.IsActive()
		if err != nil {
			return wrap(op, dom, err)
		}
		doc, err := domainxml.SnapshotXML(spec, active)
		if err != nil {
			return invalid(op, dom, err)
		}
		if err := alive(ctx, op, dom); err != nil {
			return err
		}
		if old, err := d.SnapshotLookupByName(spec.Name, 0); err == nil {
			old.Free()
			return failf(op, dom, virt.ErrExists, "snapshot %s already exists", spec.Name)
		} else if !isNotFound(err) {
			return wrap(op, dom, err)
		}
		if err := alive(ctx, op, dom); err != nil {
			return err
		}
		s, err := d.CreateSnapshotXML(doc, libvirt.DOMAIN_SNAPSHOT_CREATE_ATOMIC)
		if err != nil {
			return wrap(op, dom, err)
		}
		defer s.Free()
		snap, err = observeSnapshot(op, dom, s)
		return err
	})
	return snap, err
}

// RevertSnapshot implements virt.Hypervisor. libvirt 9.0 reverts a running
// domain by restarting QEMU from the snapshot; the call waits (polling,
// bounded by revertTimeout and ctx) until the domain is in the state the
// snapshot recorded.
func (h *Hypervisor) RevertSnapshot(ctx context.Context, dom, name string) error {
	const op = "revert domain"
	d, err := h.lookupDomain(ctx, op, dom)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := alive(ctx, op, dom); err != nil {
		return err
	}
	s, err := d.SnapshotLookupByName(name, 0)
	if err != nil {
		return wrap(op, dom, err)
	}
	defer s.Free()
	want, err := observeSnapshot(op, dom, s)
	if err != nil {
		return err
	}
	if err := alive(ctx, op, dom); err != nil {
		return err
	}
	if err := s.RevertToSnapshot(0); err != nil {
		return wrap(fmt.Sprintf("revert domain %q to snapshot", dom), name, err)
	}
	deadline := time.Now().Add(revertTimeout)
	for {
		state, _, err := d.GetState()
		if err != nil {
			return wrap(op, dom, err)
		}
		got := domainState(state)
		if got == want.State || (want.State != virt.StateRunning && want.State != virt.StatePaused && got == virt.StateShutoff) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("revert domain %q to snapshot %q: the domain is %s %v after the revert, want %s", dom, name, got, revertTimeout, want.State)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("revert domain %q to snapshot %q: waiting for state %s: %w", dom, name, want.State, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DeleteSnapshot implements virt.Hypervisor: this snapshot only (its
// children move up to its parent), metadata and the internal snapshot in
// the images.
func (h *Hypervisor) DeleteSnapshot(ctx context.Context, dom, name string) error {
	const op = "delete snapshot of domain"
	d, err := h.lookupDomain(ctx, op, dom)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := alive(ctx, op, dom); err != nil {
		return err
	}
	s, err := d.SnapshotLookupByName(name, 0)
	if err != nil {
		return wrap(op, dom, err)
	}
	defer s.Free()
	if err := alive(ctx, op, dom); err != nil {
		return err
	}
	return wrap(fmt.Sprintf("delete snapshot of domain %q", dom), name, s.Delete(0))
}
