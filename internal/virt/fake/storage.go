package fake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// file is a host file: a volume when it sits in a pool's directory.
type file struct {
	path, format           string
	capacity, allocation   uint64
	backing, backingFormat string
	mode                   uint32
	// gen is the content generation (see WriteDisk).
	gen uint64
	// sum is the SHA-256 of uploaded content.
	sum [sha256.Size]byte
	// data is the uploaded content (DownloadVolume); nil for files the
	// fake never received bytes for.
	data []byte
	// internal lists the internal snapshots inside a qcow2 file.
	internal []string
	// uploaded: sum holds the content's SHA-256.
	uploaded bool
	// image is the content of a memory image made by SaveDomain.
	image *savedImage
}

// pool is a directory pool.
type pool struct {
	name, path string
	active     bool
}

// qcow2Header is the allocation of a fresh qcow2 file.
const qcow2Header = 196608

// PutFile creates (or replaces) a host file outside libvirt's control, the
// way a user copies a golden image into place. It becomes a volume once its
// directory is a pool.
func (h *Hypervisor) PutFile(path, format string, capacity uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.putFile(path, format, capacity)
}

func (h *Hypervisor) putFile(path, format string, capacity uint64) {
	path = filepath.Clean(path)
	alloc := capacity
	if format == "qcow2" {
		alloc = qcow2Header
	}
	h.files[path] = &file{path: path, format: format, capacity: capacity, allocation: alloc, mode: 0o644}
}

// DiskGeneration returns the content generation of the file at path.
func (h *Hypervisor) DiskGeneration(path string) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.files[filepath.Clean(path)]
	if !ok {
		return 0, errf("read file", path, virt.ErrNotFound, "no such file")
	}
	return f.gen, nil
}

// InternalSnapshots lists the internal snapshots stored inside the file at
// path (what `qemu-img snapshot -l` shows).
func (h *Hypervisor) InternalSnapshots(path string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.files[filepath.Clean(path)]
	if !ok {
		return nil, errf("read file", path, virt.ErrNotFound, "no such file")
	}
	return append([]string(nil), f.internal...), nil
}

// FileSum returns the SHA-256 of the bytes uploaded into the file at path
// (zero for files that were not uploaded).
func (h *Hypervisor) FileSum(path string) ([sha256.Size]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.files[filepath.Clean(path)]
	if !ok {
		return [sha256.Size]byte{}, errf("read file", path, virt.ErrNotFound, "no such file")
	}
	return f.sum, nil
}

func (h *Hypervisor) lookupPool(op, name string) (*pool, error) {
	p, ok := h.pools[name]
	if !ok {
		return nil, errf(op, name, virt.ErrNotFound, "no storage pool with matching name '%s'", name)
	}
	return p, nil
}

// poolOf returns the active pool whose directory holds path.
func (h *Hypervisor) poolOf(path string) *pool {
	dir := filepath.Dir(path)
	for _, name := range sortedKeys(h.pools) {
		if p := h.pools[name]; p.active && p.path == dir {
			return p
		}
	}
	return nil
}

func (h *Hypervisor) observePool(p *pool) virt.Pool {
	var used uint64
	for _, f := range h.files {
		if filepath.Dir(f.path) == p.path {
			used += f.allocation
		}
	}
	avail := uint64(0)
	if used < h.poolSize {
		avail = h.poolSize - used
	}
	return virt.Pool{Name: p.name, Path: p.path, Active: p.active, Available: avail}
}

func observeVolume(poolName string, f *file) virt.Volume {
	return virt.Volume{
		Pool:            poolName,
		Name:            filepath.Base(f.path),
		Path:            f.path,
		Format:          f.format,
		CapacityBytes:   f.capacity,
		AllocationBytes: f.allocation,
		BackingPath:     f.backing,
		Mode:            f.mode,
	}
}

// GetPool implements virt.Hypervisor.
func (h *Hypervisor) GetPool(ctx context.Context, name string) (virt.Pool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "get storage pool"
	if err := h.begin(ctx, "GetPool", op, name); err != nil {
		return virt.Pool{}, err
	}
	p, err := h.lookupPool(op, name)
	if err != nil {
		return virt.Pool{}, err
	}
	return h.observePool(p), nil
}

// EnsurePool implements virt.Hypervisor. An existing pool is started if it
// is inactive; it is an error (ErrExists) when it has another directory or
// another pool already owns the directory.
func (h *Hypervisor) EnsurePool(ctx context.Context, name, path string) (virt.Pool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "ensure storage pool"
	if err := h.begin(ctx, "EnsurePool", op, name); err != nil {
		return virt.Pool{}, err
	}
	if _, err := domainxml.Pool(name, path); err != nil {
		return virt.Pool{}, opErr(op, name, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	path = filepath.Clean(path)
	if p, ok := h.pools[name]; ok {
		if p.path != path {
			return virt.Pool{}, errf(op, name, virt.ErrExists, "pool '%s' already exists with directory %s", name, p.path)
		}
		p.active = true
		return h.observePool(p), nil
	}
	for _, other := range h.pools {
		if other.path == path {
			return virt.Pool{}, errf(op, name, virt.ErrExists, "pool '%s' has the same directory %s", other.name, path)
		}
	}
	p := &pool{name: name, path: path, active: true}
	h.pools[name] = p
	return h.observePool(p), nil
}

// RemovePool implements virt.Hypervisor; the files in the pool's
// directory stay.
func (h *Hypervisor) RemovePool(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "remove storage pool"
	if err := h.begin(ctx, "RemovePool", op, name); err != nil {
		return err
	}
	if _, err := h.lookupPool(op, name); err != nil {
		return err
	}
	delete(h.pools, name)
	return nil
}

// ListVolumes implements virt.Hypervisor; volumes are sorted by name.
func (h *Hypervisor) ListVolumes(ctx context.Context, poolName string) ([]virt.Volume, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "list volumes of storage pool"
	if err := h.begin(ctx, "ListVolumes", op, poolName); err != nil {
		return nil, err
	}
	p, err := h.lookupPool(op, poolName)
	if err != nil {
		return nil, err
	}
	if !p.active {
		return nil, errf(op, poolName, virt.ErrInvalidState, "storage pool '%s' is not active", poolName)
	}
	var out []virt.Volume
	for _, path := range sortedKeys(h.files) {
		if f := h.files[path]; filepath.Dir(path) == p.path {
			out = append(out, observeVolume(p.name, f))
		}
	}
	return out, nil
}

// VolumeByPath implements virt.Hypervisor.
func (h *Hypervisor) VolumeByPath(ctx context.Context, path string) (virt.Volume, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "find volume"
	if err := h.begin(ctx, "VolumeByPath", op, path); err != nil {
		return virt.Volume{}, err
	}
	path = filepath.Clean(path)
	f, ok := h.files[path]
	p := h.poolOf(path)
	if !ok || p == nil {
		return virt.Volume{}, errf(op, path, virt.ErrNotFound, "no storage vol with matching path '%s'", path)
	}
	return observeVolume(p.name, f), nil
}

// newVolume checks spec and returns the path the volume gets.
func (h *Hypervisor) newVolume(op string, spec virt.VolumeSpec) (string, error) {
	p, err := h.lookupPool(op, spec.Pool)
	if err != nil {
		return "", opErr(op, spec.Name, err)
	}
	if !p.active {
		return "", errf(op, spec.Name, virt.ErrInvalidState, "storage pool '%s' is not active", spec.Pool)
	}
	check := spec
	if check.CapacityBytes == 0 {
		check.CapacityBytes = 1 // UploadVolume and CloneVolume size it themselves
	}
	if strings.Contains(spec.Name, "/") {
		return "", errf(op, spec.Name, virt.ErrInvalid, "volume name %q contains a slash", spec.Name)
	}
	if _, err := domainxml.Volume(check); err != nil {
		return "", opErr(op, spec.Name, fmt.Errorf("%w: %v", virt.ErrInvalid, err))
	}
	path := filepath.Join(p.path, spec.Name)
	if _, ok := h.files[path]; ok {
		return "", errf(op, spec.Name, virt.ErrExists, "storage volume name '%s' already in use", spec.Name)
	}
	return path, nil
}

func volMode(m uint32) uint32 {
	if m == 0 {
		return 0o600
	}
	return m
}

// CreateVolume implements virt.Hypervisor. An overlay's backing file must
// exist; its capacity is at least the backing file's.
func (h *Hypervisor) CreateVolume(ctx context.Context, spec virt.VolumeSpec) (virt.Volume, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "create volume"
	if err := h.begin(ctx, "CreateVolume", op, spec.Name); err != nil {
		return virt.Volume{}, err
	}
	path, err := h.newVolume(op, spec)
	if err != nil {
		return virt.Volume{}, err
	}
	f := &file{path: path, format: spec.Format, capacity: spec.CapacityBytes, mode: volMode(spec.Mode)}
	if spec.BackingPath != "" {
		if spec.Format != "qcow2" {
			return virt.Volume{}, errf(op, spec.Name, virt.ErrInvalid, "backing storage needs a qcow2 volume, not %s", spec.Format)
		}
		b, ok := h.files[filepath.Clean(spec.BackingPath)]
		if !ok {
			return virt.Volume{}, errf(op, spec.Name, virt.ErrNotFound, "cannot access backing file '%s'", spec.BackingPath)
		}
		f.backing, f.backingFormat = b.path, spec.BackingFormat
		if f.backingFormat == "" {
			f.backingFormat = b.format
		}
		if f.capacity < b.capacity {
			f.capacity = b.capacity
		}
		f.gen = b.gen
	}
	if f.capacity == 0 {
		return virt.Volume{}, errf(op, spec.Name, virt.ErrInvalid, "missing capacity for volume")
	}
	if spec.Format == "qcow2" {
		f.allocation = qcow2Header
	}
	h.files[path] = f
	return observeVolume(spec.Pool, f), nil
}

// CloneVolume implements virt.Hypervisor: a flattened full copy (no backing
// file, no internal snapshots) of a volume some active pool knows.
func (h *Hypervisor) CloneVolume(ctx context.Context, spec virt.VolumeSpec, sourcePath string) (virt.Volume, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "clone volume"
	if err := h.begin(ctx, "CloneVolume", op, spec.Name); err != nil {
		return virt.Volume{}, err
	}
	src, ok := h.files[filepath.Clean(sourcePath)]
	if !ok || h.poolOf(src.path) == nil {
		return virt.Volume{}, errf(op, spec.Name, virt.ErrNotFound, "source %s is in no storage pool; define a pool for its directory first", sourcePath)
	}
	path, err := h.newVolume(op, spec)
	if err != nil {
		return virt.Volume{}, err
	}
	f := &file{path: path, format: spec.Format, capacity: max(spec.CapacityBytes, src.capacity), mode: volMode(spec.Mode), gen: src.gen, sum: src.sum, data: src.data}
	f.allocation = src.allocation
	for b := src; b.backing != ""; {
		nb, ok := h.files[b.backing]
		if !ok {
			break
		}
		f.allocation += nb.allocation
		b = nb
	}
	if spec.Format == "raw" {
		f.allocation = f.capacity
	}
	h.files[path] = f
	return observeVolume(spec.Pool, f), nil
}

// UploadVolume implements virt.Hypervisor: it reads exactly size bytes from
// r (fewer is an error) and keeps their SHA-256 (FileSum).
func (h *Hypervisor) UploadVolume(ctx context.Context, spec virt.VolumeSpec, r io.Reader, size int64) (virt.Volume, error) {
	const op = "upload volume"
	h.mu.Lock()
	if err := h.begin(ctx, "UploadVolume", op, spec.Name); err != nil {
		h.mu.Unlock()
		return virt.Volume{}, err
	}
	spec.Format = "raw"
	if _, err := h.newVolume(op, spec); err != nil {
		h.mu.Unlock()
		return virt.Volume{}, err
	}
	if size <= 0 {
		h.mu.Unlock()
		return virt.Volume{}, errf(op, spec.Name, virt.ErrInvalid, "size must be positive, got %d", size)
	}
	h.mu.Unlock()

	// Read without holding the lock: r may be slow.
	sum := sha256.New()
	var data bytes.Buffer
	n, err := io.Copy(io.MultiWriter(sum, &data), io.LimitReader(r, size))
	if err != nil {
		return virt.Volume{}, opErr(op, spec.Name, fmt.Errorf("read upload data: %w", err))
	}
	if n != size {
		return virt.Volume{}, opErr(op, spec.Name, fmt.Errorf("upload data ended after %d of %d bytes", n, size))
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	path, err := h.newVolume(op, spec)
	if err != nil {
		return virt.Volume{}, err
	}
	f := &file{path: path, format: "raw", capacity: uint64(size), allocation: (uint64(size) + 4095) &^ 4095, mode: volMode(spec.Mode), data: data.Bytes()}
	copy(f.sum[:], sum.Sum(nil))
	f.uploaded = true
	h.files[path] = f
	return observeVolume(spec.Pool, f), nil
}

// DownloadVolume implements virt.Hypervisor: uploaded bytes as they were
// sent (and copies of them); for any other file, which the fake holds no
// bytes of, a short text naming the file, its format, capacity and content
// generation, so that its checksum changes when the file is written.
func (h *Hypervisor) DownloadVolume(ctx context.Context, poolName, name string, w io.Writer, limit int64) (int64, error) {
	h.mu.Lock()
	const op = "download volume"
	if err := h.begin(ctx, "DownloadVolume", op, name); err != nil {
		h.mu.Unlock()
		return 0, err
	}
	p, err := h.lookupPool(op, poolName)
	if err != nil {
		h.mu.Unlock()
		return 0, opErr(op, name, err)
	}
	f, ok := h.files[filepath.Join(p.path, name)]
	if !ok {
		h.mu.Unlock()
		return 0, errf(op, name, virt.ErrNotFound, "no storage vol with matching name '%s'", name)
	}
	data := f.data
	if data == nil {
		data = []byte(fmt.Sprintf("fake %s volume %s capacity %d generation %d backing %s\n", f.format, f.path, f.capacity, f.gen, f.backing))
	}
	h.mu.Unlock()
	if limit > 0 && int64(len(data)) > limit {
		return 0, errf(op, name, virt.ErrInvalid, "holds more than %d bytes", limit)
	}
	n, err := w.Write(data)
	if err != nil {
		return int64(n), opErr(op, name, fmt.Errorf("write: %w", err))
	}
	return int64(n), nil
}

// DeleteVolume implements virt.Hypervisor. Like libvirt it does not check
// whether a domain uses the volume or an overlay is built on it.
func (h *Hypervisor) DeleteVolume(ctx context.Context, poolName, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "delete volume"
	if err := h.begin(ctx, "DeleteVolume", op, name); err != nil {
		return err
	}
	p, err := h.lookupPool(op, poolName)
	if err != nil {
		return opErr(op, name, err)
	}
	path := filepath.Join(p.path, name)
	if _, ok := h.files[path]; !ok {
		return errf(op, name, virt.ErrNotFound, "no storage vol with matching name '%s'", name)
	}
	delete(h.files, path)
	return nil
}

// WriteFile simulates a write into the file at path (by a guest or a tool
// such as qemu-io): its content generation goes up by one.
func (h *Hypervisor) WriteFile(path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.files[filepath.Clean(path)]
	if !ok {
		return errf("write file", path, virt.ErrNotFound, "no such file")
	}
	f.gen++
	return nil
}

// UploadFile implements virt.Hypervisor: it reads the local file, keeps its
// SHA-256 (FileSum, VolumeSHA256) and, like libvirt's probe after the
// upload, reports qcow2 when the content starts with the qcow2 magic.
// progress is called as the file is read.
func (h *Hypervisor) UploadFile(ctx context.Context, spec virt.VolumeSpec, path string, progress func(done, total int64)) (virt.Volume, error) {
	const op = "upload file to volume"
	h.mu.Lock()
	if err := h.begin(ctx, "UploadFile", op, spec.Name); err != nil {
		h.mu.Unlock()
		return virt.Volume{}, err
	}
	spec.Format, spec.BackingPath, spec.CapacityBytes = "raw", "", 1
	if _, err := h.newVolume(op, spec); err != nil {
		h.mu.Unlock()
		return virt.Volume{}, err
	}
	h.mu.Unlock()

	src, err := os.Open(path)
	if err != nil {
		return virt.Volume{}, opErr(op, spec.Name, err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return virt.Volume{}, opErr(op, spec.Name, err)
	}
	if fi.Size() <= 0 || !fi.Mode().IsRegular() {
		return virt.Volume{}, errf(op, spec.Name, virt.ErrInvalid, "%s is not a non-empty regular file", path)
	}
	size := fi.Size()
	sum := sha256.New()
	var magic [4]byte
	_, _ = src.ReadAt(magic[:], 0)
	buf := make([]byte, 1<<20)
	var done int64
	for done < size {
		if err := ctx.Err(); err != nil {
			return virt.Volume{}, opErr(op, spec.Name, err)
		}
		n, err := src.Read(buf)
		sum.Write(buf[:n])
		done += int64(n)
		if progress != nil && n > 0 {
			progress(done, size)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return virt.Volume{}, opErr(op, spec.Name, err)
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	vpath, err := h.newVolume(op, spec)
	if err != nil {
		return virt.Volume{}, err
	}
	format := "raw"
	if string(magic[:]) == "QFI\xfb" {
		format = "qcow2"
	}
	f := &file{path: vpath, format: format, capacity: uint64(size), allocation: (uint64(size) + 4095) &^ 4095, mode: volMode(spec.Mode)}
	copy(f.sum[:], sum.Sum(nil))
	if h.corruptUploads > 0 {
		h.corruptUploads--
		f.sum[0] ^= 0xff
	}
	f.uploaded = true
	h.files[vpath] = f
	return observeVolume(spec.Pool, f), nil
}

// CorruptNextUploads makes the next n uploads arrive damaged (their
// content, as VolumeSHA256 reads it back, differs from what was sent).
func (h *Hypervisor) CorruptNextUploads(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.corruptUploads = n
}

// VolumeSHA256 implements virt.Hypervisor for volumes whose content the
// fake knows (filled by UploadVolume or UploadFile); others are
// ErrUnsupported.
func (h *Hypervisor) VolumeSHA256(ctx context.Context, poolName, name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "checksum volume"
	if err := h.begin(ctx, "VolumeSHA256", op, name); err != nil {
		return "", err
	}
	p, err := h.lookupPool(op, poolName)
	if err != nil {
		return "", opErr(op, name, err)
	}
	f, ok := h.files[filepath.Join(p.path, name)]
	if !ok {
		return "", errf(op, name, virt.ErrNotFound, "no storage vol with matching name '%s'", name)
	}
	if !f.uploaded {
		return "", errf(op, name, virt.ErrUnsupported, "the fake holds no content for this volume")
	}
	return hex.EncodeToString(f.sum[:]), nil
}
