package libvirt

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

func (h *Hypervisor) lookupPool(ctx context.Context, op, name string) (*libvirt.StoragePool, error) {
	if err := alive(ctx, op, name); err != nil {
		return nil, err
	}
	p, err := h.conn.LookupStoragePoolByName(name)
	if err != nil {
		return nil, wrap(op, name, err)
	}
	return p, nil
}

// poolPath returns the target directory of a pool.
func poolPath(op, name string, p *libvirt.StoragePool) (string, error) {
	doc, err := p.GetXMLDesc(0)
	if err != nil {
		return "", wrap(op, name, err)
	}
	var def libvirtxml.StoragePool
	if err := def.Unmarshal(doc); err != nil {
		return "", fmt.Errorf("%s %q: parse pool: %w", op, name, err)
	}
	if def.Target == nil {
		return "", nil
	}
	return def.Target.Path, nil
}

func observePool(op, name string, p *libvirt.StoragePool) (virt.Pool, error) {
	out := virt.Pool{Name: name}
	var err error
	if out.Path, err = poolPath(op, name, p); err != nil {
		return virt.Pool{}, err
	}
	if out.Active, err = p.IsActive(); err != nil {
		return virt.Pool{}, wrap(op, name, err)
	}
	if out.Active {
		info, err := p.GetInfo()
		if err != nil {
			return virt.Pool{}, wrap(op, name, err)
		}
		out.Available = info.Available
	}
	return out, nil
}

// GetPool implements virt.Hypervisor.
func (h *Hypervisor) GetPool(ctx context.Context, name string) (virt.Pool, error) {
	const op = "get storage pool"
	p, err := h.lookupPool(ctx, op, name)
	if err != nil {
		return virt.Pool{}, err
	}
	defer p.Free()
	return observePool(op, name, p)
}

// EnsurePool implements virt.Hypervisor: an existing pool must have the
// same directory (else ErrExists) and is started and autostarted; a new one
// is defined, built (the directory is created), started and autostarted,
// and undefined again if a later step fails.
func (h *Hypervisor) EnsurePool(ctx context.Context, name, path string) (virt.Pool, error) {
	const op = "ensure storage pool"
	doc, err := domainxml.PoolXML(name, path)
	if err != nil {
		return virt.Pool{}, invalid(op, name, err)
	}
	if err := alive(ctx, op, name); err != nil {
		return virt.Pool{}, err
	}
	p, err := h.conn.LookupStoragePoolByName(name)
	created := false
	switch {
	case err == nil:
	case isNotFound(err):
		if err := alive(ctx, op, name); err != nil {
			return virt.Pool{}, err
		}
		if p, err = h.conn.StoragePoolDefineXML(doc, 0); err != nil {
			return virt.Pool{}, wrap(op, name, err)
		}
		created = true
	default:
		return virt.Pool{}, wrap(op, name, err)
	}
	defer p.Free() // after the revert below has run
	r := newRevert()
	defer r.fail()
	if created {
		r.add(func() {
			if active, _ := p.IsActive(); active {
				_ = p.Destroy()
			}
			_ = p.Undefine()
		})
		if err := p.Build(libvirt.STORAGE_POOL_BUILD_NEW); err != nil {
			return virt.Pool{}, wrap("build storage pool", name, err)
		}
	} else {
		have, err := poolPath(op, name, p)
		if err != nil {
			return virt.Pool{}, err
		}
		if filepath.Clean(have) != filepath.Clean(path) {
			return virt.Pool{}, failf(op, name, virt.ErrExists, "pool '%s' already exists with directory %s", name, have)
		}
	}
	active, err := p.IsActive()
	if err != nil {
		return virt.Pool{}, wrap(op, name, err)
	}
	if !active {
		if err := alive(ctx, op, name); err != nil {
			return virt.Pool{}, err
		}
		if err := p.Create(0); err != nil {
			return virt.Pool{}, wrap("start storage pool", name, err)
		}
	}
	if err := p.SetAutostart(true); err != nil {
		return virt.Pool{}, wrap("autostart storage pool", name, err)
	}
	out, err := observePool(op, name, p)
	if err != nil {
		return virt.Pool{}, err
	}
	r.success()
	return out, nil
}

// RemovePool implements virt.Hypervisor: destroy (stop) and undefine,
// never delete (which would remove the directory).
func (h *Hypervisor) RemovePool(ctx context.Context, name string) error {
	const op = "remove storage pool"
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	p, err := h.conn.LookupStoragePoolByName(name)
	if err != nil {
		return wrap(op, name, err)
	}
	defer p.Free()
	active, err := p.IsActive()
	if err != nil {
		return wrap(op, name, err)
	}
	if active {
		if err := p.Destroy(); err != nil {
			return wrap("stop storage pool", name, err)
		}
	}
	if err := p.Undefine(); err != nil {
		return wrap(op, name, err)
	}
	return nil
}

// observeVolume reads a volume; pool is the pool's name.
func observeVolume(op, pool string, v *libvirt.StorageVol) (virt.Volume, error) {
	doc, err := v.GetXMLDesc(0)
	if err != nil {
		return virt.Volume{}, wrap(op, pool, err)
	}
	out, err := domainxml.ParseVolume(doc)
	if err != nil {
		return virt.Volume{}, fmt.Errorf("%s: %w", op, err)
	}
	out.Pool = pool
	return out, nil
}

// ListVolumes implements virt.Hypervisor; the pool is refreshed first (to
// see files copied into its directory) and volumes are sorted by name.
func (h *Hypervisor) ListVolumes(ctx context.Context, pool string) ([]virt.Volume, error) {
	const op = "list volumes of storage pool"
	p, err := h.lookupPool(ctx, op, pool)
	if err != nil {
		return nil, err
	}
	defer p.Free()
	if active, err := p.IsActive(); err != nil {
		return nil, wrap(op, pool, err)
	} else if !active {
		return nil, failf(op, pool, virt.ErrInvalidState, "storage pool is not active")
	}
	if err := p.Refresh(0); err != nil {
		return nil, wrap(op, pool, err)
	}
	if err := alive(ctx, op, pool); err != nil {
		return nil, err
	}
	vols, err := p.ListAllStorageVolumes(0)
	if err != nil {
		return nil, wrap(op, pool, err)
	}
	defer func() {
		for i := range vols {
			vols[i].Free()
		}
	}()
	out := make([]virt.Volume, 0, len(vols))
	for i := range vols {
		v, err := observeVolume(op, pool, &vols[i])
		if isNotFoundWrapped(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// volumeByPath looks a volume up by path; when no pool knows it, active
// pools are refreshed (the file may have been copied in since) and the
// lookup is tried once more. The caller frees the volume.
func (h *Hypervisor) volumeByPath(ctx context.Context, op, path string) (*libvirt.StorageVol, error) {
	if err := alive(ctx, op, path); err != nil {
		return nil, err
	}
	v, err := h.conn.LookupStorageVolByPath(path)
	if err == nil || !isNotFound(err) {
		return v, wrap(op, path, err)
	}
	pools, lerr := h.conn.ListAllStoragePools(libvirt.CONNECT_LIST_STORAGE_POOLS_ACTIVE)
	if lerr != nil {
		return nil, wrap(op, path, lerr)
	}
	for i := range pools {
		if dir, err := poolPath(op, path, &pools[i]); err == nil && filepath.Clean(dir) == filepath.Dir(filepath.Clean(path)) {
			_ = pools[i].Refresh(0)
		}
		pools[i].Free()
	}
	if err := alive(ctx, op, path); err != nil {
		return nil, err
	}
	v, err = h.conn.LookupStorageVolByPath(path)
	return v, wrap(op, path, err)
}

// VolumeByPath implements virt.Hypervisor.
func (h *Hypervisor) VolumeByPath(ctx context.Context, path string) (virt.Volume, error) {
	const op = "find volume"
	v, err := h.volumeByPath(ctx, op, path)
	if err != nil {
		return virt.Volume{}, err
	}
	defer v.Free()
	p, err := v.LookupPoolByVolume()
	if err != nil {
		return virt.Volume{}, wrap(op, path, err)
	}
	defer p.Free()
	pool, err := p.GetName()
	if err != nil {
		return virt.Volume{}, wrap(op, path, err)
	}
	return observeVolume(op, pool, v)
}

// CreateVolume implements virt.Hypervisor.
func (h *Hypervisor) CreateVolume(ctx context.Context, spec virt.VolumeSpec) (virt.Volume, error) {
	const op = "create volume"
	doc, err := domainxml.VolumeXML(spec)
	if err != nil {
		return virt.Volume{}, invalid(op, spec.Name, err)
	}
	p, err := h.lookupPool(ctx, op, spec.Pool)
	if err != nil {
		return virt.Volume{}, err
	}
	defer p.Free()
	if err := alive(ctx, op, spec.Name); err != nil {
		return virt.Volume{}, err
	}
	v, err := p.StorageVolCreateXML(doc, 0)
	if err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	defer v.Free()
	return observeVolume(op, spec.Pool, v)
}

// CloneVolume implements virt.Hypervisor: libvirt copies the source with
// qemu-img convert (flattened: no backing file). The source must be a
// volume of an active pool.
func (h *Hypervisor) CloneVolume(ctx context.Context, spec virt.VolumeSpec, sourcePath string) (virt.Volume, error) {
	const op = "clone volume"
	if spec.BackingPath != "" {
		return virt.Volume{}, failf(op, spec.Name, virt.ErrInvalid, "a full copy has no backing file")
	}
	doc, err := domainxml.VolumeXML(spec)
	if err != nil {
		return virt.Volume{}, invalid(op, spec.Name, err)
	}
	src, err := h.volumeByPath(ctx, op, sourcePath)
	if isNotFoundWrapped(err) {
		return virt.Volume{}, failf(op, spec.Name, virt.ErrNotFound,
			"source %s is in no storage pool; make its directory a pool first", sourcePath)
	}
	if err != nil {
		return virt.Volume{}, err
	}
	defer src.Free()
	p, err := h.lookupPool(ctx, op, spec.Pool)
	if err != nil {
		return virt.Volume{}, err
	}
	defer p.Free()
	if err := alive(ctx, op, spec.Name); err != nil {
		return virt.Volume{}, err
	}
	v, err := p.StorageVolCreateXMLFrom(doc, src, 0)
	if err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	defer v.Free()
	// libvirt copies the source at its own size and ignores a larger
	// capacity in the new volume's XML: grow the copy to spec's size.
	info, err := v.GetInfo()
	if err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	if info.Capacity < spec.CapacityBytes {
		if err := v.Resize(spec.CapacityBytes, 0); err != nil {
			return virt.Volume{}, wrap(op, spec.Name, err)
		}
	}
	return observeVolume(op, spec.Pool, v)
}

// uploadChunk is the most a stream callback reads from the source at once.
const uploadChunk = 256 << 10

// UploadVolume implements virt.Hypervisor: a raw volume of size bytes,
// filled through a libvirt stream. On failure the volume is deleted.
func (h *Hypervisor) UploadVolume(ctx context.Context, spec virt.VolumeSpec, r io.Reader, size int64) (virt.Volume, error) {
	const op = "upload volume"
	if size <= 0 {
		return virt.Volume{}, failf(op, spec.Name, virt.ErrInvalid, "size %d: want a positive size", size)
	}
	send := func(st *libvirt.Stream) (err, readErr error) {
		var sent int64
		buf := make([]byte, uploadChunk)
		err = st.SendAll(func(_ *libvirt.Stream, n int) ([]byte, error) {
			if readErr = ctx.Err(); readErr != nil {
				return nil, readErr
			}
			if left := size - sent; int64(n) > left {
				n = int(left)
			}
			if n <= 0 {
				return nil, nil // done
			}
			n = min(n, len(buf))
			got, err := io.ReadFull(r, buf[:n])
			sent += int64(got)
			if err != nil {
				readErr = fmt.Errorf("read upload data: %w (after %d of %d bytes)", err, sent, size)
				return nil, readErr
			}
			return buf[:got], nil
		})
		return err, readErr
	}
	observe := func(_ *libvirt.StoragePool, v *libvirt.StorageVol) (virt.Volume, error) {
		return observeVolume(op, spec.Pool, v)
	}
	return h.streamUpload(ctx, op, spec, size, 0, send, observe)
}

// streamUpload creates spec as a raw volume of size bytes in its pool,
// opens an upload stream on it (virStorageVolUpload with flags) and runs
// send on the stream; observe reads the filled volume. send returns the
// stream's error and the source's own (a read or context error), which is
// reported in preference. On any failure the volume is deleted.
func (h *Hypervisor) streamUpload(ctx context.Context, op string, spec virt.VolumeSpec, size int64, flags libvirt.StorageVolUploadFlags,
	send func(st *libvirt.Stream) (err, srcErr error),
	observe func(p *libvirt.StoragePool, v *libvirt.StorageVol) (virt.Volume, error)) (virt.Volume, error) {
	spec.Format, spec.CapacityBytes, spec.BackingPath = "raw", uint64(size), ""
	doc, err := domainxml.VolumeXML(spec)
	if err != nil {
		return virt.Volume{}, invalid(op, spec.Name, err)
	}
	p, err := h.lookupPool(ctx, op, spec.Pool)
	if err != nil {
		return virt.Volume{}, err
	}
	defer p.Free()
	if err := alive(ctx, op, spec.Name); err != nil {
		return virt.Volume{}, err
	}
	v, err := p.StorageVolCreateXML(doc, 0)
	if err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	defer v.Free()
	rv := newRevert()
	defer rv.fail()
	rv.add(func() { _ = v.Delete(0) })

	st, err := h.conn.NewStream(0)
	if err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	defer st.Free()
	if err := v.Upload(st, 0, uint64(size), flags); err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	if err, srcErr := send(st); err != nil {
		_ = st.Abort()
		if srcErr != nil {
			return virt.Volume{}, fmt.Errorf("%s %q: %w", op, spec.Name, srcErr)
		}
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	if err := st.Finish(); err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	out, err := observe(p, v)
	if err != nil {
		return virt.Volume{}, err
	}
	rv.success()
	return out, nil
}

// DownloadVolume implements virt.Hypervisor: the volume's file through a
// libvirt stream (virStorageVolDownload), so it works on remote hosts too.
func (h *Hypervisor) DownloadVolume(ctx context.Context, pool, name string, w io.Writer, max int64) (int64, error) {
	const op = "download volume"
	p, err := h.lookupPool(ctx, op, pool)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", op, name, err)
	}
	defer p.Free()
	if err := alive(ctx, op, name); err != nil {
		return 0, err
	}
	v, err := p.LookupStorageVolByName(name)
	if err != nil {
		return 0, wrap(op, name, err)
	}
	defer v.Free()
	st, err := h.conn.NewStream(0)
	if err != nil {
		return 0, wrap(op, name, err)
	}
	defer st.Free()
	if err := v.Download(st, 0, 0, 0); err != nil {
		return 0, wrap(op, name, err)
	}
	var got int64
	var sinkErr error
	err = st.RecvAll(func(_ *libvirt.Stream, b []byte) (int, error) {
		if sinkErr = ctx.Err(); sinkErr != nil {
			return 0, sinkErr
		}
		if max > 0 && got+int64(len(b)) > max {
			sinkErr = failf(op, name, virt.ErrInvalid, "holds more than %d bytes", max)
			return 0, sinkErr
		}
		n, werr := w.Write(b)
		got += int64(n)
		if werr != nil {
			sinkErr = fmt.Errorf("%s %q: write: %w", op, name, werr)
			return n, sinkErr
		}
		return n, nil
	})
	if err != nil {
		_ = st.Abort()
		if sinkErr != nil {
			return got, sinkErr
		}
		return got, wrap(op, name, err)
	}
	if err := st.Finish(); err != nil {
		return got, wrap(op, name, err)
	}
	return got, nil
}

// DeleteVolume implements virt.Hypervisor.
func (h *Hypervisor) DeleteVolume(ctx context.Context, pool, name string) error {
	const op = "delete volume"
	p, err := h.lookupPool(ctx, op, pool)
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, name, err)
	}
	defer p.Free()
	if err := alive(ctx, op, name); err != nil {
		return err
	}
	v, err := p.LookupStorageVolByName(name)
	if err != nil {
		return wrap(op, name, err)
	}
	defer v.Free()
	return wrap(op, name, v.Delete(0))
}
