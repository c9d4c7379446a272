package virttest

import (
	"bytes"
	"io"
	"path/filepath"
	"slices"

	"github.com/legacyvm/legacyvm/internal/virt"
)

func testStorage(e *env) {
	pool := e.pool()
	p, err := e.hv.EnsurePool(e.ctx, pool, e.h.PoolDir)
	e.must(err, "ensure pool %s twice", pool)
	if p.Name != pool || filepath.Clean(p.Path) != filepath.Clean(e.h.PoolDir) || !p.Active || p.Available == 0 {
		e.Errorf("pool = %+v, want %s at %s, active, with free space", p, pool, e.h.PoolDir)
	}
	if got, err := e.hv.GetPool(e.ctx, pool); err != nil || got.Path != p.Path || !got.Active {
		e.Errorf("GetPool = %+v, %v", got, err)
	}
	e.goldenPool()
	golden, err := e.hv.VolumeByPath(e.ctx, e.h.Golden)
	e.must(err, "find the golden image by path")
	if golden.Pool != e.h.GoldenPool || golden.Format != "qcow2" || golden.CapacityBytes == 0 {
		e.Errorf("golden volume = %+v", golden)
	}

	// Overlay: records its backing file, names are unique.
	ov := e.overlay(e.name("ov"))
	if ov.Pool != pool || ov.Format != "qcow2" || ov.BackingPath != e.h.Golden || ov.CapacityBytes != 64<<20 || ov.Path != filepath.Join(e.h.PoolDir, ov.Name) {
		e.Errorf("overlay = %+v, want qcow2 in %s backed by %s, 64 MiB", ov, pool, e.h.Golden)
	}
	_, err = e.hv.CreateVolume(e.ctx, virt.VolumeSpec{Pool: pool, Name: ov.Name, Format: "qcow2", CapacityBytes: 1 << 20})
	e.wantErr(err, virt.ErrExists, ov.Name, "create a volume whose name is taken")
	if got, err := e.hv.VolumeByPath(e.ctx, ov.Path); err != nil || got.Name != ov.Name || got.BackingPath != e.h.Golden {
		e.Errorf("VolumeByPath(overlay) = %+v, %v", got, err)
	}

	// Clone: a full copy of the overlay's content, without a backing file.
	token, err := e.h.WriteDisk(e.ctx, ov.Path)
	e.must(err, "write into %s", ov.Path)
	cloneName := e.name("clone") + ".qcow2"
	// Larger than its 64 MiB source: the copy grows to the size asked for.
	clone, err := e.hv.CloneVolume(e.ctx, virt.VolumeSpec{Pool: pool, Name: cloneName, Format: "qcow2", CapacityBytes: 96 << 20}, ov.Path)
	e.cleanupVolume(pool, cloneName)
	e.must(err, "clone %s", ov.Path)
	if clone.BackingPath != "" || clone.Format != "qcow2" || clone.CapacityBytes != 96<<20 {
		e.Errorf("clone = %+v, want a standalone qcow2 of 96 MiB", clone)
	}
	if got, err := e.hv.VolumeByPath(e.ctx, clone.Path); err != nil || got.CapacityBytes != 96<<20 {
		e.Errorf("VolumeByPath(clone) = %+v, %v; want 96 MiB", got, err)
	}
	if got, err := e.h.ReadDisk(e.ctx, clone.Path); err != nil || got != token {
		e.Errorf("clone content = %q (%v), want the source's %q", got, err, token)
	}
	_, err = e.hv.CloneVolume(e.ctx, virt.VolumeSpec{Pool: pool, Name: e.name("clone2"), Format: "qcow2", CapacityBytes: 1 << 20}, "/nonexistent/"+e.name("x.qcow2"))
	e.cleanupVolume(pool, e.name("clone2"))
	e.wantErr(err, virt.ErrNotFound, "/nonexistent/", "clone a file no pool knows")

	// Upload: a raw volume of exactly the bytes sent.
	data := bytes.Repeat([]byte("legacyvm answer media\n"), 3000)
	upName := e.name("answer") + ".iso"
	up, err := e.hv.UploadVolume(e.ctx, virt.VolumeSpec{Pool: pool, Name: upName, Format: "raw", Mode: 0o600}, bytes.NewReader(data), int64(len(data)))
	e.cleanupVolume(pool, upName)
	e.must(err, "upload %s", upName)
	if up.CapacityBytes != uint64(len(data)) || up.Name != upName {
		e.Errorf("uploaded volume = %+v, want %d bytes", up, len(data))
	}
	_, err = e.hv.UploadVolume(e.ctx, virt.VolumeSpec{Pool: pool, Name: upName, Format: "raw"}, bytes.NewReader(data), int64(len(data)))
	e.wantErr(err, virt.ErrExists, upName, "upload into a taken name")
	if up.Mode != 0o600 {
		e.Errorf("uploaded volume mode = %o, want 0600", up.Mode)
	}

	// Download: the same bytes back through the storage API; a bound
	// smaller than the volume is refused.
	var back bytes.Buffer
	n, err := e.hv.DownloadVolume(e.ctx, pool, upName, &back, 0)
	e.must(err, "download %s", upName)
	if n != int64(len(data)) || !bytes.Equal(back.Bytes(), data) {
		e.Errorf("downloaded %d bytes (equal: %v), want the %d uploaded", n, bytes.Equal(back.Bytes(), data), len(data))
	}
	_, err = e.hv.DownloadVolume(e.ctx, pool, upName, io.Discard, 1024)
	e.wantErr(err, virt.ErrInvalid, upName, "download more than the bound")
	_, err = e.hv.DownloadVolume(e.ctx, pool, e.name("missing"), io.Discard, 0)
	e.wantErr(err, virt.ErrNotFound, e.name("missing"), "download a missing volume")

	// A read-only volume (how registered images are kept) reports its mode.
	roName := e.name("ro") + ".json"
	ro, err := e.hv.UploadVolume(e.ctx, virt.VolumeSpec{Pool: pool, Name: roName, Format: "raw", Mode: 0o444}, bytes.NewReader([]byte("{}\n")), 3)
	e.cleanupVolume(pool, roName)
	e.must(err, "upload %s read-only", roName)
	if ro.Mode != 0o444 {
		e.Errorf("read-only volume mode = %o, want 0444", ro.Mode)
	}
	if got, err := e.hv.VolumeByPath(e.ctx, ro.Path); err != nil || got.Mode != 0o444 {
		e.Errorf("VolumeByPath(read-only) = %+v, %v; want mode 0444", got, err)
	}

	vols, err := e.hv.ListVolumes(e.ctx, pool)
	e.must(err, "list volumes of %s", pool)
	for _, want := range []string{ov.Name, cloneName, upName} {
		if !slices.ContainsFunc(vols, func(v virt.Volume) bool { return v.Name == want && v.Pool == pool }) {
			e.Errorf("ListVolumes(%s) does not show %s", pool, want)
		}
	}

	e.must(e.hv.DeleteVolume(e.ctx, pool, cloneName), "delete %s", cloneName)
	_, err = e.hv.VolumeByPath(e.ctx, clone.Path)
	e.wantErr(err, virt.ErrNotFound, clone.Path, "find a deleted volume")
	e.wantErr(e.hv.DeleteVolume(e.ctx, pool, cloneName), virt.ErrNotFound, cloneName, "delete a deleted volume")
	if _, err := e.hv.VolumeByPath(e.ctx, e.h.Golden); err != nil {
		e.Errorf("the golden image is gone: %v", err)
	}
}
