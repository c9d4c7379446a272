package orchestrator

import (
	"encoding/json"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// SnapshotKind classifies snapshots by who made them.
type SnapshotKind string

const (
	// SnapshotBaseline is the protected snapshot taken after provisioning;
	// retention and prune never delete it.
	SnapshotBaseline SnapshotKind = "baseline"
	// SnapshotAuto is taken by a schedule and subject to retention.
	SnapshotAuto SnapshotKind = "auto"
	// SnapshotManual is taken by `legacyvm snapshot create`; never pruned.
	SnapshotManual SnapshotKind = "manual"
)

// SnapshotDescription is the JSON legacyvm stores in a snapshot's
// description, so retention can be computed from libvirt alone. It never
// holds a secret.
type SnapshotDescription struct {
	Kind   SnapshotKind `json:"legacyvm"`
	Policy string       `json:"policy,omitempty"`
	// Expires is when retention may delete the snapshot (auto only).
	Expires *time.Time `json:"expires,omitempty"`
	// Note is the user's description (manual snapshots).
	Note string `json:"note,omitempty"`
	// MemoryPool and MemoryImage name the volume holding the memory of a
	// baseline taken as a memory image (see below); the snapshot itself
	// then holds the disks only. Empty for internal memory snapshots.
	MemoryPool  string `json:"memory_pool,omitempty"`
	MemoryImage string `json:"memory_image,omitempty"`
}

// A memory baseline is a memory image plus a disk snapshot: the running VM's
// memory is saved into a volume of its pool (the VM stops, libvirt's
// virDomainSave), the disks of the stopped VM get an internal snapshot
// without memory, and the image is restored (the VM runs on). A reset
// reverts the disk snapshot (which stops the VM) and restores the image.
// Measured in bench/README.md against the internal memory snapshot of
// earlier versions: the restore streams the image from a plain file
// instead of reading the RAM back through the qcow2 layer, and the RAM no
// longer sits in the VM's disk file.
//
// Each step of a reset is "make it so" whatever the state before: the disk
// revert works on a running or stopped VM, the restore needs the VM
// stopped, which the revert leaves it. A reset interrupted at any point
// (SIGKILL of legacyvm; libvirtd finishes or fails the call in flight)
// leaves the VM running at the baseline, stopped at the baseline disk, or
// running in its old state, and the next reset converges from each.
//
// VMs whose baseline is an internal memory snapshot (made by earlier
// versions: no memory_image in its description) keep being reset by
// reverting that snapshot. To move one to a memory image, delete its
// baseline (legacyvm snapshot delete VM BASELINE --force) and apply: the
// missing baseline is taken again, as a memory image.

// memoryImageOptions are the save and restore options of memory images.
// The page cache is used: a restore of an image read recently (the
// baseline of a VM that is reset often) is served from memory.
var memoryImageOptions = virt.SaveOptions{}

// volumeRoleMemory is the role of a memory image volume in a domain's
// metadata.
const volumeRoleMemory = "memory"

// memoryImageVolumeName is the volume holding the memory image of an
// instance's baseline.
func memoryImageVolumeName(instance string) string { return namePrefix + instance + "-baseline.mem" }

// memoryImageRef is the memory image volume the domain's metadata lists
// (role "memory").
func memoryImageRef(m *virt.Metadata) (virt.VolumeRef, bool) {
	if m == nil {
		return virt.VolumeRef{}, false
	}
	for _, v := range m.Volumes {
		if v.Role == volumeRoleMemory {
			return v, true
		}
	}
	return virt.VolumeRef{}, false
}

// String encodes the description as libvirt stores it.
func (d SnapshotDescription) String() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ParseSnapshotDescription decodes a description legacyvm wrote; ok is false
// for snapshots made by someone else (treated as manual, never pruned).
func ParseSnapshotDescription(s string) (d SnapshotDescription, ok bool) {
	if err := json.Unmarshal([]byte(s), &d); err != nil || d.Kind == "" {
		return SnapshotDescription{}, false
	}
	return d, true
}
