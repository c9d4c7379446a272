package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/winguest"
)

// Result reports what Apply or Destroy did per object.
type Result struct {
	Object string        `json:"object"`
	Kind   Kind          `json:"kind"`
	Action Action        `json:"action"`
	Err    string        `json:"error,omitempty"`
	Took   time.Duration `json:"took_ns"`
	// Notes tell the user what to do next (e.g. a restart for a memory
	// change to take effect).
	Notes []string `json:"notes,omitempty"`
	// Hint names what the user should do next (event.HintRestart: stop and
	// start the VM for the change to take effect); front ends word it.
	Hint event.Hint `json:"hint,omitempty"`
}

// ApplyError lists the objects that failed.
type ApplyError struct{ Failed []Result }

func (e *ApplyError) Error() string {
	if len(e.Failed) == 1 {
		return fmt.Sprintf("%s %s: %s", e.Failed[0].Kind, e.Failed[0].Object, e.Failed[0].Err)
	}
	return fmt.Sprintf("%d objects failed (first: %s %s: %s)", len(e.Failed), e.Failed[0].Kind, e.Failed[0].Object, e.Failed[0].Err)
}

// Apply executes plan in dependency order: pools, networks and filters, then
// VMs in parallel (at most Parallelism at once), then the networks and
// filters the profile no longer uses. A VM whose steps fail is rolled back
// to where it was; other VMs go on. The error is an *ApplyError when some
// objects failed. Cancelling ctx lets in-flight VMs finish their current
// step, undo, and stop.
func (e *engine) Apply(ctx context.Context, plan *Plan) ([]Result, error) {
	var (
		mu      sync.Mutex
		results []Result
	)
	record := func(c Change, start time.Time, err error, notes ...string) {
		r := Result{Object: c.Name, Kind: c.Kind, Action: c.Action, Took: time.Since(start), Notes: notes}
		if c.Kind == KindVM && c.Action == ActionUpdate && c.RestartNeeded && err == nil {
			r.Hint = event.HintRestart
		}
		if err != nil {
			r.Err = err.Error()
		}
		if c.Kind != KindVM { // VMs report their own end
			e.finish(event.Kind(c.Kind), c.Name, start, err)
		}
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range results {
			if r.Err != "" {
				return true
			}
		}
		return false
	}

	// Answer-media staging a killed apply left on this machine holds
	// product keys: remove it now (AnswerISO does too, for each build).
	if n, err := winguest.CleanStaleStaging(time.Now()); err != nil {
		e.note(event.KindMedia, "answer media", event.StepCleanup, "%v", err)
	} else if n > 0 {
		e.note(event.KindMedia, "answer media", event.StepCleanup, "removed %d staging directories a killed run left behind", n)
	}

	// 0. Every secret the new VMs need is read now, once per command
	// (planning read the keys already when it checked seats): a missing
	// key or password stops the apply before anything changes, not
	// half-way, and the VMs are given what was read.
	bundle := plan.secrets
	if bundle == nil {
		bundle = newSecretBundle(e.Getenv, e.Fingerprint)
	}
	vmSecrets := map[string]secrets{}
	for _, c := range plan.Changes {
		if c.Kind != KindVM || (c.Action != ActionCreate && c.Action != ActionReplace) {
			continue
		}
		sec, err := bundle.forVM(ctx, c.vm)
		if err != nil {
			record(c, time.Now(), fmt.Errorf("nothing was changed: %w", err))
		}
		vmSecrets[c.Name] = sec
	}
	if failed() {
		return results, &ApplyError{Failed: failures(results)}
	}

	// 1. Pools.
	for _, c := range plan.Changes {
		if c.Kind != KindPool || c.Action != ActionCreate {
			continue
		}
		start := time.Now()
		e.begin(event.KindPool, c.Name, event.StepPool, "creating storage pool at %s", c.pool.Path)
		_, err := e.HV.EnsurePool(ctx, c.pool.Name, c.pool.Path)
		record(c, start, err)
	}
	if failed() {
		return results, &ApplyError{Failed: failures(results)}
	}

	// 1b. Golden images this host lacks, uploaded once and checked.
	for _, c := range plan.Changes {
		if c.Kind != KindImage || c.Action != ActionCreate {
			continue
		}
		start := time.Now()
		record(c, start, e.uploadImage(ctx, c.upload))
	}
	if failed() {
		return results, &ApplyError{Failed: failures(results)}
	}

	// 2. Networks, then their filters (a network's metadata lists its
	// filters, so an interrupted apply leaves nothing unaccounted for).
	for _, c := range plan.Changes {
		if c.Kind != KindNetwork || (c.Action != ActionCreate && c.Action != ActionUpdate) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return results, err
		}
		start := time.Now()
		e.begin(event.KindNetwork, c.Name, event.StepNetwork, "%s network", verb(c.Action))
		spec := c.network.Spec
		spec.Metadata = &virt.Metadata{Profile: plan.Profile, Network: c.network.Decl.Name, SpecHash: c.network.Hash,
			Filters: c.network.Filter.Names(), Created: e.now()}
		if c.observedNet != nil && c.observedNet.Metadata != nil && !c.observedNet.Metadata.Created.IsZero() {
			spec.Metadata.Created = c.observedNet.Metadata.Created
		}
		n, err := e.HV.DefineNetwork(ctx, spec)
		var notes []string
		if err == nil && n.Stale {
			notes = append(notes, "running VMs keep the old network settings until the network restarts (stop its VMs, then apply again)")
		}
		record(c, start, err, notes...)
	}
	for _, c := range plan.Changes {
		if c.Kind != KindFilter || (c.Action != ActionCreate && c.Action != ActionUpdate) {
			continue
		}
		start := time.Now()
		e.begin(event.KindFilter, c.Name, event.StepFilter, "%s traffic filter", verb(c.Action))
		record(c, start, e.HV.DefineFilter(ctx, c.network.Filter))
	}
	if failed() {
		return results, &ApplyError{Failed: failures(results)}
	}

	// Left-over answer media, before the VMs whose media they would
	// collide with.
	for _, c := range plan.Changes {
		if c.Kind != KindVolume || c.Action != ActionDelete {
			continue
		}
		start := time.Now()
		record(c, start, e.deleteVolumeChange(ctx, c))
	}
	if failed() {
		return results, &ApplyError{Failed: failures(results)}
	}

	// 3. VMs, in parallel. A VM whose work has started finishes it even
	// when ctx is cancelled (the first Ctrl-C); VMs not yet started are
	// skipped.
	vmCtx := context.WithoutCancel(ctx)
	var g errgroup.Group
	g.SetLimit(e.parallelism())
	for _, c := range plan.Changes {
		if c.Kind != KindVM || c.Action == ActionNoop {
			continue
		}
		c := c
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				record(c, time.Now(), fmt.Errorf("not started: %w", err))
				return nil
			}
			start := time.Now()
			var err error
			var notes []string
			switch c.Action {
			case ActionCreate:
				err = e.createVM(vmCtx, c.vm, vmSecrets[c.Name])
			case ActionReplace:
				if err = e.teardownVM(vmCtx, *c.observedDomain); err == nil {
					err = e.createVM(vmCtx, c.vm, vmSecrets[c.Name])
				}
			case ActionUpdate:
				notes, err = e.updateVM(vmCtx, c)
			case ActionDelete:
				err = e.teardownVM(vmCtx, *c.observedDomain)
			}
			e.finish(event.KindVM, c.Name, start, err)
			record(c, start, err, notes...)
			return nil
		})
	}
	_ = g.Wait()

	// Doors of VMs that were not redefined above.
	e.applyDoors(ctx, plan, func(c Change, err error) { record(c, time.Now(), err) })

	// 4. Networks no longer declared (after their VMs are gone).
	for _, c := range plan.Changes {
		if c.Kind != KindNetwork || c.Action != ActionDelete {
			continue
		}
		start := time.Now()
		e.begin(event.KindNetwork, c.Name, event.StepDelete, "deleting network and its filters")
		record(c, start, e.deleteNetwork(ctx, c.Name, c.filterNames))
	}
	for _, c := range plan.Changes {
		if c.Kind != KindFilter || c.Action != ActionDelete {
			continue
		}
		start := time.Now()
		e.begin(event.KindFilter, c.Name, event.StepDelete, "deleting left-over filter")
		err := e.HV.DeleteFilter(ctx, c.Name)
		if errors.Is(err, virt.ErrNotFound) {
			err = nil
		}
		record(c, start, err)
	}
	// 5. Storage pools legacyvm made for image directories nothing uses
	// any more, once every VM went (a VM left by a failure keeps its pool:
	// the next destroy plans it again).
	if !failed() {
		for _, c := range plan.Changes {
			if c.Kind != KindPool || c.Action != ActionDelete {
				continue
			}
			start := time.Now()
			e.begin(event.KindPool, c.Name, event.StepDelete, "removing storage pool (its directory stays)")
			err := e.HV.RemovePool(ctx, c.Name)
			if errors.Is(err, virt.ErrNotFound) {
				err = nil
			}
			record(c, start, err)
		}
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Object < results[j].Object })
	if f := failures(results); len(f) > 0 {
		return results, &ApplyError{Failed: f}
	}
	return results, ctx.Err()
}

func failures(rs []Result) []Result {
	var out []Result
	for _, r := range rs {
		if r.Err != "" {
			out = append(out, r)
		}
	}
	return out
}

func verb(a Action) string {
	switch a {
	case ActionCreate:
		return "creating"
	case ActionUpdate:
		return "updating"
	case ActionDelete:
		return "deleting"
	case ActionReplace:
		return "replacing"
	}
	return string(a)
}

// createVM provisions one instance: domain definition first (marked not yet
// provisioned, listing the volumes it will own, so an interrupted apply
// leaves nothing untracked), then the system disk, answer media and setup,
// the baseline snapshot, and finally the VM running and marked provisioned.
// Any failure undoes what this call created. sec are the secrets Apply
// read for it.
func (e *engine) createVM(ctx context.Context, dv *desiredVM, sec secrets) (err error) {
	name := dv.Spec.Name
	r := newReverter()
	if e.undoPause > 0 {
		r.pause = e.undoPause
	}
	defer func() { err = r.fail(err) }()
	// Undo runs even when ctx is cancelled: it must not leave half a VM.
	undoCtx := context.WithoutCancel(ctx)

	spec := dv.Spec
	md := *spec.Metadata
	md.Created = e.now()
	md.Provisioned = false
	if md.License != nil {
		lr := *md.License
		if !sec.key.IsZero() {
			lr.LastGroup = sec.key.LastGroup()
			if sec.id.Fingerprint != "" {
				// Identified by planning, with the same secret.
				lr.Fingerprint, lr.SecretID = sec.id.Fingerprint, sec.id.SecretID
			} else if e.Fingerprint != nil {
				doms, err := e.HV.ListDomains(ctx)
				if err != nil {
					return fmt.Errorf("fingerprint the key of licence %s: %w", lr.Label, err)
				}
				fp, sid, err := e.Fingerprint(sec.key, fingerprintHolders(doms))
				if err != nil {
					return fmt.Errorf("fingerprint the key of licence %s: %w", lr.Label, err)
				}
				lr.Fingerprint, lr.SecretID = fp, sid
			}
		}
		md.License = &lr
	}
	spec.Metadata = &md

	e.begin(event.KindVM, name, event.StepDefine, "defining domain")
	if _, err := e.HV.DefineDomain(ctx, spec); err != nil {
		return err
	}
	r.add("undefine domain "+name, func() error {
		if err := e.HV.DestroyDomain(undoCtx, name); err != nil && !errors.Is(err, virt.ErrInvalidState) && !errors.Is(err, virt.ErrNotFound) {
			return err
		}
		// A volume that could not be deleted is still listed in the
		// domain's metadata: the domain stays (not provisioned) so that
		// plan shows it and apply or destroy deletes what it lists.
		if r.hasFailed() {
			return fmt.Errorf("%w: domain %s stays defined, not provisioned, listing its volumes; apply (replace) or destroy deletes them", errKept, name)
		}
		if err := e.deleteAllSnapshots(undoCtx, name); err != nil {
			return err
		}
		if err := e.HV.UndefineDomain(undoCtx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return err
		}
		return nil
	})

	if err := e.createSystemVolume(ctx, dv); err != nil {
		return err
	}
	r.add("delete volume "+dv.System.Name, func() error {
		if err := e.HV.DeleteVolume(undoCtx, dv.System.Pool, dv.System.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return err
		}
		return nil
	})

	if ref, ok := layerRef(&md); ok && dv.Policy != nil && dv.Policy.Memory {
		// Before the first start: the layer's mark needs the system disk
		// closed.
		if err := e.prepareLayer(ctx, dv, ref); err != nil {
			return err
		}
		r.add("delete volume "+ref.Name, func() error { return ignoreNotFound(e.HV.DeleteVolume(undoCtx, ref.Pool, ref.Name)) })
	}

	if dv.Answer {
		if err := e.runSetup(ctx, r, undoCtx, dv, sec); err != nil {
			return err
		}
	}

	// The VM is marked provisioned right before its baseline is taken:
	// libvirt keeps a copy of the definition in every snapshot and a revert
	// restores it, so a baseline taken before the mark would make every
	// reset un-provision the VM (plan would then replace it, and snapshot
	// schedules would skip it).
	markProvisioned := func() error {
		md.Provisioned = true
		// Persistent and live: the baseline of a running VM copies the
		// live definition.
		if err := e.HV.SetMetadata(ctx, name, &md); err != nil {
			return fmt.Errorf("mark %s provisioned: %w", name, err)
		}
		return nil
	}
	if p := dv.Policy; p != nil {
		if ref, ok := memoryImageRef(&md); ok && p.Memory {
			r.add("delete memory image "+ref.Name, func() error {
				return ignoreNotFound(e.HV.DeleteVolume(undoCtx, ref.Pool, ref.Name))
			})
		}
		if err := e.takeBaseline(ctx, dv, markProvisioned); err != nil {
			return err
		}
	} else {
		if err := e.ensureRunning(ctx, name); err != nil {
			return err
		}
		if err := markProvisioned(); err != nil {
			return err
		}
	}
	if dv.Instance.VM.Autostart {
		if err := e.HV.SetAutostart(ctx, name, true); err != nil {
			return err
		}
	}
	r.success()
	return nil
}

func (e *engine) createSystemVolume(ctx context.Context, dv *desiredVM) error {
	name := dv.Spec.Name
	vs := dv.System
	src := dv.HostImage
	if src == "" {
		src = dv.Image
	}
	if dv.Install == nil {
		img, err := e.HV.VolumeByPath(ctx, src)
		if err != nil {
			if errors.Is(err, virt.ErrNotFound) {
				return fmt.Errorf("golden image %s does not exist on the host (or no storage pool contains it)", src)
			}
			return err
		}
		if vs.CapacityBytes == 0 {
			vs.CapacityBytes = img.CapacityBytes
		}
		if vs.BackingPath != "" && img.Format != "" {
			vs.BackingFormat = img.Format
		}
		if vs.CapacityBytes < img.CapacityBytes {
			return fmt.Errorf("disk size %s is smaller than the golden image %s (%s)", humanBytes(vs.CapacityBytes), dv.Image, humanBytes(img.CapacityBytes))
		}
	}
	var err error
	switch {
	case dv.Install != nil:
		e.begin(event.KindVM, name, event.StepDisk, "creating empty %s system disk", humanBytes(vs.CapacityBytes))
		_, err = e.HV.CreateVolume(ctx, vs)
	case vs.BackingPath != "":
		e.begin(event.KindVM, name, event.StepDisk, "creating linked clone of %s", filepath.Base(dv.Image))
		_, err = e.HV.CreateVolume(ctx, vs)
	default:
		e.begin(event.KindVM, name, event.StepDisk, "copying %s (full clone, %s)", filepath.Base(dv.Image), humanBytes(vs.CapacityBytes))
		stop := e.reportCopy(ctx, name, filepath.Join(e.poolPath(ctx, vs.Pool), vs.Name))
		_, err = e.HV.CloneVolume(ctx, vs, src)
		stop()
	}
	return err
}

// reportCopy reports, every ReportInterval until stop is called, how much
// of a volume being copied exists so far (as libvirt reports the new
// volume's allocation; nothing is reported while libvirt cannot tell).
func (e *engine) reportCopy(ctx context.Context, object, path string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	every := e.ReportInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if v, err := e.HV.VolumeByPath(ctx, path); err == nil && v.AllocationBytes > 0 {
					e.emit(event.Event{Kind: event.KindVM, Object: object, Step: event.StepDisk, Phase: event.Progress,
						Message: fmt.Sprintf("copied %s so far", humanBytes(v.AllocationBytes)), Current: int64(v.AllocationBytes)})
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// poolPath is the directory of a pool ("" when it cannot be read).
func (e *engine) poolPath(ctx context.Context, pool string) string {
	p, err := e.HV.GetPool(ctx, pool)
	if err != nil {
		return ""
	}
	return p.Path
}

// runSetup attaches answer media (and the install ISO), boots the VM and
// waits until setup powers it off, then removes the media: the answer ISO
// holds the product key, so it is deleted as soon as setup is done, and on
// any failure.
func (e *engine) runSetup(ctx context.Context, r *reverter, undoCtx context.Context, dv *desiredVM, sec secrets) error {
	name := dv.Spec.Name
	data, err := buildAnswerMedia(dv, sec)
	if err != nil {
		return fmt.Errorf("answer media for %s: %w", name, err)
	}
	av := virt.VolumeSpec{Pool: dv.System.Pool, Name: answerVolumeName(name), Format: "raw", CapacityBytes: uint64(len(data)), Mode: 0o600}
	e.begin(event.KindVM, name, event.StepUpload, "uploading answer media (%s)", humanBytes(uint64(len(data))))
	vol, err := e.HV.UploadVolume(ctx, av, bytes.NewReader(data), int64(len(data)))
	clear(data)
	if err != nil {
		return err
	}
	removeMedia := func(c context.Context) error {
		var errs []error
		if err := e.HV.ChangeMedia(c, name, "sdb", ""); err != nil && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, err)
		}
		if dv.Install != nil {
			if err := e.HV.ChangeMedia(c, name, "sdc", ""); err != nil && !errors.Is(err, virt.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		if err := e.HV.DeleteVolume(c, av.Pool, av.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	r.add("delete answer media "+av.Name, func() error { return removeMedia(undoCtx) })
	if err := e.HV.ChangeMedia(ctx, name, "sdb", vol.Path); err != nil {
		return err
	}
	timeout := e.SetupTimeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	what := "specialize pass"
	if dv.Install != nil {
		if err := e.HV.ChangeMedia(ctx, name, "sdc", dv.Install.ISO); err != nil {
			return err
		}
		what = "Windows setup"
		if dv.Install.Timeout > 0 {
			timeout = dv.Install.Timeout
		} else {
			timeout = 2 * time.Hour
		}
	}
	e.begin(event.KindVM, name, event.StepSetup, "starting %s (waiting up to %s for the guest to power off)", what, timeout)
	if err := e.HV.StartDomain(ctx, name); err != nil {
		return err
	}
	_, err = e.waitState(ctx, name, timeout, func(d time.Duration) {
		e.going(event.KindVM, name, event.StepSetup, d, "%s running for %s", what, d.Round(time.Second))
	}, virt.StateShutoff)
	if err != nil {
		return fmt.Errorf("%s did not finish: %w", what, err)
	}
	e.stepDone(event.KindVM, name, event.StepSetup, 0, "%s finished; removing answer media", what)
	return removeMedia(ctx)
}

// takeBaseline takes the policy's protected snapshot and leaves the VM
// running. A memory baseline is taken from the running VM (a reset resumes
// it); a disk baseline from the VM shut off, before it starts. before runs
// right before the snapshot is taken.
func (e *engine) takeBaseline(ctx context.Context, dv *desiredVM, before func() error) error {
	name, p := dv.Spec.Name, dv.Policy
	desc := snapmeta.Description{Kind: snapmeta.Baseline, Policy: p.Name}
	if p.Memory {
		if err := e.ensureRunning(ctx, name); err != nil {
			return err
		}
		if p.Settle > 0 {
			e.begin(event.KindVM, name, event.StepSettle, "letting the guest settle for %s before its memory baseline", p.Settle)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(p.Settle):
			}
		}
		if err := before(); err != nil {
			return err
		}
		if ref, ok := memoryImageRef(dv.Spec.Metadata); ok {
			if done, err := e.takeLayerBaseline(ctx, name, p.Baseline, desc, dv.Spec.Metadata, ref); done || err != nil {
				return err
			}
			return e.takeImageBaseline(ctx, name, p.Baseline, desc, ref)
		}
		e.begin(event.KindVM, name, event.StepBaseline, "taking baseline snapshot %s (with memory)", p.Baseline)
		if _, err := e.HV.CreateSnapshot(ctx, name, virt.SnapshotSpec{Name: p.Baseline, Description: desc.String(), Memory: true}); err != nil {
			return err
		}
		return nil
	}
	d, err := e.HV.GetDomain(ctx, name)
	if err != nil {
		return err
	}
	if d.State != virt.StateShutoff {
		return fmt.Errorf("domain %q is %s; a disk-only baseline needs it shut off", name, d.State)
	}
	if err := before(); err != nil {
		return err
	}
	e.begin(event.KindVM, name, event.StepBaseline, "taking baseline snapshot %s", p.Baseline)
	if _, err := e.HV.CreateSnapshot(ctx, name, virt.SnapshotSpec{Name: p.Baseline, Description: desc.String()}); err != nil {
		return err
	}
	return e.ensureRunning(ctx, name)
}

// takeMissingBaseline takes a provisioned VM's baseline from the VM as it
// is: with memory when it runs (a memory image and a disk snapshot when
// the policy keeps memory and the VM lists a memory image volume, else an
// internal snapshot, the only one libvirt 9.0 takes of a running VM), disk
// only when it is shut off. A running VM runs on afterwards (a memory
// image stops it for the save and restores it); a stopped one stays off,
// unless an apply was interrupted after saving its memory for the
// baseline: the baseline is then finished and the VM runs.
func (e *engine) takeMissingBaseline(ctx context.Context, dv *desiredVM) error {
	name, p := dv.Spec.Name, dv.Policy
	d, err := e.HV.GetDomain(ctx, name)
	if err != nil {
		return err
	}
	desc := snapmeta.Description{Kind: snapmeta.Baseline, Policy: p.Name}
	running := d.State != virt.StateShutoff
	if ref, ok := memoryImageRef(dv.Spec.Metadata); ok && p.Memory {
		if running {
			if done, err := e.takeLayerBaseline(ctx, name, p.Baseline, desc, d.Metadata, ref); done || err != nil {
				return err
			}
			return e.takeImageBaseline(ctx, name, p.Baseline, desc, ref)
		}
		if e.savedImage(ctx, d, ref) {
			e.begin(event.KindVM, name, event.StepBaseline, "finishing the baseline whose memory was saved before the interruption")
			return e.finishImageBaseline(ctx, name, p.Baseline, desc, ref)
		}
	}
	e.begin(event.KindVM, name, event.StepBaseline, "taking the missing baseline snapshot %s", p.Baseline)
	_, err = e.HV.CreateSnapshot(ctx, name, virt.SnapshotSpec{Name: p.Baseline, Description: desc.String(), Memory: running})
	return err
}

func (e *engine) ensureRunning(ctx context.Context, name string) error {
	d, err := e.HV.GetDomain(ctx, name)
	if err != nil {
		return err
	}
	if d.State == virt.StateRunning {
		return nil
	}
	if m := d.Metadata; m != nil && m.StopRequested != nil {
		// A new run: its next shutdown is the guest's own again.
		md := *m
		md.StopRequested = nil
		if err := e.HV.SetMetadata(ctx, name, &md); err != nil {
			return err
		}
	}
	e.begin(event.KindVM, name, event.StepStart, "starting")
	if err := e.HV.StartDomain(ctx, name); err != nil {
		return err
	}
	_, err = e.waitState(ctx, name, time.Minute, nil, virt.StateRunning)
	return err
}

// updateVM redefines the domain in place, keeping its provisioning record.
func (e *engine) updateVM(ctx context.Context, c Change) ([]string, error) {
	obs := c.observedDomain
	spec := c.vm.Spec
	md := *spec.Metadata
	if om := obs.Metadata; om != nil {
		md.Created, md.Provisioned = om.Created, om.Provisioned
		// A memory image stays owned (destroy deletes it, reset finds
		// it) while the baseline that refers to it exists, even when the
		// policy no longer asks for memory.
		if ref, ok := memoryImageRef(om); ok {
			if _, has := memoryImageRef(&md); !has {
				md.Volumes = append(slices.Clone(md.Volumes), ref)
			}
		}
		// So does the layer, which the VM may run on: the definition
		// keeps the disk the VM runs on (its system disk is the frozen
		// baseline under the layer and must never be written again).
		if ref, ok := layerRef(om); ok {
			if _, has := layerRef(&md); !has {
				md.Volumes = append(slices.Clone(md.Volumes), ref)
			}
			if sys, ok := systemDisk(*obs); ok && sys.Path == observedLayerPath(*obs, c.vm) {
				spec.Disks = slices.Clone(spec.Disks)
				for i := range spec.Disks {
					if spec.Disks[i].Target == systemTarget {
						spec.Disks[i].Path = sys.Path
					}
				}
			}
		}
		if md.License != nil && om.License != nil && om.License.Label == md.License.Label {
			lr := *md.License
			lr.Fingerprint, lr.SecretID, lr.LastGroup = om.License.Fingerprint, om.License.SecretID, om.License.LastGroup
			md.License = &lr
		}
	}
	spec.Metadata = &md
	e.begin(event.KindVM, c.Name, event.StepDefine, "updating definition in place")
	if _, err := e.HV.DefineDomain(ctx, spec); err != nil {
		return nil, err
	}
	// A running domain keeps its live definition until it restarts; its
	// metadata is brought up to date now (snapshots of a running VM copy
	// the live definition).
	if obs.State != virt.StateShutoff {
		if err := e.HV.SetMetadata(ctx, c.Name, &md); err != nil {
			return nil, err
		}
	}
	if c.rebind {
		if err := e.rebindFilters(ctx, c.Name, spec.Interfaces); err != nil {
			return nil, err
		}
	}
	if c.takeBaseline {
		if err := e.takeMissingBaseline(ctx, c.vm); err != nil {
			return nil, err
		}
	}
	if c.RestartNeeded {
		return []string{"the change takes effect at the next boot"}, nil
	}
	return nil, nil
}

// rebindFilters sets each NIC's traffic filter reference in the
// definition and, when the domain runs, on the live interface: a running
// VM whose filter was removed is isolated again at once, without a
// restart.
func (e *engine) rebindFilters(ctx context.Context, name string, nics []virt.InterfaceSpec) error {
	for _, n := range nics {
		if n.Filter == "" {
			continue
		}
		e.begin(event.KindVM, name, event.StepFilter, "binding traffic filter %s to interface %s", n.Filter, n.MAC)
		if err := e.HV.SetInterfaceFilter(ctx, name, n.MAC, n.Filter, n.FilterParams); err != nil {
			return err
		}
	}
	return nil
}

// teardownVM removes a domain and everything it owns: it is powered off,
// its snapshots deleted (disk contents included), its volumes deleted, and
// the definition removed last, so an interrupted teardown can be resumed.
func (e *engine) teardownVM(ctx context.Context, d virt.Domain) error {
	name := d.Name
	if d.State != virt.StateShutoff {
		e.begin(event.KindVM, name, event.StepStop, "powering off")
		if err := e.HV.DestroyDomain(ctx, name); err != nil && !errors.Is(err, virt.ErrInvalidState) && !errors.Is(err, virt.ErrNotFound) {
			return err
		}
	}
	if err := e.deleteAllSnapshots(ctx, name); err != nil {
		return err
	}
	for _, v := range ownedVolumes(d) {
		e.begin(event.KindVM, name, event.StepDelete, "deleting volume %s", v.Name)
		if err := e.HV.DeleteVolume(ctx, v.Pool, v.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return err
		}
	}
	e.begin(event.KindVM, name, event.StepDelete, "undefining")
	if err := e.HV.UndefineDomain(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		return err
	}
	return nil
}

func (e *engine) deleteAllSnapshots(ctx context.Context, name string) error {
	snaps, err := e.HV.ListSnapshots(ctx, name)
	if err != nil {
		if errors.Is(err, virt.ErrNotFound) {
			return nil
		}
		return err
	}
	// Children before parents keeps libvirt from re-parenting work.
	sort.SliceStable(snaps, func(i, j int) bool { return snaps[i].Created.After(snaps[j].Created) })
	for _, s := range snaps {
		e.begin(event.KindVM, name, event.StepSnapshot, "deleting snapshot %s", s.Name)
		if err := e.HV.DeleteSnapshot(ctx, name, s.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return err
		}
	}
	return nil
}

// ownedVolumes lists the volumes recorded in the domain's metadata.
func ownedVolumes(d virt.Domain) []virt.VolumeRef {
	if d.Metadata == nil {
		return nil
	}
	return d.Metadata.Volumes
}

// deleteNetwork deletes a network's filters, then the network: its
// metadata lists the filters, so a delete interrupted half-way leaves
// nothing legacyvm cannot recognise as its own.
func (e *engine) deleteNetwork(ctx context.Context, name string, filters []string) error {
	// The root filter references the guard: delete the root first.
	sort.Slice(filters, func(i, j int) bool { return len(filters[i]) < len(filters[j]) })
	for _, f := range filters {
		if err := e.HV.DeleteFilter(ctx, f); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return err
		}
	}
	if err := e.HV.DeleteNetwork(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		return err
	}
	return nil
}
