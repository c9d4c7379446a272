package fake

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// snapshot is one internal snapshot of a domain.
type snapshot struct {
	name, description, parent string
	created                   time.Time
	state                     virt.DomainState
	memory                    bool
	// def is the persistent definition at snapshot time; live the running
	// one (nil for a shut-off snapshot).
	def  virt.DomainSpec
	live *virt.DomainSpec
	// gens is the content generation of each disk file, by path.
	gens map[string]uint64
	// guest is the guest agent's view of the guest (files, processes) in
	// a memory snapshot.
	guest *guest
}

func (h *Hypervisor) lookupSnapshot(op, dom, name string) (*domain, *snapshot, error) {
	d, err := h.lookupDomain(op, dom)
	if err != nil {
		return nil, nil, err
	}
	s, ok := d.snaps[name]
	if !ok {
		return nil, nil, errf(op, dom, virt.ErrNotFound, "domain snapshot not found: no domain snapshot with matching name '%s'", name)
	}
	return d, s, nil
}

func observeSnapshot(d *domain, s *snapshot) virt.Snapshot {
	return virt.Snapshot{
		Name:        s.name,
		Description: s.description,
		Parent:      s.parent,
		Created:     s.created,
		State:       s.state,
		Memory:      s.memory,
		Current:     d.current == s.name,
	}
}

// ListSnapshots implements virt.Hypervisor; snapshots are sorted by
// creation time, then name.
func (h *Hypervisor) ListSnapshots(ctx context.Context, dom string) ([]virt.Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "list snapshots of domain"
	if err := h.begin(ctx, "ListSnapshots", op, dom); err != nil {
		return nil, err
	}
	d, err := h.lookupDomain(op, dom)
	if err != nil {
		return nil, err
	}
	out := make([]virt.Snapshot, 0, len(d.snaps))
	for _, s := range d.snaps {
		out = append(out, observeSnapshot(d, s))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// CreateSnapshot implements virt.Hypervisor with libvirt 9.0's rules for
// internal snapshots: a running domain needs Memory (else ErrUnsupported),
// every disk must be qcow2, the name must be new.
func (h *Hypervisor) CreateSnapshot(ctx context.Context, dom string, spec virt.SnapshotSpec) (virt.Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "create snapshot of domain"
	if err := h.begin(ctx, "CreateSnapshot", op, dom); err != nil {
		return virt.Snapshot{}, err
	}
	d, err := h.lookupDomain(op, dom)
	if err != nil {
		return virt.Snapshot{}, err
	}
	now := h.now().Truncate(time.Second)
	if spec.Name == "" {
		spec.Name = strconv.FormatInt(now.Unix(), 10)
	}
	running := d.live != nil
	if _, err := domainxml.Snapshot(spec, running); err != nil {
		if errors.Is(err, virt.ErrUnsupported) {
			return virt.Snapshot{}, opErr(op, dom, err)
		}
		return virt.Snapshot{}, opErr(op, dom, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	if _, ok := d.snaps[spec.Name]; ok {
		return virt.Snapshot{}, errf(op, dom, virt.ErrExists, "domain snapshot %s already exists", spec.Name)
	}
	cur := d.def
	if running {
		cur = *d.live
	}
	gens := map[string]uint64{}
	var qcows []*file
	for _, disk := range cur.Disks {
		if disk.Device != virt.DeviceDisk {
			continue
		}
		f, ok := h.files[disk.Path]
		if !ok {
			return virt.Snapshot{}, errf(op, dom, virt.ErrNotFound, "cannot access storage file '%s'", disk.Path)
		}
		if f.format != "qcow2" || disk.Format != "qcow2" {
			return virt.Snapshot{}, errf(op, dom, virt.ErrUnsupported, "internal snapshot for disk %s unsupported for storage type %s", disk.Target, disk.Format)
		}
		gens[f.path] = f.gen
		qcows = append(qcows, f)
	}
	s := &snapshot{
		name:        spec.Name,
		description: spec.Description,
		parent:      d.current,
		created:     now,
		state:       d.state,
		memory:      running,
		def:         cloneSpec(d.def),
		gens:        gens,
	}
	if running {
		live := cloneSpec(*d.live)
		s.live = &live
		s.guest = d.guest.clone()
		// QEMU pauses the guest while it saves the state.
		h.emit(dom, virt.EventSuspended, "paused")
		h.emit(dom, virt.EventResumed, "unpaused")
	}
	for _, f := range qcows {
		f.internal = append(f.internal, spec.Name)
	}
	d.snaps[spec.Name] = s
	d.current = spec.Name
	return observeSnapshot(d, s), nil
}

// RevertSnapshot implements virt.Hypervisor. Disk content, the definition
// and the run state go back to the snapshot's. The events are libvirt
// 9.0's: a running domain stops (stopped/from-snapshot) because QEMU is
// restarted; a running snapshot starts it again (started/from-snapshot,
// resumed/from-snapshot); the definition is replaced
// (defined/from-snapshot).
func (h *Hypervisor) RevertSnapshot(ctx context.Context, dom, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "revert domain"
	if err := h.begin(ctx, "RevertSnapshot", op, dom); err != nil {
		return err
	}
	d, s, err := h.lookupSnapshot(op, dom, name)
	if err != nil {
		return err
	}
	if s.live != nil {
		if err := h.startable(*s.live); err != nil {
			return opErr(op, dom, err)
		}
	}
	if d.live != nil {
		h.stop(d, virt.StopFromSnapshot)
		h.emit(dom, virt.EventStopped, "from-snapshot")
	}
	for path, gen := range s.gens {
		if f, ok := h.files[path]; ok {
			f.gen = gen
		}
	}
	d.def = cloneSpec(s.def)
	if s.live != nil {
		live := cloneSpec(*s.live)
		d.live = &live
		d.guest = s.guest.clone()
		d.state = s.state
		d.vncPort = h.freeVNCPort()
		d.diskWrites = 0 // a new QEMU process
		h.emit(dom, virt.EventStarted, "from-snapshot")
		h.emit(dom, virt.EventResumed, "from-snapshot")
	}
	h.emit(dom, virt.EventDefined, "from-snapshot")
	d.current = name
	return nil
}

// DeleteSnapshot implements virt.Hypervisor: children move up to the
// deleted snapshot's parent, which becomes current if the deleted one was.
func (h *Hypervisor) DeleteSnapshot(ctx context.Context, dom, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "delete snapshot of domain"
	if err := h.begin(ctx, "DeleteSnapshot", op, dom); err != nil {
		return err
	}
	d, s, err := h.lookupSnapshot(op, dom, name)
	if err != nil {
		return err
	}
	for _, c := range d.snaps {
		if c.parent == name {
			c.parent = s.parent
		}
	}
	if d.current == name {
		d.current = s.parent
	}
	for path := range s.gens {
		f, ok := h.files[path]
		if !ok {
			continue
		}
		kept := f.internal[:0]
		for _, n := range f.internal {
			if n != name {
				kept = append(kept, n)
			}
		}
		f.internal = kept
	}
	delete(d.snaps, name)
	return nil
}
