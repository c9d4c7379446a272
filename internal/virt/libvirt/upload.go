package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Whence values of lseek(2) that find data and holes in sparse files.
const (
	seekData = 3
	seekHole = 4
)

// UploadFile implements virt.Hypervisor with virStorageVolUpload and a
// sparse stream (VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM): the data sections
// of the file are sent, holes are sent as hole lengths.
func (h *Hypervisor) UploadFile(ctx context.Context, spec virt.VolumeSpec, path string, progress func(done, total int64)) (virt.Volume, error) {
	const op = "upload file to volume"
	f, err := os.Open(path)
	if err != nil {
		return virt.Volume{}, fmt.Errorf("%s %q: %w", op, spec.Name, err)
	}
	defer f.Close()
	st0, err := f.Stat()
	if err != nil {
		return virt.Volume{}, fmt.Errorf("%s %q: %w", op, spec.Name, err)
	}
	size := st0.Size()
	if size <= 0 || !st0.Mode().IsRegular() {
		return virt.Volume{}, failf(op, spec.Name, virt.ErrInvalid, "%s is not a non-empty regular file", path)
	}
	// The volume is created raw at the file's size (a sparse file in a
	// directory pool) and the stream writes the file's bytes as they are;
	// libvirt probes the format (qcow2) when it refreshes the pool.
	send := func(st *libvirt.Stream) (err, readErr error) {
		var (
			pos int64
			buf = make([]byte, uploadChunk)
		)
		report := func() {
			if progress != nil {
				progress(pos, size)
			}
		}
		data := func(_ *libvirt.Stream, n int) ([]byte, error) {
			if readErr = ctx.Err(); readErr != nil {
				return nil, readErr
			}
			n = min(n, len(buf), int(size-pos))
			if n <= 0 {
				return nil, nil
			}
			got, err := f.ReadAt(buf[:n], pos)
			if err != nil && !(errors.Is(err, io.EOF) && got > 0) {
				readErr = fmt.Errorf("read %s at %d: %w", path, pos, err)
				return nil, readErr
			}
			pos += int64(got)
			report()
			return buf[:got], nil
		}
		hole := func(_ *libvirt.Stream) (bool, int64, error) {
			if pos >= size {
				return false, 0, nil
			}
			next, err := f.Seek(pos, seekData)
			if errors.Is(err, syscall.ENXIO) {
				return false, size - pos, nil // a hole up to the end
			}
			if err != nil {
				// No SEEK_DATA on this file system: all of it is data.
				return true, size - pos, nil
			}
			if next > pos {
				return false, next - pos, nil
			}
			end, err := f.Seek(pos, seekHole)
			if err != nil || end > size {
				end = size
			}
			return true, end - pos, nil
		}
		skip := func(_ *libvirt.Stream, n int64) error {
			pos += n
			report()
			return nil
		}
		err = st.SparseSendAll(data, hole, skip)
		return err, readErr
	}
	observe := func(p *libvirt.StoragePool, _ *libvirt.StorageVol) (virt.Volume, error) {
		// The pool refresh that probes the uploaded content runs after the
		// stream closes: refresh here so the volume reads as it now is.
		_ = p.Refresh(0)
		nv, err := p.LookupStorageVolByName(spec.Name)
		if err != nil {
			return virt.Volume{}, wrap(op, spec.Name, err)
		}
		defer nv.Free()
		return observeVolume(op, spec.Pool, nv)
	}
	return h.streamUpload(ctx, op, spec, size, libvirt.STORAGE_VOL_UPLOAD_SPARSE_STREAM, send, observe)
}

// VolumeSHA256 implements virt.Hypervisor with virStorageVolDownload and a
// sparse stream; holes are hashed as zeros.
func (h *Hypervisor) VolumeSHA256(ctx context.Context, pool, name string) (string, error) {
	const op = "checksum volume"
	p, err := h.lookupPool(ctx, op, pool)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", op, name, err)
	}
	defer p.Free()
	v, err := p.LookupStorageVolByName(name)
	if err != nil {
		return "", wrap(op, name, err)
	}
	defer v.Free()
	st, err := h.conn.NewStream(0)
	if err != nil {
		return "", wrap(op, name, err)
	}
	defer st.Free()
	if err := v.Download(st, 0, 0, libvirt.STORAGE_VOL_DOWNLOAD_SPARSE_STREAM); err != nil {
		return "", wrap(op, name, err)
	}
	sum := sha256.New()
	zeros := make([]byte, 64<<10)
	var ctxErr error
	err = st.SparseRecvAll(func(_ *libvirt.Stream, b []byte) (int, error) {
		if ctxErr = ctx.Err(); ctxErr != nil {
			return 0, ctxErr
		}
		sum.Write(b)
		return len(b), nil
	}, func(_ *libvirt.Stream, n int64) error {
		for n > 0 {
			k := min(n, int64(len(zeros)))
			sum.Write(zeros[:k])
			n -= k
		}
		return nil
	})
	if err != nil {
		_ = st.Abort()
		if ctxErr != nil {
			return "", fmt.Errorf("%s %q: %w", op, name, ctxErr)
		}
		return "", wrap(op, name, err)
	}
	if err := st.Finish(); err != nil {
		return "", wrap(op, name, err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}
