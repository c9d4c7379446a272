package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// errBaselineProtected is returned when deleting a VM's baseline without
// force.
var errBaselineProtected = errors.New("the baseline snapshot is protected")

// VMSnapshots is a managed VM with its classified snapshots, parents
// before children (then oldest first).
type VMSnapshots struct {
	VM        string          `json:"vm"`
	Profile   string          `json:"profile"`
	Baseline  string          `json:"baseline,omitempty"`
	Snapshots []snapmeta.Info `json:"snapshots"`
}

func baselineOf(d virt.Domain) string {
	if d.Metadata != nil && d.Metadata.Policy != nil {
		return d.Metadata.Policy.Baseline
	}
	return ""
}

// classifyAll classifies and orders a domain's snapshots as a tree walk.
func classifyAll(snaps []virt.Snapshot, baseline string) []snapmeta.Info {
	children := map[string][]virt.Snapshot{}
	names := map[string]bool{}
	for _, s := range snaps {
		names[s.Name] = true
	}
	for _, s := range snaps {
		parent := s.Parent
		if !names[parent] {
			parent = ""
		}
		children[parent] = append(children[parent], s)
	}
	var out []snapmeta.Info
	var walk func(parent string)
	walk = func(parent string) {
		cs := children[parent]
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].Created.Before(cs[j].Created) })
		for _, c := range cs {
			out = append(out, snapmeta.Classify(c, baseline))
			walk(c.Name)
		}
	}
	walk("")
	return out
}

// ListSnapshots returns the snapshots of the named managed VMs (all managed
// VMs when names is empty), sorted by VM name.
func (e *engine) ListSnapshots(ctx context.Context, names []string) ([]VMSnapshots, error) {
	doms, err := e.selectManaged(ctx, names)
	if err != nil {
		return nil, err
	}
	var out []VMSnapshots
	for _, d := range doms {
		snaps, err := e.HV.ListSnapshots(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, VMSnapshots{VM: d.Name, Profile: d.Metadata.Profile, Baseline: baselineOf(d), Snapshots: withPolicyExpiry(classifyAll(snaps, baselineOf(d)), d.Metadata.Policy)})
	}
	return out, nil
}

// selectManaged returns the named managed domains (all when names is
// empty), sorted by name; an unknown or unmanaged name is an error.
func (e *engine) selectManaged(ctx context.Context, names []string) ([]virt.Domain, error) {
	if len(names) == 0 {
		doms, err := e.HV.ListDomains(ctx)
		if err != nil {
			return nil, err
		}
		var out []virt.Domain
		for _, d := range doms {
			if d.Metadata != nil && (e.Profile == "" || d.Metadata.Profile == e.Profile) {
				out = append(out, d)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
	var out []virt.Domain
	for _, n := range names {
		d, err := e.managedDomain(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// CreateSnapshot takes a manual snapshot (kept until deleted by hand). A
// running VM's internal snapshot always includes its memory on libvirt 9.0;
// memory says so explicitly and is required for running VMs.
func (e *engine) CreateSnapshot(ctx context.Context, vm, name string, memory bool, note string) (snapmeta.Info, error) {
	d, err := e.managedDomain(ctx, vm)
	if err != nil {
		return snapmeta.Info{}, err
	}
	if name == "" {
		name = "manual-" + e.now().Format(autoTimeFormat)
	}
	if strings.HasPrefix(name, autoSnapshotPrefix) {
		return snapmeta.Info{}, fmt.Errorf("snapshot names starting with %q are reserved for schedules (retention deletes them)", autoSnapshotPrefix)
	}
	if name == baselineOf(d) {
		return snapmeta.Info{}, fmt.Errorf("%q is %s's baseline name; choose another name", name, vm)
	}
	desc := snapmeta.Description{Kind: snapmeta.Manual, Note: note}
	running := d.State != virt.StateShutoff
	s, err := e.HV.CreateSnapshot(ctx, vm, virt.SnapshotSpec{Name: name, Description: desc.String(), Memory: memory || running})
	if err != nil {
		return snapmeta.Info{}, err
	}
	return snapmeta.Classify(s, baselineOf(d)), nil
}

// RevertSnapshot reverts a managed VM to a snapshot and checks that it
// reached the state the snapshot recorded.
func (e *engine) RevertSnapshot(ctx context.Context, vm, name string) (virt.DomainState, error) {
	d, err := e.managedDomain(ctx, vm)
	if err != nil {
		return "", err
	}
	snaps, err := e.HV.ListSnapshots(ctx, vm)
	if err != nil {
		return "", err
	}
	var target *virt.Snapshot
	for i := range snaps {
		if snaps[i].Name == name {
			target = &snaps[i]
		}
	}
	if target == nil {
		return "", fmt.Errorf("domain %q has no snapshot %q: %w", vm, name, virt.ErrNotFound)
	}
	if ref, ok, err := imageOf(d, *target); err != nil {
		return "", err
	} else if ok {
		return e.revertImage(ctx, vm, name, ref)
	}
	if err := retryBusy(ctx, func() error { return e.HV.RevertSnapshot(ctx, vm, name) }); err != nil {
		return "", err
	}
	want := target.State
	if want != virt.StateRunning && want != virt.StatePaused {
		want = virt.StateShutoff
	}
	return e.waitState(ctx, vm, 30*time.Second, nil, want)
}

// DeleteSnapshot deletes a snapshot (its disk contents too). The baseline
// is refused unless force.
func (e *engine) DeleteSnapshot(ctx context.Context, vm, name string, force bool) error {
	d, err := e.managedDomain(ctx, vm)
	if err != nil {
		return err
	}
	if name == baselineOf(d) && !force {
		return fmt.Errorf("%s %q of %s: %w; use --force to delete it anyway (reset then has nothing to return to)", "baseline", name, vm, errBaselineProtected)
	}
	snaps, err := e.HV.ListSnapshots(ctx, vm)
	if err != nil {
		return err
	}
	var image *virt.VolumeRef
	for _, s := range snaps {
		if s.Name != name {
			continue
		}
		if ref, ok, err := imageOf(d, s); err == nil && ok {
			image = &ref
		}
	}
	if err := retryBusy(ctx, func() error { return e.HV.DeleteSnapshot(ctx, vm, name) }); err != nil {
		return err
	}
	if image != nil {
		// The memory half of the snapshot goes with it.
		if err := e.HV.DeleteVolume(ctx, image.Pool, image.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return fmt.Errorf("snapshot %s of %s deleted, its memory image %s not: %w", name, vm, image.Name, err)
		}
	}
	return nil
}

// imageOf returns the memory image a snapshot is paired with (ok false for
// an internal snapshot). The description is read back from libvirt: the
// image must be the memory volume the domain's metadata lists, or the
// snapshot is refused.
func imageOf(d virt.Domain, s virt.Snapshot) (virt.VolumeRef, bool, error) {
	desc, ok := snapmeta.ParseDescription(s.Description)
	if !ok || desc.MemoryImage == "" {
		return virt.VolumeRef{}, false, nil
	}
	ref, ok := memoryImageRef(d.Metadata)
	if !ok || ref.Pool != desc.MemoryPool || ref.Name != desc.MemoryImage {
		return virt.VolumeRef{}, false, fmt.Errorf("snapshot %q of %s names a memory image (%s) that the VM does not own; delete the snapshot and take it again", s.Name, d.Name, desc.MemoryImage)
	}
	return ref, true, nil
}

// takeImageBaseline takes a memory baseline of the running VM as a memory
// image plus a disk snapshot (see snapshots.go) and leaves the VM running.
// A leftover image of an interrupted attempt is replaced: no snapshot
// refers to it while the baseline is missing.
func (e *engine) takeImageBaseline(ctx context.Context, name, baseline string, desc snapmeta.Description, ref virt.VolumeRef) error {
	e.begin(event.KindVM, name, event.StepBaseline, "saving memory for baseline %s into volume %s", baseline, ref.Name)
	_, err := e.HV.SaveDomain(ctx, name, ref.Pool, ref.Name, memoryImageOptions)
	if errors.Is(err, virt.ErrExists) {
		if err := e.HV.DeleteVolume(ctx, ref.Pool, ref.Name); err != nil {
			return fmt.Errorf("replace the leftover memory image %s of %s: %w", ref.Name, name, err)
		}
		_, err = e.HV.SaveDomain(ctx, name, ref.Pool, ref.Name, memoryImageOptions)
	}
	if err != nil {
		return err
	}
	return e.finishImageBaseline(ctx, name, baseline, desc, ref)
}

// prepareLayer creates the layer a new VM with a memory baseline runs on
// after it (see snapshots.go), marked with the baseline's name. The VM must
// not have started: the mark needs its system disk closed.
func (e *engine) prepareLayer(ctx context.Context, dv *desiredVM, ref virt.VolumeRef) error {
	name := dv.Spec.Name
	sysPath := systemDiskPath(dv)
	sys, err := e.HV.VolumeByPath(ctx, sysPath)
	if err != nil {
		return err
	}
	e.begin(event.KindVM, name, event.StepDisk, "preparing layer %s, which the VM runs on after its memory baseline", ref.Name)
	_, err = e.HV.PrepareLayer(ctx, virt.VolumeSpec{Pool: ref.Pool, Name: ref.Name, Format: "qcow2", CapacityBytes: sys.CapacityBytes,
		BackingPath: sysPath, BackingFormat: "qcow2"}, dv.Policy.Baseline)
	return err
}

// takeLayerBaseline takes the memory baseline of the running VM in one step
// onto its layer (see snapshots.go) when the layer can be used: the VM
// still runs on its system disk and the layer exists on top of it, or an
// interrupted attempt left the VM on the layer with the image written. It
// reports false (and does nothing) otherwise. A leftover image of an
// attempt interrupted before the VM moved is replaced.
func (e *engine) takeLayerBaseline(ctx context.Context, name, baseline string, desc snapmeta.Description, md *virt.Metadata, image virt.VolumeRef) (bool, error) {
	layer, ok := layerRef(md)
	if !ok {
		return false, nil
	}
	d, err := e.HV.GetDomain(ctx, name)
	if err != nil {
		return false, err
	}
	sys, ok := systemDisk(d)
	if !ok || d.State == virt.StateShutoff {
		return false, nil
	}
	vols, err := e.HV.ListVolumes(ctx, layer.Pool)
	if err != nil {
		return false, err
	}
	var lv *virt.Volume
	haveImage := false
	for i, v := range vols {
		if v.Name == layer.Name {
			lv = &vols[i]
		}
		if image.Pool == layer.Pool && v.Name == image.Name {
			haveImage = true
		}
	}
	switch {
	case lv == nil:
		return false, nil
	case sys.Path == lv.Path && haveImage:
		e.begin(event.KindVM, name, event.StepBaseline, "finishing baseline %s, whose memory was written before the interruption", baseline)
	case sys.Path == lv.BackingPath:
		e.begin(event.KindVM, name, event.StepBaseline, "taking baseline snapshot %s (with memory)", baseline)
	default:
		return false, nil
	}
	desc.MemoryPool, desc.MemoryImage = image.Pool, image.Name
	spec := virt.LayerSnapshotSpec{Name: baseline, Description: desc.String(), Target: systemTarget, Layer: layer, Image: image}
	_, err = e.HV.SnapshotToLayer(ctx, name, spec)
	if errors.Is(err, virt.ErrExists) && sys.Path != lv.Path && haveImage {
		if err := e.HV.DeleteVolume(ctx, image.Pool, image.Name); err != nil {
			return true, fmt.Errorf("replace the leftover memory image %s of %s: %w", image.Name, name, err)
		}
		_, err = e.HV.SnapshotToLayer(ctx, name, spec)
	}
	return true, err
}

// finishImageBaseline takes the disk snapshot of a VM whose memory was just
// saved into ref (the VM is shut off, its disks as they were at the save)
// and restores the image: the VM runs on.
func (e *engine) finishImageBaseline(ctx context.Context, name, baseline string, desc snapmeta.Description, ref virt.VolumeRef) error {
	restore := func() error {
		e.begin(event.KindVM, name, event.StepRevert, "restoring memory from %s", ref.Name)
		if err := e.HV.RestoreDomain(ctx, name, ref.Pool, ref.Name, memoryImageOptions); err != nil {
			return err
		}
		_, err := e.waitState(ctx, name, time.Minute, nil, virt.StateRunning)
		return err
	}
	desc.MemoryPool, desc.MemoryImage = ref.Pool, ref.Name
	e.begin(event.KindVM, name, event.StepBaseline, "taking baseline snapshot %s (with memory)", baseline)
	if _, err := e.HV.CreateSnapshot(ctx, name, virt.SnapshotSpec{Name: baseline, Description: desc.String()}); err != nil {
		if rerr := restore(); rerr != nil {
			return fmt.Errorf("%w; bringing the VM back from its memory image failed too (it is shut off): %w", err, rerr)
		}
		return err
	}
	return restore()
}

// savedImage reports whether a shut off VM was stopped by a memory save
// into ref that no snapshot refers to yet: a baseline interrupted between
// the save and the disk snapshot (the disks have not changed since, the VM
// has not run). libvirt reports the save as stop reason "other".
func (e *engine) savedImage(ctx context.Context, d virt.Domain, ref virt.VolumeRef) bool {
	if d.State != virt.StateShutoff || d.StopReason != virt.StopOther {
		return false
	}
	vols, err := e.HV.ListVolumes(ctx, ref.Pool)
	if err != nil {
		return false
	}
	for _, v := range vols {
		if v.Name == ref.Name {
			return true
		}
	}
	return false
}

// revertImage resets a VM to a snapshot paired with a memory image: the
// disk snapshot is reverted (libvirt stops the VM first), then the image
// restored. Both steps work from any state a killed reset leaves (see
// snapshots.go), so running the reset again converges.
func (e *engine) revertImage(ctx context.Context, vm, name string, ref virt.VolumeRef) (virt.DomainState, error) {
	e.begin(event.KindVM, vm, event.StepRevert, "returning the disks to %s", name)
	if err := retryBusy(ctx, func() error { return e.HV.RevertSnapshot(ctx, vm, name) }); err != nil {
		return "", err
	}
	e.begin(event.KindVM, vm, event.StepRevert, "restoring memory from %s", ref.Name)
	err := retryBusy(ctx, func() error { return e.HV.RestoreDomain(ctx, vm, ref.Pool, ref.Name, memoryImageOptions) })
	if errors.Is(err, virt.ErrNotFound) {
		return "", fmt.Errorf("%w: the memory image of %s is gone; %s is shut off with the disks of %s (legacyvm start %s boots it; legacyvm snapshot delete %s %s --force and apply take the baseline again)", err, name, vm, name, vm, vm, name)
	}
	if err != nil {
		return "", err
	}
	return e.waitState(ctx, vm, 30*time.Second, nil, virt.StateRunning)
}

// ResetResult reports one VM's reset.
type ResetResult struct {
	VM       string           `json:"vm"`
	Snapshot string           `json:"snapshot"`
	State    virt.DomainState `json:"state,omitempty"`
	Took     time.Duration    `json:"took_ns"`
	Err      string           `json:"error,omitempty"`
}

// Reset reverts VMs to their baseline (or to the snapshot named to) in
// parallel and reports how long each took.
func (e *engine) Reset(ctx context.Context, names []string, to string) ([]ResetResult, error) {
	doms, err := e.selectManaged(ctx, names)
	if err != nil {
		return nil, err
	}
	res := make([]ResetResult, len(doms))
	vmNames := make([]string, len(doms))
	for i, d := range doms {
		vmNames[i] = d.Name
		target := to
		if target == "" {
			target = baselineOf(d)
		}
		res[i] = ResetResult{VM: d.Name, Snapshot: target}
	}
	rs := e.forEach(ctx, vmNames, "reset", func(ctx context.Context, name string) error {
		var r *ResetResult
		for i := range res {
			if res[i].VM == name {
				r = &res[i]
			}
		}
		if r.Snapshot == "" {
			return fmt.Errorf("%s has no snapshot policy, so no baseline: name a snapshot with --to", name)
		}
		start := time.Now()
		e.begin(event.KindVM, name, event.StepRevert, "reverting to %s", r.Snapshot)
		st, err := e.RevertSnapshot(ctx, name, r.Snapshot)
		r.State = st
		r.Took = time.Since(start)
		if err == nil {
			e.stepDone(event.KindVM, name, event.StepRevert, r.Took, "reverted to %s in %s (%s)", r.Snapshot, r.Took.Round(time.Millisecond), st)
		}
		return err
	})
	for i, x := range rs {
		res[i].Err = x.Err
	}
	return res, nil
}

// TickResult reports what a scheduler tick did for one VM.
type TickResult struct {
	VM      string   `json:"vm"`
	Policy  string   `json:"policy"`
	Created string   `json:"created,omitempty"`
	Pruned  []string `json:"pruned,omitempty"`
	Err     string   `json:"error,omitempty"`
}

// tickPlan is what a tick would do for one VM (for plan and --dry-run).
type tickPlan struct {
	VM       string
	Policy   *virt.PolicyRef
	Create   string // "" when nothing is due
	Prune    []snapmeta.Info
	Schedule vmSchedule
}

// planTick computes what the scheduler does for d at now, from the
// domain's recorded policy and its snapshots alone.
func planTick(d virt.Domain, snaps []virt.Snapshot, now time.Time) (tickPlan, error) {
	tp := tickPlan{VM: d.Name}
	if d.Metadata == nil || d.Metadata.Policy == nil {
		return tp, nil
	}
	p := d.Metadata.Policy
	tp.Policy = p
	infos := classifyAll(snaps, p.Baseline)
	s, ok, err := resolveScheduleWindow(p.Schedule, p.Window, d.UUID+"/"+d.Name)
	if err != nil {
		return tp, err
	}
	room := 0
	if ok {
		tp.Schedule = s
		if dueSnapshot(s, p.Name, d.Metadata.Created, infos, now) {
			tp.Create = autoSnapshotName(p.Name, now)
			room = 1
		}
	}
	tp.Prune = retention(p, infos, now, room)
	return tp, nil
}

// ScheduleNotes says, for each provisioned VM of profile with a snapshot
// policy on the plan's host, what the scheduler does next: scheduled
// snapshots retention deletes at the next tick, and the next scheduled
// snapshot with what retention deletes then. plan prints them as notes;
// they are not changes (apply does not take snapshots).
func (hp *HostPlan) ScheduleNotes(profile string, now time.Time) []string {
	return scheduleNotes(hp.observed, profile, now)
}

func scheduleNotes(o *observation, profile string, now time.Time) []string {
	now = now.UTC().Truncate(time.Minute)
	var notes []string
	for _, name := range sortedKeys(o.Domains) {
		d := o.Domains[name]
		if !ownedBy(d.Metadata, profile) || d.Metadata.Policy == nil || !d.Metadata.Provisioned {
			continue
		}
		p := d.Metadata.Policy
		snaps := o.Snapshots[name]
		infos := classifyAll(snaps, p.Baseline)
		soon := map[string]bool{}
		if pr := retention(p, infos, now, 0); len(pr) > 0 {
			var n []string
			for _, s := range pr {
				soon[s.Name] = true
				n = append(n, s.Name)
			}
			notes = append(notes, fmt.Sprintf("%s: the next tick deletes %s (retention of policy %s)", name, strings.Join(n, ", "), p.Name))
		}
		s, ok, err := resolveScheduleWindow(p.Schedule, p.Window, d.UUID+"/"+d.Name)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if !ok {
			continue
		}
		ref := d.Metadata.Created
		for _, sn := range infos {
			if at := scheduledAt(sn); sn.Kind == snapmeta.Auto && sn.Policy == p.Name && at.After(ref) {
				ref = at
			}
		}
		when, due := s.Next(ref), ""
		if when.IsZero() {
			continue // never comes (a schedule validated before this check)
		}
		if !when.After(now) {
			when, due = now, " (due now)"
		}
		tp, err := planTick(d, snaps, when)
		if err != nil || tp.Create == "" {
			continue
		}
		note := fmt.Sprintf("%s: next scheduled snapshot %s at %s%s", name, tp.Create, when.Format(time.RFC3339), due)
		var then []string
		for _, x := range tp.Prune {
			if !soon[x.Name] {
				then = append(then, x.Name)
			}
		}
		if len(then) > 0 {
			note += "; retention then deletes " + strings.Join(then, ", ")
		}
		notes = append(notes, note)
	}
	return notes
}

// RunDue does one scheduler tick for the named managed VMs (all when
// names is empty): for each VM with a policy, take the due snapshot, then
// prune (only after the snapshot was taken: a failed create prunes
// nothing). Every VM is served even when others fail;
// failures are reported per VM. dryRun only reports.
func (e *engine) RunDue(ctx context.Context, names []string, now time.Time, dryRun bool) ([]TickResult, error) {
	doms, err := e.selectManaged(ctx, names)
	if err != nil {
		return nil, err
	}
	var out []TickResult
	for _, d := range doms {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if d.Metadata.Policy == nil || !d.Metadata.Provisioned {
			continue
		}
		out = append(out, e.tickVM(ctx, d, now, dryRun, true))
	}
	return out, nil
}

// Prune applies retention only (no snapshot is created) to the named
// managed VMs (all when names is empty).
func (e *engine) Prune(ctx context.Context, names []string, now time.Time, dryRun bool) ([]TickResult, error) {
	doms, err := e.selectManaged(ctx, names)
	if err != nil {
		return nil, err
	}
	var out []TickResult
	for _, d := range doms {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if d.Metadata.Policy == nil {
			continue
		}
		out = append(out, e.tickVM(ctx, d, now, dryRun, false))
	}
	return out, nil
}

func (e *engine) tickVM(ctx context.Context, d virt.Domain, now time.Time, dryRun, create bool) TickResult {
	r := TickResult{VM: d.Name, Policy: d.Metadata.Policy.Name}
	snaps, err := e.HV.ListSnapshots(ctx, d.Name)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	tp, err := planTick(d, snaps, now)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if !create && tp.Create != "" {
		tp.Create = ""
		tp.Prune = retention(tp.Policy, classifyAll(snaps, tp.Policy.Baseline), now, 0)
	}
	// Create first, prune after: a create that fails (disk full, libvirt
	// refused) must not cost a restore point, so nothing is pruned then.
	// tp.Prune was computed with room for the new snapshot, which is the
	// newest and not expired: it is what retention removes once it exists.
	if tp.Create != "" && !dryRun {
		desc := snapmeta.Description{Kind: snapmeta.Auto, Policy: tp.Policy.Name}
		if exp, ok := policyExpiry(tp.Policy, snapmeta.Info{Snapshot: virt.Snapshot{Name: tp.Create, Created: now}, Kind: snapmeta.Auto, Policy: tp.Policy.Name}); ok {
			desc.Expires = &exp // informational: retention follows the current policy
		}
		cur, err := e.HV.GetDomain(ctx, d.Name)
		if err != nil {
			r.Err = fmt.Sprintf("create %s: %v", tp.Create, err)
			return r
		}
		// A running VM's internal snapshot always holds its memory on
		// libvirt 9.0 (memory = false only matters for VMs that are off).
		memory := tp.Policy.Memory || cur.State != virt.StateShutoff
		err = retryBusy(ctx, func() error {
			_, err := e.HV.CreateSnapshot(ctx, d.Name, virt.SnapshotSpec{Name: tp.Create, Description: desc.String(), Memory: memory})
			return err
		})
		if err != nil {
			r.Err = fmt.Sprintf("create %s: %v (nothing pruned)", tp.Create, err)
			return r
		}
	}
	r.Created = tp.Create
	for _, s := range tp.Prune {
		if s.Name == tp.Create {
			panic("retention listed the snapshot it just took: " + s.Name)
		}
		if !dryRun {
			if err := retryBusy(ctx, func() error { return e.HV.DeleteSnapshot(ctx, d.Name, s.Name) }); err != nil && !errors.Is(err, virt.ErrNotFound) {
				r.Err = fmt.Sprintf("prune %s: %v", s.Name, err)
				return r
			}
		}
		r.Pruned = append(r.Pruned, s.Name)
	}
	return r
}

// retryBusy retries f while libvirt reports the domain busy (another job
// holds its lock), with backoff: 0.5s, 1s, 2s, 4s.
func retryBusy(ctx context.Context, f func() error) error {
	wait := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || !errors.Is(err, virt.ErrBusy) || attempt == 4 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
