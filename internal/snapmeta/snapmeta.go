// Package snapmeta reads and writes the metadata legacyvm keeps in a
// libvirt snapshot's description (a small JSON document), and classifies
// snapshots by who made them, so that retention can be computed from
// libvirt alone. It is pure: no host is touched. A description never holds
// a secret.
package snapmeta

import (
	"encoding/json"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Kind classifies snapshots by who made them.
type Kind string

const (
	// Baseline is the protected snapshot taken after provisioning;
	// retention and prune never delete it.
	Baseline Kind = "baseline"
	// Auto is taken by a schedule and subject to retention.
	Auto Kind = "auto"
	// Manual is taken by `legacyvm snapshot create`; never pruned.
	Manual Kind = "manual"
)

// Description is the JSON legacyvm stores in a snapshot's description, so
// retention can be computed from libvirt alone. It never holds a secret.
type Description struct {
	Kind   Kind   `json:"legacyvm"`
	Policy string `json:"policy,omitempty"`
	// Expires is when retention may delete the snapshot (auto only).
	Expires *time.Time `json:"expires,omitempty"`
	// Note is the user's description (manual snapshots).
	Note string `json:"note,omitempty"`
	// MemoryPool and MemoryImage name the volume holding the memory of a
	// baseline taken as a memory image (orchestrator/snapshots.go); the
	// snapshot itself then holds the disks only. Empty for internal memory
	// snapshots.
	MemoryPool  string `json:"memory_pool,omitempty"`
	MemoryImage string `json:"memory_image,omitempty"`
}

// String encodes the description as libvirt stores it.
func (d Description) String() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ParseDescription decodes a description legacyvm wrote; ok is false for
// snapshots made by someone else (treated as manual, never pruned).
func ParseDescription(s string) (d Description, ok bool) {
	if err := json.Unmarshal([]byte(s), &d); err != nil || d.Kind == "" {
		return Description{}, false
	}
	return d, true
}

// Info is a snapshot with legacyvm's reading of it.
type Info struct {
	virt.Snapshot
	Kind   Kind   `json:"kind"`
	Policy string `json:"policy,omitempty"`
	// Expires is when max_age retention removes it (auto snapshots). From
	// Classify it is the expiry recorded when the snapshot was taken;
	// listings replace it with the VM's current policy, which is what
	// retention follows.
	Expires *time.Time `json:"expires,omitempty"`
}

// Classify reads a snapshot's description (and, for snapshots legacyvm did
// not describe, its name against the baseline) into an Info. Snapshots
// made outside legacyvm count as manual: never pruned.
func Classify(s virt.Snapshot, baseline string) Info {
	info := Info{Snapshot: s, Kind: Manual}
	if d, ok := ParseDescription(s.Description); ok {
		info.Kind, info.Policy, info.Expires = d.Kind, d.Policy, d.Expires
		if d.MemoryImage != "" {
			// A disk snapshot paired with a memory image: reverting to it
			// resumes the running VM.
			info.Memory, info.State = true, virt.StateRunning
		}
	}
	if s.Name == baseline && baseline != "" {
		info.Kind = Baseline
	}
	return info
}
