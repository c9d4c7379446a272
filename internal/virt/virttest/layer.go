package virttest

import (
	"slices"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// testLayeredBaseline follows legacyvm's layered memory baseline: a layer
// prepared on top of the shut off domain's disk (holding the mark of its
// empty state), the domain started on its disk, then SnapshotToLayer: the
// memory into an image, the domain running on in the layer, the baseline
// recorded as the mark. A reset (revert the mark, restore the image) brings
// back the disk as it was at the baseline, on the layer, running; the
// other internal snapshots of the layer survive it. Also: the refusals.
func testLayeredBaseline(e *env) {
	name := e.name("l1")
	vol := e.overlay(name)
	e.domain(e.domainSpec(name, vol.Path, nil, ""))
	pool := e.pool()
	image := name + ".mem"
	e.cleanupVolume(pool, image)
	layerSpec := virt.VolumeSpec{Pool: pool, Name: name + "-live.qcow2", Format: "qcow2", CapacityBytes: 64 << 20,
		BackingPath: vol.Path, BackingFormat: "qcow2"}
	e.cleanupVolume(pool, layerSpec.Name)
	spec := virt.LayerSnapshotSpec{Name: "base", Description: "layered baseline", Target: "sda",
		Layer: virt.VolumeRef{Pool: pool, Name: layerSpec.Name}, Image: virt.VolumeRef{Pool: pool, Name: image}}
	events := e.events()

	tokenA, err := e.h.WriteDisk(e.ctx, vol.Path)
	e.must(err, "write disk")
	layer, err := e.hv.PrepareLayer(e.ctx, layerSpec, "base")
	e.must(err, "prepare layer")
	if layer.Path == "" || layer.Name != layerSpec.Name {
		e.Errorf("layer volume = %+v, want %s with a path", layer, layerSpec.Name)
	}
	if e.h.InternalSnapshots != nil {
		got, err := e.h.InternalSnapshots(e.ctx, layer.Path)
		e.must(err, "internal snapshots of the layer")
		if !slices.Equal(got, []string{"base"}) {
			e.Errorf("internal snapshots of the prepared layer = %v, want [base]", got)
		}
	}
	_, err = e.hv.PrepareLayer(e.ctx, layerSpec, "base")
	e.wantErr(err, virt.ErrExists, layerSpec.Name, "prepare a layer that exists")

	_, err = e.hv.SnapshotToLayer(e.ctx, name, spec)
	e.wantErr(err, virt.ErrInvalidState, name, "layered baseline of a shut-off domain")

	e.must(e.hv.StartDomain(e.ctx, name), "start %s", name)
	e.waitEvent(events, name, virt.EventStarted, "booted")
	snap, err := e.hv.SnapshotToLayer(e.ctx, name, spec)
	e.must(err, "layered baseline of %s", name)
	if snap.Name != "base" || snap.Description != spec.Description || snap.Memory || snap.State != virt.StateShutoff {
		e.Errorf("baseline = %+v, want base, its description, disk-only, shutoff", snap)
	}
	if s := e.state(name); s != virt.StateRunning {
		e.Errorf("state after the layered baseline = %s, want running", s)
	}
	onLayer := func(when string) {
		e.Helper()
		d, err := e.hv.GetDomain(e.ctx, name)
		e.must(err, "get %s", name)
		i := slices.IndexFunc(d.Disks, func(x virt.DiskSpec) bool { return x.Target == "sda" })
		if i < 0 || d.Disks[i].Path != layer.Path {
			e.Errorf("%s: system disk of %s = %+v, want the layer %s", when, name, d.Disks, layer.Path)
		}
	}
	onLayer("after the baseline")
	vols, err := e.hv.ListVolumes(e.ctx, pool)
	e.must(err, "list volumes")
	if !slices.ContainsFunc(vols, func(v virt.Volume) bool { return v.Name == image }) {
		e.Errorf("pool %s does not list the memory image %s", pool, image)
	}
	snaps, err := e.hv.ListSnapshots(e.ctx, name)
	e.must(err, "list snapshots")
	if !slices.ContainsFunc(snaps, func(s virt.Snapshot) bool { return s.Name == "base" && s.Description == spec.Description && s.Current }) {
		e.Errorf("snapshots after the layered baseline = %+v, want base, current", snaps)
	}
	_, err = e.hv.SnapshotToLayer(e.ctx, name, spec)
	e.wantErr(err, virt.ErrExists, name, "layered baseline again")

	// A memory snapshot taken later lives in the layer and survives resets.
	_, err = e.hv.CreateSnapshot(e.ctx, name, virt.SnapshotSpec{Name: "later", Memory: true})
	e.must(err, "memory snapshot on the layer")

	for round := 1; round <= 2; round++ {
		e.must(e.hv.DestroyDomain(e.ctx, name), "destroy %s", name)
		tokenB, err := e.h.WriteDisk(e.ctx, layer.Path)
		e.must(err, "write the layer")
		if tokenB == tokenA {
			e.Errorf("round %d: the write changed nothing (%q)", round, tokenB)
		}
		e.must(e.hv.RevertSnapshot(e.ctx, name, "base"), "round %d: revert base", round)
		if got, err := e.h.ReadDisk(e.ctx, layer.Path); err != nil || got != tokenA {
			e.Errorf("round %d: disk after revert to base = %q (%v), want %q", round, got, err, tokenA)
		}
		if s := e.state(name); s != virt.StateShutoff {
			e.Errorf("round %d: state after revert to base = %s, want shutoff", round, s)
		}
		e.must(e.hv.RestoreDomain(e.ctx, name, pool, image, virt.SaveOptions{}), "round %d: restore %s", round, name)
		if s := e.state(name); s != virt.StateRunning {
			e.Errorf("round %d: state after restore = %s, want running", round, s)
		}
		onLayer("after a reset")
	}
	if e.h.InternalSnapshots != nil {
		got, err := e.h.InternalSnapshots(e.ctx, layer.Path)
		e.must(err, "internal snapshots of the layer")
		if !slices.Contains(got, "base") || !slices.Contains(got, "later") {
			e.Errorf("internal snapshots of the layer after resets = %v, want base and later", got)
		}
	}
	e.must(e.hv.RevertSnapshot(e.ctx, name, "later"), "revert the later memory snapshot")
	if s := e.state(name); s != virt.StateRunning {
		e.Errorf("state after revert to later = %s, want running", s)
	}
	e.must(e.hv.DeleteSnapshot(e.ctx, name, "later"), "delete later")
	e.must(e.hv.DeleteSnapshot(e.ctx, name, "base"), "delete base")
	e.must(e.hv.DestroyDomain(e.ctx, name), "destroy %s", name)
}
