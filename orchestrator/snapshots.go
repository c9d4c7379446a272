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
// A new VM's memory baseline is taken without stopping it (layered): before
// the VM first starts, a layer is prepared on top of its system disk (a
// qcow2 overlay holding an internal snapshot, named like the baseline, of
// its empty state); at the baseline one external snapshot writes the
// memory image and moves the running VM onto the layer, leaving the system
// disk frozen underneath as the baseline's disk state; the baseline's
// metadata then records the layer's mark as a disk-only snapshot paired
// with the image. A reset is the same as above: reverting the mark empties
// the layer, the restore resumes the guest on it. Scheduled memory
// snapshots live in the layer beside the mark and survive resets. This
// costs one QEMU start per VM where save + restore cost two (each start
// instantiates the VM's traffic filters, serialised inside libvirtd: see
// bench/README.md, applybench). When the layer cannot be used (a VM made
// by an earlier version, a baseline deleted and taken again, a VM already
// running on its layer without a usable image), the baseline is taken by
// saving and restoring the memory as before.
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
	return volumeOfRole(m, volumeRoleMemory)
}

// volumeOfRole is the first volume of the role the metadata lists.
func volumeOfRole(m *virt.Metadata, role string) (virt.VolumeRef, bool) {
	if m == nil {
		return virt.VolumeRef{}, false
	}
	for _, v := range m.Volumes {
		if v.Role == role {
			return v, true
		}
	}
	return virt.VolumeRef{}, false
}

// volumeRoleLayer is the role, in a domain's metadata, of the layer a VM
// with a layered memory baseline runs on.
const volumeRoleLayer = "layer"

// layerVolumeName is the volume of an instance's layer.
func layerVolumeName(instance string) string { return namePrefix + instance + "-live.qcow2" }

// layerRef is the layer volume the domain's metadata lists.
func layerRef(m *virt.Metadata) (virt.VolumeRef, bool) { return volumeOfRole(m, volumeRoleLayer) }

// systemTarget is the target of every VM's system disk.
const systemTarget = "sda"
