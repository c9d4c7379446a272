package virttest

import (
	"bytes"
	"slices"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// testSnapshots takes a shut-off and a running snapshot, reverts between
// them and checks that state and disk content come back, then deletes
// them and checks that nothing is left in the image.
func testSnapshots(e *env) {
	name := e.name("s1")
	vol := e.overlay(name)
	e.domain(e.domainSpec(name, vol.Path, nil, ""))
	events := e.events()

	tokenA, err := e.h.WriteDisk(e.ctx, vol.Path)
	e.must(err, "write disk")
	before := time.Now().Add(-2 * time.Second)
	s1, err := e.hv.CreateSnapshot(e.ctx, name, virt.SnapshotSpec{Name: "clean", Description: `{"policy":"daily"}`, Memory: true})
	e.must(err, "snapshot a shut-off domain")
	if s1.Name != "clean" || s1.State != virt.StateShutoff || s1.Memory || !s1.Current || s1.Parent != "" || s1.Description != `{"policy":"daily"}` {
		e.Errorf("shut-off snapshot = %+v, want state shutoff, no memory, current, no parent", s1)
	}
	if s1.Created.Before(before.Truncate(time.Second)) || s1.Created.After(time.Now().Add(2*time.Second)) {
		e.Errorf("snapshot created at %v, want about now", s1.Created)
	}
	_, err = e.hv.CreateSnapshot(e.ctx, name, virt.SnapshotSpec{Name: "clean"})
	e.wantErr(err, virt.ErrExists, name, "snapshot with a name in use")

	tokenB, err := e.h.WriteDisk(e.ctx, vol.Path)
	e.must(err, "write disk")
	e.must(e.hv.StartDomain(e.ctx, name), "start %s", name)
	e.waitEvent(events, name, virt.EventStarted, "booted")
	s2, err := e.hv.CreateSnapshot(e.ctx, name, virt.SnapshotSpec{Name: "busy", Description: "running", Memory: true})
	e.must(err, "snapshot a running domain with memory")
	if s2.State != virt.StateRunning || !s2.Memory || !s2.Current || s2.Parent != "clean" {
		e.Errorf("running snapshot = %+v, want state running, memory, current, parent clean", s2)
	}

	// Running -> running revert restarts QEMU with the saved state.
	e.must(e.hv.RevertSnapshot(e.ctx, name, "busy"), "revert to busy while running")
	e.waitEvent(events, name, virt.EventStopped, "from-snapshot")
	e.waitEvent(events, name, virt.EventStarted, "from-snapshot")
	if s := e.state(name); s != virt.StateRunning {
		e.Errorf("state after revert to a running snapshot = %s", s)
	}

	// Running -> shut-off snapshot: stops, disk content A.
	e.must(e.hv.RevertSnapshot(e.ctx, name, "clean"), "revert to clean while running")
	if s := e.state(name); s != virt.StateShutoff {
		e.Errorf("state after revert to a shut-off snapshot = %s", s)
	}
	if r := e.stopReason(name); r != virt.StopFromSnapshot {
		e.Errorf("stop reason after revert to a shut-off snapshot = %q, want %q", r, virt.StopFromSnapshot)
	}
	if got, err := e.h.ReadDisk(e.ctx, vol.Path); err != nil || got != tokenA {
		e.Errorf("disk after revert to clean = %q (%v), want %q", got, err, tokenA)
	}

	// Shut off -> running snapshot: starts, disk content B.
	e.must(e.hv.RevertSnapshot(e.ctx, name, "busy"), "revert to busy while shut off")
	if s := e.state(name); s != virt.StateRunning {
		e.Errorf("state after revert to busy from shut off = %s", s)
	}
	e.must(e.hv.DestroyDomain(e.ctx, name), "destroy %s", name)
	if got, err := e.h.ReadDisk(e.ctx, vol.Path); err != nil || got != tokenB {
		e.Errorf("disk after revert to busy = %q (%v), want %q", got, err, tokenB)
	}

	// A branch: back to clean, then a new snapshot is clean's child.
	e.must(e.hv.RevertSnapshot(e.ctx, name, "clean"), "revert to clean")
	s3, err := e.hv.CreateSnapshot(e.ctx, name, virt.SnapshotSpec{Name: "branch"})
	e.must(err, "snapshot after revert")
	if s3.Parent != "clean" {
		e.Errorf("snapshot after revert to clean has parent %q, want clean", s3.Parent)
	}
	list, err := e.hv.ListSnapshots(e.ctx, name)
	e.must(err, "list snapshots")
	var names []string
	current := 0
	for _, s := range list {
		names = append(names, s.Name+"<"+s.Parent)
		if s.Current {
			current++
			if s.Name != "branch" {
				e.Errorf("current snapshot is %s, want branch", s.Name)
			}
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"branch<clean", "busy<clean", "clean<"}) || current != 1 {
		e.Errorf("snapshots (name<parent) = %v with %d current, want [branch<clean busy<clean clean<] and one current", names, current)
	}
	if !slices.IsSortedFunc(list, func(a, b virt.Snapshot) int { return a.Created.Compare(b.Created) }) {
		e.Errorf("ListSnapshots is not sorted by creation time: %+v", list)
	}
	if i := slices.IndexFunc(list, func(s virt.Snapshot) bool { return s.Name == "busy" }); i >= 0 && list[i].Description != "running" {
		e.Errorf("description of busy = %q", list[i].Description)
	}

	e.wantErr(e.hv.RevertSnapshot(e.ctx, name, "nope"), virt.ErrNotFound, name, "revert to a missing snapshot")
	e.wantErr(e.hv.DeleteSnapshot(e.ctx, name, "nope"), virt.ErrNotFound, name, "delete a missing snapshot")

	// Deleting a parent moves its children up; deleting all leaves no
	// internal snapshot in the image.
	e.must(e.hv.DeleteSnapshot(e.ctx, name, "clean"), "delete clean")
	list, err = e.hv.ListSnapshots(e.ctx, name)
	e.must(err, "list snapshots")
	for _, s := range list {
		if s.Parent != "" {
			e.Errorf("after deleting clean, %s has parent %q, want none", s.Name, s.Parent)
		}
	}
	for _, s := range []string{"busy", "branch"} {
		e.must(e.hv.DeleteSnapshot(e.ctx, name, s), "delete %s", s)
	}
	if list, _ := e.hv.ListSnapshots(e.ctx, name); len(list) != 0 {
		e.Errorf("snapshots left: %+v", list)
	}
	if in, err := e.h.InternalSnapshots(e.ctx, vol.Path); err != nil || len(in) != 0 {
		e.Errorf("internal snapshots left in %s: %v (%v)", vol.Path, in, err)
	}

	// Undefining a domain with snapshots works and drops their metadata;
	// like libvirt, the internal snapshot stays in the image (callers
	// delete snapshots first).
	_, err = e.hv.CreateSnapshot(e.ctx, name, virt.SnapshotSpec{Name: "left"})
	e.must(err, "snapshot before undefine")
	e.must(e.hv.UndefineDomain(e.ctx, name), "undefine %s with a snapshot", name)
	e.domain(e.domainSpec(name, vol.Path, nil, ""))
	if list, err := e.hv.ListSnapshots(e.ctx, name); err != nil || len(list) != 0 {
		e.Errorf("snapshots of the redefined domain = %+v (%v), want none", list, err)
	}
	if in, err := e.h.InternalSnapshots(e.ctx, vol.Path); err != nil || !slices.Equal(in, []string{"left"}) {
		e.Errorf("internal snapshots after undefine = %v (%v), want [left] (libvirt keeps them)", in, err)
	}
}

// testChangeMedia inserts and ejects media in the CD-ROM drive of a shut
// off domain and refuses targets that are not CD-ROM drives.
func testChangeMedia(e *env) {
	name := e.name("m1")
	vol := e.overlay(name)
	e.domain(e.domainSpec(name, vol.Path, nil, ""))
	pool := e.pool()
	iso := e.name("media") + ".iso"
	data := make([]byte, 64<<10)
	up, err := e.hv.UploadVolume(e.ctx, virt.VolumeSpec{Pool: pool, Name: iso, Format: "raw"}, bytes.NewReader(data), int64(len(data)))
	e.cleanupVolume(pool, iso)
	e.must(err, "upload %s", iso)

	media := func() string {
		d, err := e.hv.GetDomain(e.ctx, name)
		e.must(err, "get %s", name)
		for _, disk := range d.Disks {
			if disk.Target == "sdb" {
				return disk.Path
			}
		}
		e.Fatal("sdb disappeared")
		return ""
	}
	e.must(e.hv.ChangeMedia(e.ctx, name, "sdb", up.Path), "insert %s", up.Path)
	if got := media(); got != up.Path {
		e.Errorf("sdb holds %q after insert, want %s", got, up.Path)
	}

	// Live: the running domain sees the change, and so does its definition.
	e.must(e.hv.StartDomain(e.ctx, name), "start %s", name)
	e.must(e.hv.ChangeMedia(e.ctx, name, "sdb", ""), "eject while running")
	if got := media(); got != "" {
		e.Errorf("sdb holds %q after eject, want empty", got)
	}
	e.must(e.hv.ChangeMedia(e.ctx, name, "sdb", up.Path), "insert while running")
	e.must(e.hv.DestroyDomain(e.ctx, name), "destroy %s", name)
	if got := media(); got != up.Path {
		e.Errorf("after a live insert and a stop, sdb holds %q, want %s", got, up.Path)
	}

	e.wantErr(e.hv.ChangeMedia(e.ctx, name, "sdz", up.Path), virt.ErrNotFound, name, "change media of a missing drive")
	e.wantErr(e.hv.ChangeMedia(e.ctx, name, "sda", up.Path), virt.ErrInvalid, name, "change media of a hard disk")
}

// testEvents checks that every subscriber gets the events and that the
// channel is closed when its context ends.
func testEvents(e *env) {
	name := e.name("e1")
	vol := e.overlay(name)
	e.domain(e.domainSpec(name, vol.Path, nil, ""))
	a, b := e.events(), e.events()
	e.must(e.hv.StartDomain(e.ctx, name), "start %s", name)
	e.waitEvent(a, name, virt.EventStarted, "booted")
	e.waitEvent(b, name, virt.EventStarted, "booted")
	e.must(e.hv.DestroyDomain(e.ctx, name), "destroy %s", name)
	e.waitEvent(a, name, virt.EventStopped, "destroyed")
	e.waitEvent(b, name, virt.EventStopped, "destroyed")

	ctx, cancel := e.cleanupCtx()
	ch, err := e.hv.Events(ctx)
	e.must(err, "subscribe")
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			e.Fatal("event channel not closed 10 s after its context ended")
		}
	}
}
