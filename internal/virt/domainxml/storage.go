package domainxml

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// DefaultVolumeMode is the file mode of volumes whose spec gives none: only
// root (and, after libvirt's relabelling, QEMU) may read a VM's disk.
const DefaultVolumeMode = 0o600

// Volume renders a volume to create in spec.Pool (the pool itself is not in
// the XML). Capacity is in bytes. A qcow2 volume with spec.BackingPath is an
// overlay: <backingStore> always names the backing format (BackingFormat,
// default qcow2), because QEMU no longer probes it. Raw volumes (answer
// media) cannot have a backing file. Permissions: spec.Mode, default 0600.
func Volume(spec virt.VolumeSpec) (*libvirtxml.StorageVolume, error) {
	v, err := buildVolume(spec)
	if err != nil {
		return nil, fmt.Errorf("volume %q: %w", spec.Name, err)
	}
	return v, nil
}

// VolumeXML is Volume marshalled to a string.
func VolumeXML(spec virt.VolumeSpec) (string, error) {
	v, err := Volume(spec)
	if err != nil {
		return "", err
	}
	s, err := v.Marshal()
	if err != nil {
		return "", fmt.Errorf("volume %q: marshal: %w", spec.Name, err)
	}
	return s, nil
}

func buildVolume(spec virt.VolumeSpec) (*libvirtxml.StorageVolume, error) {
	if err := checkName("volume", spec.Name); err != nil {
		return nil, err
	}
	if spec.CapacityBytes == 0 {
		return nil, errors.New("capacity is zero")
	}
	switch spec.Format {
	case "qcow2", "raw":
	default:
		return nil, fmt.Errorf("format %q: want qcow2 or raw", spec.Format)
	}
	mode := spec.Mode
	if mode == 0 {
		mode = DefaultVolumeMode
	}
	if mode > 0o7777 {
		return nil, fmt.Errorf("mode %o is not a file mode", mode)
	}
	v := &libvirtxml.StorageVolume{
		Name:     spec.Name,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: spec.CapacityBytes},
		Target: &libvirtxml.StorageVolumeTarget{
			Format:      &libvirtxml.StorageVolumeTargetFormat{Type: spec.Format},
			Permissions: &libvirtxml.StorageVolumeTargetPermissions{Mode: fmt.Sprintf("%04o", mode)},
		},
	}
	if spec.BackingPath == "" {
		if spec.BackingFormat != "" {
			return nil, errors.New("backing format without a backing path")
		}
		return v, nil
	}
	if spec.Format != "qcow2" {
		return nil, fmt.Errorf("a %s volume cannot have a backing file; overlays are qcow2", spec.Format)
	}
	if !strings.HasPrefix(spec.BackingPath, "/") {
		return nil, fmt.Errorf("backing path %q is not absolute", spec.BackingPath)
	}
	bf := spec.BackingFormat
	if bf == "" {
		bf = "qcow2"
	}
	if bf != "qcow2" && bf != "raw" {
		return nil, fmt.Errorf("backing format %q: want qcow2 or raw", bf)
	}
	v.BackingStore = &libvirtxml.StorageVolumeBackingStore{
		Path:   spec.BackingPath,
		Format: &libvirtxml.StorageVolumeTargetFormat{Type: bf},
	}
	return v, nil
}

// ParseVolume reads a volume as libvirt returns it (virStorageVolGetXMLDesc):
// name, path, format, capacity and allocation in bytes, and the backing
// file. Pool is not in the XML and is left for the caller.
func ParseVolume(xml string) (virt.Volume, error) {
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(xml); err != nil {
		return virt.Volume{}, fmt.Errorf("parse volume: %w", err)
	}
	out := virt.Volume{Name: v.Name}
	fail := func(err error) (virt.Volume, error) {
		return virt.Volume{}, fmt.Errorf("parse volume %q: %w", v.Name, err)
	}
	if v.Target != nil {
		out.Path = v.Target.Path
		if v.Target.Format != nil {
			out.Format = v.Target.Format.Type
		}
		if pm := v.Target.Permissions; pm != nil && pm.Mode != "" {
			m, err := strconv.ParseUint(pm.Mode, 8, 32)
			if err != nil || m > 0o7777 {
				return fail(fmt.Errorf("permissions mode %q is not an octal file mode", pm.Mode))
			}
			out.Mode = uint32(m)
		}
	}
	if v.Capacity != nil {
		b, err := bytesOf(v.Capacity.Value, v.Capacity.Unit, "bytes")
		if err != nil {
			return fail(fmt.Errorf("capacity: %w", err))
		}
		out.CapacityBytes = b
	}
	if v.Allocation != nil {
		b, err := bytesOf(v.Allocation.Value, v.Allocation.Unit, "bytes")
		if err != nil {
			return fail(fmt.Errorf("allocation: %w", err))
		}
		out.AllocationBytes = b
	}
	if v.BackingStore != nil {
		out.BackingPath = v.BackingStore.Path
	}
	return out, nil
}

// Pool renders a directory storage pool named name at path (absolute).
// libvirt builds the directory when the pool is built.
func Pool(name, path string) (*libvirtxml.StoragePool, error) {
	if err := checkName("pool", name); err != nil {
		return nil, fmt.Errorf("pool %q: %w", name, err)
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "\x00\n") {
		return nil, fmt.Errorf("pool %q: path %q is not an absolute path", name, path)
	}
	return &libvirtxml.StoragePool{
		Type:   "dir",
		Name:   name,
		Target: &libvirtxml.StoragePoolTarget{Path: path},
	}, nil
}

// PoolXML is Pool marshalled to a string.
func PoolXML(name, path string) (string, error) {
	p, err := Pool(name, path)
	if err != nil {
		return "", err
	}
	s, err := p.Marshal()
	if err != nil {
		return "", fmt.Errorf("pool %q: marshal: %w", name, err)
	}
	return s, nil
}
