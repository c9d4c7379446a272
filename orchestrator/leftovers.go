package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// answerSuffix ends the name of every answer-media volume
// (answerVolumeName).
const answerSuffix = "-answer.iso"

// answerInstance returns the instance an answer-media volume was made for
// (lvm-<instance>-answer.iso).
func answerInstance(volume string) (string, bool) {
	s, ok := strings.CutPrefix(volume, namePrefix)
	if !ok {
		return "", false
	}
	s, ok = strings.CutSuffix(s, answerSuffix)
	return s, ok && s != ""
}

// orphanAnswerMedia lists the answer-media volumes of pool that no domain
// owns: none lists it in its metadata and none has it as a disk. Answer
// media hold a product key; apply deletes them once setup ends, so one
// without an owner was left by an interrupted or failed rollback (or a
// domain undefined by hand). Sorted by name.
func orphanAnswerMedia(doms []virt.Domain, pool string, vols []virt.Volume) []virt.Volume {
	owned := map[string]bool{}
	for _, d := range doms {
		if d.Metadata != nil {
			for _, v := range d.Metadata.Volumes {
				owned[v.Pool+"/"+v.Name] = true
			}
		}
		for _, disk := range d.Disks {
			owned["path:"+disk.Path] = true
		}
	}
	var out []virt.Volume
	for _, v := range vols {
		if _, ok := answerInstance(v.Name); !ok {
			continue
		}
		if owned[pool+"/"+v.Name] || (v.Path != "" && owned["path:"+v.Path]) {
			continue
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// orphanAnswerNote is what plan says about answer media no VM owns that it
// does not delete (they were made for a VM the profile does not declare).
func orphanAnswerNote(pool string, v virt.Volume) string {
	inst, _ := answerInstance(v.Name)
	return fmt.Sprintf("volume %s in pool %s is answer media (it holds a product key) that no VM owns: a failed or interrupted setup of %s left it. "+
		"apply or destroy of the profile that declares %s deletes it; or delete it now: virsh vol-delete --pool %s %s", v.Name, pool, inst, inst, pool, v.Name)
}

// planOrphanAnswers adds to plan a delete of every answer medium in the
// observed pool that no VM owns and that was made for one of instances
// (apply: it would stand in the way of the new VM's media; destroy: it is
// the profile's), and a note for every other one.
func planOrphanAnswers(plan *Plan, o *observation, pool string, instances map[string]bool) {
	var doms []virt.Domain
	for _, name := range sortedKeys(o.Domains) {
		doms = append(doms, o.Domains[name])
	}
	var vols []virt.Volume
	for _, name := range sortedKeys(o.Volumes) {
		vols = append(vols, o.Volumes[name])
	}
	for _, v := range orphanAnswerMedia(doms, pool, vols) {
		inst, _ := answerInstance(v.Name)
		if !instances[inst] {
			plan.Notes = append(plan.Notes, orphanAnswerNote(pool, v))
			continue
		}
		plan.Changes = append(plan.Changes, Change{Kind: KindVolume, Name: v.Name, Action: ActionDelete,
			Reasons: []Reason{{Code: ReasonOrphanAnswers, Subject: inst}},
			Details: []string{"pool " + pool},
			volume:  &virt.VolumeRef{Pool: pool, Name: v.Name, Role: "answer"}})
	}
}

// deleteVolumeChange runs a KindVolume delete.
func (e *engine) deleteVolumeChange(ctx context.Context, c Change) error {
	e.begin(event.KindVolume, c.Name, event.StepDelete, "deleting left-over answer media")
	if err := e.HV.DeleteVolume(ctx, c.volume.Pool, c.volume.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		return err
	}
	return nil
}

// verifyAnswerMedia reports answer media no VM owns in the pools the
// host's managed VMs use (and "default", and extraPools), as warnings with
// the command that deletes them.
func verifyAnswerMedia(ctx context.Context, hv virt.Hypervisor, doms []virt.Domain, extraPools ...string) ([]hostcheck.Finding, error) {
	pools := map[string]bool{"default": true}
	for _, p := range extraPools {
		if p != "" {
			pools[p] = true
		}
	}
	for _, d := range doms {
		if d.Metadata != nil {
			for _, v := range d.Metadata.Volumes {
				pools[v.Pool] = true
			}
		}
	}
	var out []hostcheck.Finding
	for _, pool := range sortedKeys(pools) {
		vols, err := hv.ListVolumes(ctx, pool)
		if errors.Is(err, virt.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list volumes of pool %s: %w", pool, err)
		}
		for _, v := range orphanAnswerMedia(doms, pool, vols) {
			inst, _ := answerInstance(v.Name)
			out = append(out, hostcheck.Finding{Check: "answer-media", Severity: hostcheck.SeverityWarn,
				Message: fmt.Sprintf("volume %s in pool %s is answer media (it holds a product key) that no VM owns: a failed or interrupted setup of %s left it", v.Name, pool, inst),
				Fix:     fmt.Sprintf("applying or destroying the profile that declares %s deletes it; or: virsh vol-delete --pool %s %s", inst, pool, v.Name)})
		}
	}
	return out, nil
}
