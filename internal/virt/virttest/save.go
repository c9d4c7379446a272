package virttest

import (
	"errors"
	"slices"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// testMemoryImages follows legacyvm's baseline of a running VM: save the
// memory into a volume (the domain stops), take a disk snapshot of the
// shut-off domain, restore the image (running again), and after the disk
// changed, go back with a revert of the disk snapshot plus a restore of
// the same image, which is kept. Also: the refusals (wrong state, a taken
// name, a missing image, another domain's image).
func testMemoryImages(e *env) {
	name, other := e.name("m1"), e.name("m2")
	vol := e.overlay(name)
	e.domain(e.domainSpec(name, vol.Path, nil, ""))
	vol2 := e.overlay(other)
	e.domain(e.domainSpec(other, vol2.Path, nil, ""))
	pool := e.pool()
	image := name + ".mem"
	e.cleanupVolume(pool, image)
	events := e.events()

	_, err := e.hv.SaveDomain(e.ctx, name, pool, image, virt.SaveOptions{})
	e.wantErr(err, virt.ErrInvalidState, name, "save a shut-off domain")
	_, err = e.hv.SaveDomain(e.ctx, name, pool, "../"+image, virt.SaveOptions{})
	e.wantErr(err, virt.ErrInvalid, "", "save to a volume name with a directory")

	tokenA, err := e.h.WriteDisk(e.ctx, vol.Path)
	e.must(err, "write disk")
	e.must(e.hv.StartDomain(e.ctx, name), "start %s", name)
	e.waitEvent(events, name, virt.EventStarted, "booted")
	img, err := e.hv.SaveDomain(e.ctx, name, pool, image, virt.SaveOptions{})
	e.must(err, "save %s", name)
	e.waitEvent(events, name, virt.EventStopped, "saved")
	if img.Name != image || img.Pool != pool || img.Path == "" || img.AllocationBytes == 0 {
		e.Errorf("memory image volume = %+v, want %s in pool %s with a path and bytes", img, image, pool)
	}
	if s := e.state(name); s != virt.StateShutoff {
		e.Errorf("state after save = %s, want shutoff", s)
	}
	if r := e.stopReason(name); r != virt.StopOther {
		e.Errorf("stop reason after save = %q, want %q", r, virt.StopOther)
	}
	vols, err := e.hv.ListVolumes(e.ctx, pool)
	e.must(err, "list volumes")
	if !slices.ContainsFunc(vols, func(v virt.Volume) bool { return v.Name == image }) {
		e.Errorf("pool %s does not list the memory image %s: %+v", pool, image, vols)
	}

	_, err = e.hv.CreateSnapshot(e.ctx, name, virt.SnapshotSpec{Name: "base"})
	e.must(err, "disk snapshot of the saved domain")

	e.must(e.hv.RestoreDomain(e.ctx, name, pool, image, virt.SaveOptions{}), "restore %s", name)
	e.waitEvent(events, name, virt.EventStarted, "restored")
	if s := e.state(name); s != virt.StateRunning {
		e.Errorf("state after restore = %s, want running", s)
	}
	err = e.hv.RestoreDomain(e.ctx, name, pool, image, virt.SaveOptions{})
	e.wantErr(err, virt.ErrInvalidState, name, "restore a running domain")
	_, err = e.hv.SaveDomain(e.ctx, name, pool, image, virt.SaveOptions{BypassCache: true})
	e.wantErr(err, virt.ErrExists, name, "save to a volume that exists")

	// The guest changed the disk; the disk snapshot plus the kept image
	// bring back the saved instant, once and again (with bypass cache).
	e.must(e.hv.DestroyDomain(e.ctx, name), "destroy %s", name)
	_, err = e.h.WriteDisk(e.ctx, vol.Path)
	e.must(err, "write disk")
	for _, bypass := range []bool{false, true} {
		e.must(e.hv.RevertSnapshot(e.ctx, name, "base"), "revert disk snapshot base")
		if got, err := e.h.ReadDisk(e.ctx, vol.Path); err != nil || got != tokenA {
			e.Errorf("disk after revert to base = %q (%v), want %q", got, err, tokenA)
		}
		e.must(e.hv.RestoreDomain(e.ctx, name, pool, image, virt.SaveOptions{BypassCache: bypass}), "restore %s again (bypass cache %v)", name, bypass)
		if s := e.state(name); s != virt.StateRunning {
			e.Errorf("state after restore (bypass cache %v) = %s, want running", bypass, s)
		}
		e.must(e.hv.DestroyDomain(e.ctx, name), "destroy %s", name)
	}

	err = e.hv.RestoreDomain(e.ctx, other, pool, image, virt.SaveOptions{})
	e.wantErr(err, virt.ErrInvalid, other, "restore another domain's image")
	if s := e.state(other); s != virt.StateShutoff {
		e.Errorf("%s is %s after a refused restore of %s's image", other, s, name)
	}
	if s := e.state(name); s != virt.StateShutoff {
		e.Errorf("%s is %s after another domain was refused its image", name, s)
	}
	err = e.hv.RestoreDomain(e.ctx, name, pool, "missing.mem", virt.SaveOptions{})
	e.wantErr(err, virt.ErrNotFound, "missing.mem", "restore a missing image")

	e.must(e.hv.DeleteVolume(e.ctx, pool, image), "delete the memory image")
	if err := e.hv.RestoreDomain(e.ctx, name, pool, image, virt.SaveOptions{}); !errors.Is(err, virt.ErrNotFound) {
		e.Errorf("restore after the image was deleted: %v, want not found", err)
	}
}
