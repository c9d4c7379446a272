package domainxml

import (
	"fmt"
	"strconv"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Snapshot renders an internal snapshot of a domain that is running
// (running true) or shut off:
//
//   - running with spec.Memory: <memory snapshot='internal'/> (RAM and
//     disks, inside the qcow2 images);
//   - running without memory: refused with virt.ErrUnsupported (libvirt 9.0
//     cannot take a disk-only internal snapshot of a running domain, and an
//     external one would mix snapshot kinds);
//   - shut off: <memory snapshot='no'/> (spec.Memory is ignored: there is no
//     RAM to save).
//
// No <disks> element is written: libvirt then aligns every disk to an
// internal snapshot, except those the domain marks snapshot='no' (the
// read-only CD-ROMs). The description must not look like a product key.
func Snapshot(spec virt.SnapshotSpec, running bool) (*libvirtxml.DomainSnapshot, error) {
	if err := checkName("snapshot", spec.Name); err != nil {
		return nil, err
	}
	if err := checkNoKey(fmt.Sprintf("snapshot %q description", spec.Name), spec.Description); err != nil {
		return nil, err
	}
	mem := "no"
	if running {
		if !spec.Memory {
			return nil, fmt.Errorf("snapshot %q: an internal snapshot of a running domain must include memory: %w", spec.Name, virt.ErrUnsupported)
		}
		mem = "internal"
	}
	return &libvirtxml.DomainSnapshot{
		Name:        spec.Name,
		Description: spec.Description,
		Memory:      &libvirtxml.DomainSnapshotMemory{Snapshot: mem},
	}, nil
}

// SnapshotXML is Snapshot marshalled to a string.
func SnapshotXML(spec virt.SnapshotSpec, running bool) (string, error) {
	s, err := Snapshot(spec, running)
	if err != nil {
		return "", err
	}
	out, err := s.Marshal()
	if err != nil {
		return "", fmt.Errorf("snapshot %q: marshal: %w", spec.Name, err)
	}
	return out, nil
}

// ParseSnapshot reads a snapshot as libvirt returns it
// (virDomainSnapshotGetXMLDesc): name, description, parent, creation time
// (UTC), the domain state it recorded and whether it holds memory. Current
// is not in the XML; the caller sets it.
func ParseSnapshot(xml string) (virt.Snapshot, error) {
	var s libvirtxml.DomainSnapshot
	if err := s.Unmarshal(xml); err != nil {
		return virt.Snapshot{}, fmt.Errorf("parse snapshot: %w", err)
	}
	out := virt.Snapshot{
		Name:        s.Name,
		Description: s.Description,
		State:       snapshotState(s.State),
	}
	if s.Parent != nil {
		out.Parent = s.Parent.Name
	}
	if s.CreationTime != "" {
		sec, err := strconv.ParseInt(s.CreationTime, 10, 64)
		if err != nil {
			return virt.Snapshot{}, fmt.Errorf("parse snapshot %q: creation time %q: %w", s.Name, s.CreationTime, err)
		}
		out.Created = time.Unix(sec, 0).UTC()
	}
	if s.Memory != nil {
		out.Memory = s.Memory.Snapshot == "internal" || s.Memory.Snapshot == "external"
	} else {
		// Old libvirt wrote no <memory>: a running or paused snapshot
		// then always held the memory.
		out.Memory = out.State == virt.StateRunning || out.State == virt.StatePaused
	}
	return out, nil
}

// snapshotState maps libvirt's snapshot <state> to a DomainState.
func snapshotState(s string) virt.DomainState {
	switch s {
	case "running", "blocked":
		return virt.StateRunning
	case "paused", "pmsuspended":
		return virt.StatePaused
	case "shutoff":
		return virt.StateShutoff
	case "shutdown":
		return virt.StateShutdown
	case "crashed":
		return virt.StateCrashed
	default: // "disk-snapshot", "nostate", ...
		return virt.StateOther
	}
}
