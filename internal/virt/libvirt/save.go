package libvirt

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// sparseSaveVersion is the first libvirt (daemon) version whose QEMU driver
// writes memory images in the sparse format ("image_format" = "sparse":
// every RAM page at a fixed offset, read back in parallel). libvirt 9.0
// (Debian 12) does not have it; SaveDomain uses it where it exists.
const sparseSaveVersion = 11_002_000

// restoreTimeout bounds the wait for a restored domain to report running.
const restoreTimeout = 2 * time.Minute

func saveFlags(opts virt.SaveOptions) libvirt.DomainSaveRestoreFlags {
	var f libvirt.DomainSaveRestoreFlags
	if opts.BypassCache {
		f |= libvirt.DOMAIN_SAVE_BYPASS_CACHE
	}
	return f
}

// saveFeatures lists the memory-image features newer than libvirt 9.0 that
// SaveDomain uses on a daemon of version v.
func saveFeatures(v uint32) []string {
	if v >= sparseSaveVersion {
		return []string{"sparse"}
	}
	return nil
}

// imagePath resolves a memory image volume to its file: pool must be an
// active directory pool and volume a plain file name.
func (h *Hypervisor) imagePath(ctx context.Context, op, pool, volume string) (*libvirt.StoragePool, string, error) {
	if volume == "" || volume != filepath.Base(volume) || strings.HasPrefix(volume, ".") {
		return nil, "", failf(op, volume, virt.ErrInvalid, "a memory image volume name must be a plain file name")
	}
	p, err := h.lookupPool(ctx, op, pool)
	if err != nil {
		return nil, "", err
	}
	dir, err := poolPath(op, pool, p)
	if err != nil {
		p.Free()
		return nil, "", err
	}
	if dir == "" {
		p.Free()
		return nil, "", failf(op, pool, virt.ErrUnsupported, "storage pool has no target directory")
	}
	return p, filepath.Join(dir, volume), nil
}

// SaveDomain implements virt.Hypervisor: virDomainSaveFlags into the pool's
// directory (virDomainSaveParams with the sparse image format on libvirt
// 11.2+), then a pool refresh so the image is a volume of the pool (listed,
// deleted, downloaded like any other).
func (h *Hypervisor) SaveDomain(ctx context.Context, dom, pool, volume string, opts virt.SaveOptions) (virt.Volume, error) {
	const op = "save memory of domain"
	p, path, err := h.imagePath(ctx, op, pool, volume)
	if err != nil {
		return virt.Volume{}, err
	}
	defer p.Free()
	if v, err := p.LookupStorageVolByName(volume); err == nil {
		v.Free()
		return virt.Volume{}, failf(op, dom, virt.ErrExists, "volume %s already exists in pool %s", volume, pool)
	} else if !isNotFound(err) {
		return virt.Volume{}, wrap(op, dom, err)
	}
	d, err := h.lookupDomain(ctx, op, dom)
	if err != nil {
		return virt.Volume{}, err
	}
	defer d.Free()
	state, _, err := d.GetState()
	if err != nil {
		return virt.Volume{}, wrap(op, dom, err)
	}
	if s := domainState(state); s != virt.StateRunning && s != virt.StatePaused {
		return virt.Volume{}, failf(op, dom, virt.ErrInvalidState, "domain is %s; only a running or paused domain has memory to save", s)
	}
	if err := alive(ctx, op, dom); err != nil {
		return virt.Volume{}, err
	}
	ver, err := h.conn.GetLibVersion()
	if err != nil {
		return virt.Volume{}, wrap(op, dom, err)
	}
	// On a spare connection (longcall.go): writing the memory takes seconds.
	err = h.longDomainCall(ctx, op, dom, func(d *libvirt.Domain) error {
		if len(saveFeatures(ver)) > 0 {
			return d.SaveParams(libvirt.DomainSaveRestoreParams{
				FileSet: true, File: path,
				ImageFormatSet: true, ImageFormat: "sparse",
			}, saveFlags(opts))
		}
		return d.SaveFlags(path, "", saveFlags(opts))
	})
	// Refresh even after a failure: libvirt may have left a partial file,
	// which must be a volume to be deleted through the API.
	_ = p.Refresh(0)
	if err != nil {
		if v, lerr := p.LookupStorageVolByName(volume); lerr == nil {
			_ = v.Delete(0)
			v.Free()
		}
		return virt.Volume{}, wrap(op, dom, err)
	}
	v, err := p.LookupStorageVolByName(volume)
	if err != nil {
		return virt.Volume{}, wrap(op, dom, err)
	}
	defer v.Free()
	return observeVolume(op, pool, v)
}

// RestoreDomain implements virt.Hypervisor: virDomainRestoreFlags from the
// volume's file. libvirt checks that the image belongs to this domain (same
// name and UUID); the domain comes back in the state it was saved in.
func (h *Hypervisor) RestoreDomain(ctx context.Context, dom, pool, volume string, opts virt.SaveOptions) error {
	const op = "restore memory of domain"
	p, path, err := h.imagePath(ctx, op, pool, volume)
	if err != nil {
		return err
	}
	defer p.Free()
	v, err := p.LookupStorageVolByName(volume)
	if err != nil {
		return wrap(op+" "+fmt.Sprintf("%q from volume", dom), volume, err)
	}
	v.Free()
	d, err := h.lookupDomain(ctx, op, dom)
	if err != nil {
		return err
	}
	defer d.Free()
	state, _, err := d.GetState()
	if err != nil {
		return wrap(op, dom, err)
	}
	if state != libvirt.DOMAIN_SHUTOFF {
		return failf(op, dom, virt.ErrInvalidState, "domain is %s; it must be shut off", domainState(state))
	}
	if err := alive(ctx, op, dom); err != nil {
		return err
	}
	// The image names the domain it restores: refuse an image of another
	// domain (libvirt would start that one).
	doc, err := h.conn.DomainSaveImageGetXMLDesc(path, 0)
	if err != nil {
		return wrap(op, dom, err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(doc); err != nil {
		return fmt.Errorf("%s %q: parse the image's definition: %w", op, dom, err)
	}
	uuid, err := d.GetUUIDString()
	if err != nil {
		return wrap(op, dom, err)
	}
	if def.Name != dom || !strings.EqualFold(def.UUID, uuid) {
		return failf(op, dom, virt.ErrInvalid, "volume %s holds the memory of another domain", volume)
	}
	// On a spare connection (longcall.go): a restore launches QEMU,
	// instantiates the filters and reads the memory back.
	if err := h.longCall(ctx, op, dom, func(c *libvirt.Connect) error {
		return c.DomainRestoreFlags(path, "", saveFlags(opts))
	}); err != nil {
		return wrap(op, dom, err)
	}
	deadline := time.Now().Add(restoreTimeout)
	for {
		state, _, err := d.GetState()
		if err != nil {
			return wrap(op, dom, err)
		}
		if s := domainState(state); s == virt.StateRunning || s == virt.StatePaused {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %q: the domain is %s %v after the restore", op, dom, domainState(state), restoreTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %q: waiting for it to run: %w", op, dom, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
