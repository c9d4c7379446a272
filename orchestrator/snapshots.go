package orchestrator

import (
	"encoding/json"
	"time"
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
