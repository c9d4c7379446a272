package orchestrator

import (
	"github.com/legacyvm/legacyvm/internal/virt"
)

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
