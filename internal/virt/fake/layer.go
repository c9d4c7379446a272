package fake

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// PrepareLayer implements virt.Hypervisor: a qcow2 overlay holding the
// internal snapshot mark, refused while its backing file is open in a
// running domain (qemu-img cannot take the image lock then).
func (h *Hypervisor) PrepareLayer(ctx context.Context, spec virt.VolumeSpec, mark string) (virt.Volume, error) {
	const op = "prepare layer"
	if spec.BackingPath == "" || spec.Format != "qcow2" {
		return virt.Volume{}, errf(op, spec.Name, virt.ErrInvalid, "a layer is a qcow2 overlay of a disk")
	}
	if _, err := domainxml.Snapshot(virt.SnapshotSpec{Name: mark}, false); err != nil {
		return virt.Volume{}, opErr(op, spec.Name, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	h.mu.Lock()
	busy := h.openBy(filepath.Clean(spec.BackingPath))
	h.mu.Unlock()
	if busy != "" {
		return virt.Volume{}, errf(op, spec.Name, virt.ErrInUse, "qemu-img: Could not open backing file: Failed to get shared \"write\" lock (domain %s runs on %s)", busy, spec.BackingPath)
	}
	vol, err := h.CreateVolume(ctx, spec)
	if err != nil {
		return virt.Volume{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin(ctx, "PrepareLayer", op, spec.Name); err != nil {
		delete(h.files, vol.Path)
		return virt.Volume{}, err
	}
	f := h.files[vol.Path]
	f.internal = append(f.internal, mark)
	return vol, nil
}

// openBy names a running domain whose live definition opens path, or "".
func (h *Hypervisor) openBy(path string) string {
	for name, d := range h.domains {
		if d.live == nil {
			continue
		}
		for _, disk := range d.live.Disks {
			if filepath.Clean(disk.Path) == path {
				return name
			}
		}
	}
	return ""
}

// SnapshotToLayer implements virt.Hypervisor. The layer's content is its
// backing file's as it is now (frozen from here on: nothing writes to a
// backing file), which is also what its mark reverts to.
func (h *Hypervisor) SnapshotToLayer(ctx context.Context, dom string, spec virt.LayerSnapshotSpec) (virt.Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "take layered baseline of domain"
	if err := h.begin(ctx, "SnapshotToLayer", op, dom); err != nil {
		return virt.Snapshot{}, err
	}
	if _, err := domainxml.Snapshot(virt.SnapshotSpec{Name: spec.Name, Description: spec.Description}, false); err != nil {
		return virt.Snapshot{}, opErr(op, dom, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	imagePath, err := h.imageFile(op, dom, spec.Image.Pool, spec.Image.Name)
	if err != nil {
		return virt.Snapshot{}, err
	}
	lp, err := h.lookupPool(op, spec.Layer.Pool)
	if err != nil {
		return virt.Snapshot{}, opErr(op, dom, err)
	}
	layerPath := filepath.Join(lp.path, spec.Layer.Name)
	layer, ok := h.files[layerPath]
	if !ok {
		return virt.Snapshot{}, errf(op, dom, virt.ErrNotFound, "no storage vol with matching name '%s'", spec.Layer.Name)
	}
	if layer.backing == "" {
		return virt.Snapshot{}, errf(op, dom, virt.ErrInvalid, "volume %s is not an overlay", spec.Layer.Name)
	}
	d, err := h.lookupDomain(op, dom)
	if err != nil {
		return virt.Snapshot{}, err
	}
	if d.live == nil || (d.state != virt.StateRunning && d.state != virt.StatePaused) {
		return virt.Snapshot{}, errf(op, dom, virt.ErrInvalidState, "domain is %s; only a running domain has memory to keep", d.state)
	}
	if _, ok := d.snaps[spec.Name]; ok {
		return virt.Snapshot{}, errf(op, dom, virt.ErrExists, "snapshot %s already exists", spec.Name)
	}
	i := slices.IndexFunc(d.live.Disks, func(x virt.DiskSpec) bool { return x.Target == spec.Target })
	if i < 0 {
		return virt.Snapshot{}, errf(op, dom, virt.ErrInvalid, "domain has no file disk %s", spec.Target)
	}
	img, haveImage := h.files[imagePath]
	switch filepath.Clean(d.live.Disks[i].Path) {
	case layerPath:
		if !haveImage || img.image == nil {
			return virt.Snapshot{}, errf(op, dom, virt.ErrInvalidState, "domain runs on layer %s but its memory image %s is missing", spec.Layer.Name, spec.Image.Name)
		}
	case layer.backing:
		if haveImage {
			return virt.Snapshot{}, errf(op, dom, virt.ErrExists, "volume %s already exists in pool %s", spec.Image.Name, spec.Image.Pool)
		}
		if !slices.Contains(layer.internal, spec.Name) {
			// qemu-img would fail at the first revert; the fake says so now.
			return virt.Snapshot{}, errf(op, dom, virt.ErrInvalid, "layer %s holds no snapshot %s", spec.Layer.Name, spec.Name)
		}
		if frozen := h.files[layer.backing]; frozen != nil {
			layer.gen = frozen.gen
		}
		d.live.Disks[i].Path = layerPath
		if j := slices.IndexFunc(d.def.Disks, func(x virt.DiskSpec) bool { return x.Target == spec.Target }); j >= 0 {
			d.def.Disks[j].Path = layerPath
		}
		size := d.live.MemoryBytes + imageOverhead
		img = &file{path: imagePath, format: "raw", capacity: size, allocation: size, mode: 0o600,
			image: &savedImage{domain: dom, uuid: d.uuid, state: d.state, live: cloneSpec(*d.live), guest: d.guest.clone()}}
		h.files[imagePath] = img
		// QEMU pauses the guest while it writes the memory.
		h.emit(dom, virt.EventSuspended, "paused")
		h.emit(dom, virt.EventResumed, "unpaused")
	default:
		return virt.Snapshot{}, errf(op, dom, virt.ErrInvalid, "layer %s is not on top of disk %s (%s)", spec.Layer.Name, spec.Target, d.live.Disks[i].Path)
	}
	// The mark is the empty layer: the frozen backing file's content.
	markGen := layer.gen
	if frozen := h.files[layer.backing]; frozen != nil {
		markGen = frozen.gen
	}
	// The image restores onto the layer.
	if k := slices.IndexFunc(img.image.live.Disks, func(x virt.DiskSpec) bool { return x.Target == spec.Target }); k >= 0 {
		img.image.live.Disks[k].Path = layerPath
	}
	s := &snapshot{
		name:        spec.Name,
		description: spec.Description,
		parent:      d.current,
		created:     h.now().Truncate(time.Second),
		state:       virt.StateShutoff,
		def:         cloneSpec(d.def),
		gens:        map[string]uint64{layerPath: markGen},
	}
	if !slices.Contains(layer.internal, spec.Name) {
		layer.internal = append(layer.internal, spec.Name)
	}
	d.snaps[spec.Name] = s
	d.current = spec.Name
	return observeSnapshot(d, s), nil
}
