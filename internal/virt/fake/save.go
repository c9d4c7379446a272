package fake

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// savedImage is what a memory image file made by SaveDomain holds.
type savedImage struct {
	domain, uuid string
	state        virt.DomainState
	live         virt.DomainSpec
	guest        *guest
}

// imageOverhead is what a memory image holds beside the RAM (device state,
// the definition): the fake's images are this much larger than the memory.
const imageOverhead = 1 << 20

func (h *Hypervisor) imageFile(op, dom, poolName, volume string) (string, error) {
	if volume == "" || volume != filepath.Base(volume) || strings.HasPrefix(volume, ".") {
		return "", errf(op, volume, virt.ErrInvalid, "a memory image volume name must be a plain file name")
	}
	p, err := h.lookupPool(op, poolName)
	if err != nil {
		return "", opErr(op, dom, err)
	}
	if !p.active {
		return "", errf(op, dom, virt.ErrInvalidState, "storage pool '%s' is not active", poolName)
	}
	return filepath.Join(p.path, volume), nil
}

// SaveDomain implements virt.Hypervisor: the image is a raw volume as large
// as the memory (plus device state) that remembers the running guest.
func (h *Hypervisor) SaveDomain(ctx context.Context, dom, poolName, volume string, opts virt.SaveOptions) (virt.Volume, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "save memory of domain"
	if err := h.begin(ctx, "SaveDomain", op, dom); err != nil {
		return virt.Volume{}, err
	}
	path, err := h.imageFile(op, dom, poolName, volume)
	if err != nil {
		return virt.Volume{}, err
	}
	if _, ok := h.files[path]; ok {
		return virt.Volume{}, errf(op, dom, virt.ErrExists, "volume %s already exists in pool %s", volume, poolName)
	}
	d, err := h.lookupDomain(op, dom)
	if err != nil {
		return virt.Volume{}, err
	}
	if d.live == nil {
		return virt.Volume{}, errf(op, dom, virt.ErrInvalidState, "domain is %s; only a running or paused domain has memory to save", d.state)
	}
	size := d.live.MemoryBytes + imageOverhead
	f := &file{path: path, format: "raw", capacity: size, allocation: size, mode: 0o600,
		image: &savedImage{domain: dom, uuid: d.uuid, state: d.state, live: cloneSpec(*d.live), guest: d.guest.clone()}}
	h.files[path] = f
	h.stop(d, virt.StopOther)
	h.emit(dom, virt.EventStopped, "saved")
	return observeVolume(poolName, f), nil
}

// RestoreDomain implements virt.Hypervisor: the guest runs again as it was
// saved, on its disks as they are now (which must exist, as QEMU opens
// them).
func (h *Hypervisor) RestoreDomain(ctx context.Context, dom, poolName, volume string, opts virt.SaveOptions) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "restore memory of domain"
	if err := h.begin(ctx, "RestoreDomain", op, dom); err != nil {
		return err
	}
	path, err := h.imageFile(op, dom, poolName, volume)
	if err != nil {
		return err
	}
	f, ok := h.files[path]
	if !ok {
		return errf(op, dom, virt.ErrNotFound, "no storage vol with matching name '%s'", volume)
	}
	d, err := h.lookupDomain(op, dom)
	if err != nil {
		return err
	}
	if d.state != virt.StateShutoff {
		return errf(op, dom, virt.ErrInvalidState, "domain is %s; it must be shut off", d.state)
	}
	img := f.image
	if img == nil {
		return errf(op, dom, virt.ErrInvalid, "volume %s is not a memory image", volume)
	}
	if img.domain != dom || img.uuid != d.uuid {
		return errf(op, dom, virt.ErrInvalid, "volume %s holds the memory of another domain", volume)
	}
	if err := h.startable(img.live); err != nil {
		return opErr(op, dom, err)
	}
	live := cloneSpec(img.live)
	d.live = &live
	d.state = img.state
	d.guest = img.guest.clone()
	d.vncPort = h.freeVNCPort()
	d.diskWrites = 0 // a new QEMU process
	h.emit(dom, virt.EventStarted, "restored")
	if img.state == virt.StateRunning {
		h.emit(dom, virt.EventResumed, "restored")
	}
	return nil
}
