package libvirt

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// layerHelperPrefix names the short-lived inactive domain PrepareLayer
// defines to have libvirt put the mark into the layer: libvirt has no
// storage call for an internal snapshot of a volume, but it takes one of
// every disk of a shut off domain (qemu-img snapshot -c). The helper has
// no NIC, never runs and is undefined at once.
const layerHelperPrefix = "legacyvm-layer-"

// PrepareLayer implements virt.Hypervisor.
func (h *Hypervisor) PrepareLayer(ctx context.Context, spec virt.VolumeSpec, mark string) (vol virt.Volume, err error) {
	const op = "prepare layer"
	if spec.BackingPath == "" || spec.Format != "qcow2" {
		return virt.Volume{}, failf(op, spec.Name, virt.ErrInvalid, "a layer is a qcow2 overlay of a disk")
	}
	if _, err := domainxml.SnapshotXML(virt.SnapshotSpec{Name: mark}, false); err != nil {
		return virt.Volume{}, invalid(op, spec.Name, err)
	}
	vol, err = h.CreateVolume(ctx, spec)
	if err != nil {
		return virt.Volume{}, err
	}
	helper := layerHelperPrefix + strings.TrimSuffix(spec.Name, ".qcow2")
	defer func() {
		if err != nil {
			_ = h.DeleteVolume(context.WithoutCancel(ctx), spec.Pool, spec.Name)
		}
	}()
	// A helper left by an interrupted call goes first.
	if old, lerr := h.conn.LookupDomainByName(helper); lerr == nil {
		_ = old.Undefine()
		old.Free()
	}
	def := libvirtxml.Domain{
		Type:        "qemu",
		Name:        helper,
		Description: "legacyvm: marks the empty state of layer " + spec.Name + "; undefined right away",
		Memory:      &libvirtxml.DomainMemory{Value: 16, Unit: "MiB"},
		OS:          &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Type: "hvm"}},
		Devices: &libvirtxml.DomainDeviceList{Disks: []libvirtxml.DomainDisk{{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: vol.Path}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		}}},
	}
	doc, err := def.Marshal()
	if err != nil {
		return virt.Volume{}, fmt.Errorf("%s %q: marshal helper domain: %w", op, spec.Name, err)
	}
	if err := alive(ctx, op, spec.Name); err != nil {
		return virt.Volume{}, err
	}
	d, err := h.conn.DomainDefineXMLFlags(doc, libvirt.DOMAIN_DEFINE_VALIDATE)
	if err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	defer func() {
		if uerr := d.Undefine(); uerr != nil && err == nil {
			err = wrap(op, spec.Name, uerr)
		}
		d.Free()
	}()
	snap, err := domainxml.SnapshotXML(virt.SnapshotSpec{Name: mark}, false)
	if err != nil {
		return virt.Volume{}, invalid(op, spec.Name, err)
	}
	s, err := d.CreateSnapshotXML(snap, libvirt.DOMAIN_SNAPSHOT_CREATE_NO_METADATA)
	if err != nil {
		return virt.Volume{}, wrap(op, spec.Name, err)
	}
	s.Free()
	return vol, nil
}

// SnapshotToLayer implements virt.Hypervisor: an external snapshot without
// metadata (memory into the image file, the disk onto the layer, which
// must exist: REUSE_EXT), then virDomainSaveImageDefineXML points the
// image's disk at the layer and the baseline's metadata is defined
// (REDEFINE) as the internal disk-only snapshot the layer's mark is.
func (h *Hypervisor) SnapshotToLayer(ctx context.Context, dom string, spec virt.LayerSnapshotSpec) (snap virt.Snapshot, err error) {
	const op = "take layered baseline of domain"
	if _, err := domainxml.SnapshotXML(virt.SnapshotSpec{Name: spec.Name, Description: spec.Description}, false); err != nil {
		return virt.Snapshot{}, invalid(op, dom, err)
	}
	if spec.Target == "" {
		return virt.Snapshot{}, failf(op, dom, virt.ErrInvalid, "no disk target")
	}
	p, imagePath, err := h.imagePath(ctx, op, spec.Image.Pool, spec.Image.Name)
	if err != nil {
		return virt.Snapshot{}, err
	}
	defer p.Free()
	layerPath, layerBacking, err := h.volumePathAndBacking(ctx, op, spec.Layer)
	if err != nil {
		return virt.Snapshot{}, err
	}
	d, err := h.lookupDomain(ctx, op, dom)
	if err != nil {
		return virt.Snapshot{}, err
	}
	defer d.Free()
	state, _, err := d.GetState()
	if err != nil {
		return virt.Snapshot{}, wrap(op, dom, err)
	}
	if s := domainState(state); s != virt.StateRunning && s != virt.StatePaused {
		return virt.Snapshot{}, failf(op, dom, virt.ErrInvalidState, "domain is %s; only a running domain has memory to keep", s)
	}
	if old, err := d.SnapshotLookupByName(spec.Name, 0); err == nil {
		old.Free()
		return virt.Snapshot{}, failf(op, dom, virt.ErrExists, "snapshot %s already exists", spec.Name)
	} else if !isNotFound(err) {
		return virt.Snapshot{}, wrap(op, dom, err)
	}
	live, err := h.domainDef(d, op, dom, 0)
	if err != nil {
		return virt.Snapshot{}, err
	}
	disk := findDisk(live, spec.Target)
	if disk == nil || disk.Source == nil || disk.Source.File == nil {
		return virt.Snapshot{}, failf(op, dom, virt.ErrInvalid, "domain has no file disk %s", spec.Target)
	}
	switch disk.Source.File.File {
	case layerPath:
		// An interrupted call: the domain already runs on the layer; the
		// image must have been written before the disk moved.
		if v, err := p.LookupStorageVolByName(spec.Image.Name); err != nil {
			_ = p.Refresh(0)
			if v, err = p.LookupStorageVolByName(spec.Image.Name); err != nil {
				return virt.Snapshot{}, failf(op, dom, virt.ErrInvalidState, "domain runs on layer %s but its memory image %s is missing", spec.Layer.Name, spec.Image.Name)
			}
			v.Free()
		} else {
			v.Free()
		}
	case layerBacking:
		if v, err := p.LookupStorageVolByName(spec.Image.Name); err == nil {
			v.Free()
			return virt.Snapshot{}, failf(op, dom, virt.ErrExists, "volume %s already exists in pool %s", spec.Image.Name, spec.Image.Pool)
		} else if !isNotFound(err) {
			return virt.Snapshot{}, wrap(op, dom, err)
		}
		if err := h.externalSnapshot(ctx, op, dom, spec.Target, imagePath, layerPath, live); err != nil {
			_ = p.Refresh(0)
			if v, lerr := p.LookupStorageVolByName(spec.Image.Name); lerr == nil {
				_ = v.Delete(0)
				v.Free()
			}
			return virt.Snapshot{}, err
		}
		_ = p.Refresh(0)
	default:
		return virt.Snapshot{}, failf(op, dom, virt.ErrInvalid, "layer %s is not on top of disk %s (%s)", spec.Layer.Name, spec.Target, disk.Source.File.File)
	}
	if err := h.pointImageAtLayer(ctx, op, dom, d, spec.Target, imagePath); err != nil {
		return virt.Snapshot{}, err
	}
	return h.redefineLayerSnapshot(ctx, op, dom, d, spec)
}

// volumePathAndBacking returns a volume's path and its backing file's.
func (h *Hypervisor) volumePathAndBacking(ctx context.Context, op string, ref virt.VolumeRef) (string, string, error) {
	p, err := h.lookupPool(ctx, op, ref.Pool)
	if err != nil {
		return "", "", err
	}
	defer p.Free()
	v, err := p.LookupStorageVolByName(ref.Name)
	if err != nil {
		return "", "", wrap(op, ref.Name, err)
	}
	defer v.Free()
	doc, err := v.GetXMLDesc(0)
	if err != nil {
		return "", "", wrap(op, ref.Name, err)
	}
	var x libvirtxml.StorageVolume
	if err := x.Unmarshal(doc); err != nil {
		return "", "", fmt.Errorf("%s %q: parse volume: %w", op, ref.Name, err)
	}
	if x.Target == nil || x.Target.Path == "" {
		return "", "", failf(op, ref.Name, virt.ErrInvalid, "volume has no path")
	}
	if x.BackingStore == nil || x.BackingStore.Path == "" {
		return "", "", failf(op, ref.Name, virt.ErrInvalid, "volume %s is not an overlay", ref.Name)
	}
	return x.Target.Path, x.BackingStore.Path, nil
}

func (h *Hypervisor) domainDef(d *libvirt.Domain, op, dom string, flags libvirt.DomainXMLFlags) (*libvirtxml.Domain, error) {
	doc, err := d.GetXMLDesc(flags)
	if err != nil {
		return nil, wrap(op, dom, err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("%s %q: parse definition: %w", op, dom, err)
	}
	return &def, nil
}

func findDisk(def *libvirtxml.Domain, target string) *libvirtxml.DomainDisk {
	if def == nil || def.Devices == nil {
		return nil
	}
	for i := range def.Devices.Disks {
		if t := def.Devices.Disks[i].Target; t != nil && t.Dev == target {
			return &def.Devices.Disks[i]
		}
	}
	return nil
}

// externalSnapshot writes the memory to imagePath and moves disk target
// onto layerPath (pre-made: REUSE_EXT); the other disks are left out
// (read-only CD-ROMs). No metadata: legacyvm records the baseline itself.
func (h *Hypervisor) externalSnapshot(ctx context.Context, op, dom, target, imagePath, layerPath string, live *libvirtxml.Domain) error {
	x := libvirtxml.DomainSnapshot{
		Memory: &libvirtxml.DomainSnapshotMemory{Snapshot: "external", File: imagePath},
	}
	for _, disk := range live.Devices.Disks {
		if disk.Target == nil {
			continue
		}
		sd := libvirtxml.DomainSnapshotDisk{Name: disk.Target.Dev, Snapshot: "no"}
		if disk.Target.Dev == target {
			sd.Snapshot = "external"
			sd.Driver = &libvirtxml.DomainDiskDriver{Type: "qcow2"}
			sd.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: layerPath}}
		}
		if x.Disks == nil {
			x.Disks = &libvirtxml.DomainSnapshotDisks{}
		}
		x.Disks.Disks = append(x.Disks.Disks, sd)
	}
	doc, err := x.Marshal()
	if err != nil {
		return fmt.Errorf("%s %q: marshal snapshot: %w", op, dom, err)
	}
	// On a spare connection (longcall.go): writing the memory takes seconds.
	return h.longDomainCall(ctx, op, dom, func(d *libvirt.Domain) error {
		if err := alive(ctx, op, dom); err != nil {
			return err
		}
		s, err := d.CreateSnapshotXML(doc, libvirt.DOMAIN_SNAPSHOT_CREATE_NO_METADATA|libvirt.DOMAIN_SNAPSHOT_CREATE_REUSE_EXT|libvirt.DOMAIN_SNAPSHOT_CREATE_ATOMIC)
		if err != nil {
			return wrap(op, dom, err)
		}
		s.Free()
		return nil
	})
}

// pointImageAtLayer rewrites the definition inside the memory image so
// that a restore opens the disk the domain runs on now (the layer) rather
// than the frozen one the image was written against.
func (h *Hypervisor) pointImageAtLayer(ctx context.Context, op, dom string, d *libvirt.Domain, target, imagePath string) error {
	live, err := h.domainDef(d, op, dom, libvirt.DOMAIN_XML_SECURE)
	if err != nil {
		return err
	}
	now := findDisk(live, target)
	if now == nil {
		return failf(op, dom, virt.ErrInvalid, "domain has no disk %s", target)
	}
	doc, err := h.conn.DomainSaveImageGetXMLDesc(imagePath, libvirt.DOMAIN_SAVE_IMAGE_XML_SECURE)
	if err != nil {
		return wrap(op, dom, err)
	}
	var img libvirtxml.Domain
	if err := img.Unmarshal(doc); err != nil {
		return fmt.Errorf("%s %q: parse the image's definition: %w", op, dom, err)
	}
	if img.Name != dom || img.UUID != live.UUID {
		return failf(op, dom, virt.ErrInvalid, "the memory image holds another domain")
	}
	old := findDisk(&img, target)
	if old == nil {
		return failf(op, dom, virt.ErrInvalid, "the memory image has no disk %s", target)
	}
	if old.Source != nil && now.Source != nil && old.Source.File != nil && now.Source.File != nil && old.Source.File.File == now.Source.File.File {
		return nil
	}
	old.Source, old.BackingStore = now.Source, now.BackingStore
	out, err := img.Marshal()
	if err != nil {
		return fmt.Errorf("%s %q: marshal the image's definition: %w", op, dom, err)
	}
	if err := alive(ctx, op, dom); err != nil {
		return err
	}
	return wrap(op, dom, h.conn.DomainSaveImageDefineXML(imagePath, out, 0))
}

// redefineLayerSnapshot records the baseline: the layer's mark as an
// internal disk-only snapshot of the shut off domain, holding the
// domain's persistent definition as it is now (on the layer).
func (h *Hypervisor) redefineLayerSnapshot(ctx context.Context, op, dom string, d *libvirt.Domain, spec virt.LayerSnapshotSpec) (virt.Snapshot, error) {
	def, err := h.domainDef(d, op, dom, libvirt.DOMAIN_XML_INACTIVE|libvirt.DOMAIN_XML_SECURE)
	if err != nil {
		return virt.Snapshot{}, err
	}
	x := libvirtxml.DomainSnapshot{
		Name:         spec.Name,
		Description:  spec.Description,
		State:        "shutoff",
		CreationTime: strconv.FormatInt(time.Now().Unix(), 10),
		Memory:       &libvirtxml.DomainSnapshotMemory{Snapshot: "no"},
		Domain:       def,
	}
	// Its parent is the current snapshot, and it becomes current, as a
	// snapshot libvirt takes itself.
	if cur, err := d.SnapshotCurrent(0); err == nil {
		if n, err := cur.GetName(); err == nil {
			x.Parent = &libvirtxml.DomainSnapshotParent{Name: n}
		}
		cur.Free()
	}
	for _, disk := range def.Devices.Disks {
		if disk.Target == nil {
			continue
		}
		sd := libvirtxml.DomainSnapshotDisk{Name: disk.Target.Dev, Snapshot: "no"}
		if disk.Target.Dev == spec.Target {
			sd.Snapshot = "internal"
		}
		if x.Disks == nil {
			x.Disks = &libvirtxml.DomainSnapshotDisks{}
		}
		x.Disks.Disks = append(x.Disks.Disks, sd)
	}
	doc, err := x.Marshal()
	if err != nil {
		return virt.Snapshot{}, fmt.Errorf("%s %q: marshal snapshot: %w", op, dom, err)
	}
	if err := alive(ctx, op, dom); err != nil {
		return virt.Snapshot{}, err
	}
	s, err := d.CreateSnapshotXML(doc, libvirt.DOMAIN_SNAPSHOT_CREATE_REDEFINE|libvirt.DOMAIN_SNAPSHOT_CREATE_CURRENT)
	if err != nil {
		return virt.Snapshot{}, wrap(op, dom, err)
	}
	defer s.Free()
	return observeSnapshot(op, dom, s)
}
