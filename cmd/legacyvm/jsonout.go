package main

// The -o json documents: the CLI's contract with scripts, documented (one
// JSON Schema per document) in docs/json.md and checked against it by
// TestJSONDocumentsMatchTheirSchemas. They are the CLI's own types, mapped
// from the orchestrator's, so that the engine's types can change without
// changing what scripts read.
//
// The vocabulary, the same in every document:
//   - format_version: 1 in every document (an integer; it changes only
//     when a field changes meaning or goes away).
//   - vm: a VM's (libvirt domain's) name. Records about objects of several
//     kinds (plan changes, apply results) have kind and name instead.
//   - host: the profile's name for a host (its host block; "local" for
//     a profile without one; "" without a profile); uri: a libvirt URI.
//   - error: what went wrong, when it did (absent otherwise).
//   - took_ns: a duration in nanoseconds.
//   - null: unlimited, or not known / not applicable.
//   - a check result is {check, status, message, fix}, status one of
//     pass, info, warn, fail, skip.
//   - lists are always arrays (empty, never null) inside an object: a
//     document is never a bare array.

import (
	"encoding/json"
	"time"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/inventory"
	"github.com/legacyvm/legacyvm/internal/license"
	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// jsonFormatVersion is format_version in every document.
const jsonFormatVersion = 1

// docHeader starts every document.
type docHeader struct {
	FormatVersion int `json:"format_version"`
}

var v1 = docHeader{FormatVersion: jsonFormatVersion}

// writeJSON prints one document on stdout.
func writeJSON(f *Factory, v any) error {
	enc := json.NewEncoder(f.IO.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// nonNil returns s, or an empty slice for nil (printed [] not null).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// --- check results (verify, doctor) ---

type checkJSON struct {
	Check   string `json:"check"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
	// Hint names the operation that repairs it (apply, verify-on-host),
	// for front ends to offer; the text output words it as a command.
	Hint string `json:"hint,omitempty"`
}

func checkFromResult(c orchestrator.CheckResult) checkJSON {
	return checkJSON{Check: c.Check, Status: string(c.Status), Message: c.Reason, Fix: c.Fix, Hint: string(c.Hint)}
}

// findingStatus maps a host finding's severity to the check vocabulary.
var findingStatus = map[hostcheck.Severity]string{
	hostcheck.SeverityOK:   string(orchestrator.CheckPass),
	hostcheck.SeverityInfo: "info",
	hostcheck.SeverityWarn: string(orchestrator.CheckWarn),
	hostcheck.SeverityFail: string(orchestrator.CheckFail),
}

func checkFromFinding(x hostcheck.Finding) checkJSON {
	st, ok := findingStatus[x.Severity]
	if !ok {
		panic("checkFromFinding: unknown severity " + string(x.Severity))
	}
	return checkJSON{Check: x.Check, Status: st, Message: x.Message, Fix: x.Fix, Hint: string(x.Hint)}
}

func checksFromFindings(fs []hostcheck.Finding) []checkJSON {
	out := []checkJSON{}
	for _, x := range fs {
		out = append(out, checkFromFinding(x))
	}
	return out
}

// --- hosts skipped (plan, apply, destroy, status, verify, licenses, ...) ---

type skippedJSON struct {
	Host  string `json:"host"`
	URI   string `json:"uri"`
	Error string `json:"error"`
	// VMs are the profile's VMs left as they are.
	VMs []string `json:"vms"`
}

func skippedToJSON(sk []skippedHost) []skippedJSON {
	out := []skippedJSON{}
	for _, s := range sk {
		out = append(out, skippedJSON{Host: s.Host, URI: s.URI, Error: s.Error, VMs: nonNil(s.VMs)})
	}
	return out
}

// --- plan ---

type planDoc struct {
	docHeader
	Profile    string         `json:"profile"`
	HasChanges bool           `json:"has_changes"`
	Hosts      []planHostJSON `json:"hosts"`
	Skipped    []skippedJSON  `json:"skipped"`
}

type planHostJSON struct {
	Host        string       `json:"host"`
	URI         string       `json:"uri"`
	Accelerator string       `json:"accelerator"`
	Changes     []changeJSON `json:"changes"`
	Notes       []string     `json:"notes"`
}

type changeJSON struct {
	Kind          string   `json:"kind"`
	Name          string   `json:"name"`
	Action        string   `json:"action"`
	Reasons       []string `json:"reasons"`
	Details       []string `json:"details"`
	Destructive   bool     `json:"destructive"`
	RestartNeeded bool     `json:"restart_needed"`
}

func planToJSON(profile string, hps []*orchestrator.HostPlan, sk []skippedHost) planDoc {
	doc := planDoc{docHeader: v1, Profile: profile, Hosts: []planHostJSON{}, Skipped: skippedToJSON(sk)}
	for _, hp := range hps {
		h := planHostJSON{Host: hp.Host.Name, URI: hp.URI, Accelerator: hp.Plan.Accel, Changes: []changeJSON{}, Notes: nonNil(hp.Plan.Notes)}
		for _, c := range hp.Plan.Changes {
			reasons := []string{}
			for _, r := range c.Reasons {
				reasons = append(reasons, r.String())
			}
			h.Changes = append(h.Changes, changeJSON{Kind: string(c.Kind), Name: c.Name, Action: string(c.Action),
				Reasons: reasons, Details: nonNil(c.Details), Destructive: c.Destructive, RestartNeeded: c.RestartNeeded})
		}
		doc.Hosts = append(doc.Hosts, h)
		doc.HasChanges = doc.HasChanges || hp.Plan.HasChanges()
	}
	return doc
}

// --- apply, destroy ---

type applyDoc struct {
	docHeader
	Profile string        `json:"profile"`
	Results []resultJSON  `json:"results"`
	Skipped []skippedJSON `json:"skipped"`
}

type resultJSON struct {
	Kind   string        `json:"kind"`
	Name   string        `json:"name"`
	Action string        `json:"action"`
	Error  string        `json:"error,omitempty"`
	Took   time.Duration `json:"took_ns"`
	Notes  []string      `json:"notes"`
	// Hint names what to do next (restart: for a change to take effect).
	Hint string `json:"hint,omitempty"`
}

func applyToJSON(profile string, rs []orchestrator.Result, sk []skippedHost) applyDoc {
	doc := applyDoc{docHeader: v1, Profile: profile, Results: []resultJSON{}, Skipped: skippedToJSON(sk)}
	for _, r := range rs {
		doc.Results = append(doc.Results, resultJSON{Kind: string(r.Kind), Name: r.Object, Action: string(r.Action), Error: r.Err, Took: r.Took, Notes: nonNil(r.Notes), Hint: string(r.Hint)})
	}
	return doc
}

// --- start, stop ---

type lifecycleDoc struct {
	docHeader
	Action string              `json:"action"`
	VMs    []lifecycleVMResult `json:"vms"`
}

type lifecycleVMResult struct {
	VM    string        `json:"vm"`
	Error string        `json:"error,omitempty"`
	Took  time.Duration `json:"took_ns"`
}

func lifecycleToJSON(action string, rs []orchestrator.Result) lifecycleDoc {
	doc := lifecycleDoc{docHeader: v1, Action: action, VMs: []lifecycleVMResult{}}
	for _, r := range rs {
		doc.VMs = append(doc.VMs, lifecycleVMResult{VM: r.Object, Error: r.Err, Took: r.Took})
	}
	return doc
}

// --- console ---

type consoleDoc struct {
	docHeader
	VM  string `json:"vm"`
	VNC string `json:"vnc"`
}

// --- status ---

type statusDoc struct {
	docHeader
	Hosts []statusHostJSON `json:"hosts"`
	VMs   []vmStatusJSON   `json:"vms"`
}

type statusHostJSON struct {
	Host    string `json:"host"`
	URI     string `json:"uri"`
	Error   string `json:"error,omitempty"`
	VMCount int    `json:"vm_count"`
}

type vmStatusJSON struct {
	VM          string `json:"vm"`
	Profile     string `json:"profile"`
	Host        string `json:"host"`
	URI         string `json:"uri"`
	State       string `json:"state"`
	Provisioned bool   `json:"provisioned"`
	Network     string `json:"network,omitempty"`
	IP          string `json:"ip,omitempty"`
	IPSource    string `json:"ip_source,omitempty"`
	Snapshots   int    `json:"snapshots"`
	Baseline    string `json:"baseline,omitempty"`
	License     string `json:"license,omitempty"`
	Policy      string `json:"policy,omitempty"`
	VNC         string `json:"vnc,omitempty"`
	// Agent is answers, silent, off, or absent without an agent channel.
	Agent        string     `json:"agent,omitempty"`
	Created      *time.Time `json:"created"`
	NextSnapshot *time.Time `json:"next_snapshot"`
	Schedule     string     `json:"schedule,omitempty"`
	Doors        []doorJSON `json:"doors"`
}

type doorJSON struct {
	Key         string   `json:"key"`
	Kind        string   `json:"kind"`
	Name        string   `json:"name"`
	Listen      string   `json:"listen"`
	From        []string `json:"from"`
	Target      string   `json:"target"`
	Relay       string   `json:"relay"`
	Connections uint64   `json:"connections"`
	Refused     uint64   `json:"refused"`
	Active      int64    `json:"active"`
}

func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func statusToJSON(hosts []statusHost, vms []orchestrator.VMStatus) statusDoc {
	doc := statusDoc{docHeader: v1, Hosts: []statusHostJSON{}, VMs: []vmStatusJSON{}}
	for _, h := range hosts {
		doc.Hosts = append(doc.Hosts, statusHostJSON{Host: h.Host, URI: h.URI, Error: h.Error, VMCount: h.VMs})
	}
	for _, s := range vms {
		v := vmStatusJSON{VM: s.Name, Profile: s.Profile, Host: s.Host, URI: s.URI, State: string(s.State), Provisioned: s.Provisioned,
			Network: s.Network, IP: s.IP, IPSource: s.IPSource, Snapshots: s.Snapshots, Baseline: s.Baseline, License: s.License,
			Policy: s.Policy, VNC: s.VNC, Agent: s.Agent, Created: timeOrNull(s.Created), NextSnapshot: s.NextSnapshot,
			Schedule: s.Schedule, Doors: []doorJSON{}}
		for _, d := range s.Doors {
			v.Doors = append(v.Doors, doorJSON{Key: d.Key, Kind: d.Kind, Name: d.Name, Listen: d.Listen, From: nonNil(d.From),
				Target: d.Target, Relay: d.Relay, Connections: d.Accepted, Refused: d.Refused, Active: d.Active})
		}
		doc.VMs = append(doc.VMs, v)
	}
	return doc
}

// --- verify, doctor ---

type verifyDoc struct {
	docHeader
	OK    bool             `json:"ok"`
	Hosts []verifyHostJSON `json:"hosts"`
}

type verifyHostJSON struct {
	Host string `json:"host"`
	URI  string `json:"uri"`
	// Profile is absent with --all (every profile's VMs).
	Profile    string         `json:"profile,omitempty"`
	OK         bool           `json:"ok"`
	Error      string         `json:"error,omitempty"`
	VMs        []verifyVMJSON `json:"vms"`
	HostChecks []checkJSON    `json:"host_checks"`
}

type verifyVMJSON struct {
	VM      string      `json:"vm"`
	Profile string      `json:"profile"`
	State   string      `json:"state,omitempty"`
	Network string      `json:"network,omitempty"`
	OK      bool        `json:"ok"`
	Checks  []checkJSON `json:"checks"`
}

func verifyToJSON(ok bool, vs []*orchestrator.Verification) verifyDoc {
	doc := verifyDoc{docHeader: v1, OK: ok, Hosts: []verifyHostJSON{}}
	for _, v := range vs {
		h := verifyHostJSON{Host: v.HostName, URI: v.Host, Profile: v.Profile, OK: v.OK, Error: v.Error,
			VMs: []verifyVMJSON{}, HostChecks: checksFromFindings(v.HostChecks)}
		for _, vm := range v.VMs {
			x := verifyVMJSON{VM: vm.Name, Profile: vm.Profile, State: string(vm.State), Network: vm.Network, OK: vm.OK, Checks: []checkJSON{}}
			for _, c := range vm.Checks {
				x.Checks = append(x.Checks, checkFromResult(c))
			}
			h.VMs = append(h.VMs, x)
		}
		doc.Hosts = append(doc.Hosts, h)
	}
	return doc
}

type doctorDoc struct {
	docHeader
	URI    string      `json:"uri"`
	OK     bool        `json:"ok"`
	Checks []checkJSON `json:"checks"`
}

// --- licenses ---

type licensesDoc struct {
	docHeader
	Hosts    []hostJSON    `json:"hosts"`
	Licenses []licenceJSON `json:"licenses"`
	Skipped  []skippedJSON `json:"skipped"`
	// FingerprintSecrets are listed when the hosts' fingerprints were made
	// with more than one secret (seat checks across them are blind).
	FingerprintSecrets []fingerprintSecretJSON `json:"fingerprint_secrets"`
}

type hostJSON struct {
	Host string `json:"host"`
	URI  string `json:"uri"`
}

type licenceJSON struct {
	Label      string            `json:"label"`
	Profile    string            `json:"profile"`
	OtherNames []licenceNameJSON `json:"other_names"`
	Edition    string            `json:"edition,omitempty"`
	Channel    string            `json:"channel"`
	// SeatsDeclared is null when the licence declares no limit (KMS).
	SeatsDeclared *int `json:"seats_declared"`
	// SeatsAllowed is null for unlimited.
	SeatsAllowed   *int            `json:"seats_allowed"`
	SeatsUsed      int             `json:"seats_used"`
	Key            string          `json:"key,omitempty"`
	OverSubscribed bool            `json:"over_subscribed"`
	VMs            []licenceVMJSON `json:"vms"`
}

type licenceNameJSON struct {
	Profile string `json:"profile"`
	Label   string `json:"label"`
}

type licenceVMJSON struct {
	VM          string     `json:"vm"`
	Profile     string     `json:"profile"`
	Label       string     `json:"label"`
	URI         string     `json:"uri"`
	State       string     `json:"state"`
	Provisioned bool       `json:"provisioned"`
	Since       *time.Time `json:"since"`
}

type fingerprintSecretJSON struct {
	ID   string   `json:"id"`
	VMs  []string `json:"vms"`
	URIs []string `json:"uris"`
}

func licencesToJSON(hosts []hostJSON, inv []inventory.LicenceUse, sk []skippedHost, secrets []inventory.FingerprintSecret) licensesDoc {
	doc := licensesDoc{docHeader: v1, Hosts: hosts, Licenses: []licenceJSON{}, Skipped: skippedToJSON(sk), FingerprintSecrets: []fingerprintSecretJSON{}}
	for _, u := range inv {
		l := licenceJSON{Label: u.Label, Profile: u.Profile, OtherNames: []licenceNameJSON{}, Edition: u.Edition, Channel: u.Channel,
			SeatsUsed: u.SeatsUsed, Key: u.Key, OverSubscribed: u.OverSubscribed, VMs: []licenceVMJSON{}}
		if u.SeatsDeclared > 0 {
			n := u.SeatsDeclared
			l.SeatsDeclared = &n
		}
		if u.SeatsAllowed != license.Unlimited {
			n := u.SeatsAllowed
			l.SeatsAllowed = &n
		}
		for _, o := range u.OtherNames {
			l.OtherNames = append(l.OtherNames, licenceNameJSON{Profile: o.Profile, Label: o.Label})
		}
		for _, vm := range u.VMs {
			l.VMs = append(l.VMs, licenceVMJSON{VM: vm.Name, Profile: vm.Profile, Label: vm.Label, URI: vm.Host, State: string(vm.State),
				Provisioned: vm.Provisioned, Since: timeOrNull(vm.Since)})
		}
		doc.Licenses = append(doc.Licenses, l)
	}
	if len(secrets) > 1 {
		for _, s := range secrets {
			doc.FingerprintSecrets = append(doc.FingerprintSecrets, fingerprintSecretJSON{ID: s.ID, VMs: nonNil(s.VMs), URIs: nonNil(s.Hosts)})
		}
	}
	return doc
}

// --- snapshots ---

type snapshotJSON struct {
	Name string `json:"name"`
	// Kind is baseline, auto (a schedule's) or manual.
	Kind   string `json:"kind"`
	Policy string `json:"policy,omitempty"`
	// Note is the description given at snapshot create (or a snapshot
	// made outside legacyvm's own description).
	Note    string     `json:"note,omitempty"`
	Parent  string     `json:"parent,omitempty"`
	Created time.Time  `json:"created"`
	State   string     `json:"state"`
	Memory  bool       `json:"memory"`
	Current bool       `json:"current"`
	Expires *time.Time `json:"expires"`
}

func snapshotToJSON(s snapmeta.Info) snapshotJSON {
	note := s.Description
	if d, ok := snapmeta.ParseDescription(s.Description); ok {
		note = d.Note
	}
	return snapshotJSON{Name: s.Name, Kind: string(s.Kind), Policy: s.Policy, Note: note, Parent: s.Parent,
		Created: s.Created, State: string(s.State), Memory: s.Memory, Current: s.Current, Expires: s.Expires}
}

type snapshotCreateDoc struct {
	docHeader
	VM       string       `json:"vm"`
	Snapshot snapshotJSON `json:"snapshot"`
}

type snapshotListDoc struct {
	docHeader
	VMs     []vmSnapshotsJSON `json:"vms"`
	Skipped []skippedJSON     `json:"skipped"`
}

type vmSnapshotsJSON struct {
	VM        string         `json:"vm"`
	Profile   string         `json:"profile"`
	Baseline  string         `json:"baseline,omitempty"`
	Snapshots []snapshotJSON `json:"snapshots"`
}

func snapshotListToJSON(list []orchestrator.VMSnapshots, sk []skippedHost) snapshotListDoc {
	doc := snapshotListDoc{docHeader: v1, VMs: []vmSnapshotsJSON{}, Skipped: skippedToJSON(sk)}
	for _, vm := range list {
		v := vmSnapshotsJSON{VM: vm.VM, Profile: vm.Profile, Baseline: vm.Baseline, Snapshots: []snapshotJSON{}}
		for _, s := range vm.Snapshots {
			v.Snapshots = append(v.Snapshots, snapshotToJSON(s))
		}
		doc.VMs = append(doc.VMs, v)
	}
	return doc
}

type snapshotRevertDoc struct {
	docHeader
	VM       string        `json:"vm"`
	Snapshot string        `json:"snapshot"`
	State    string        `json:"state"`
	Took     time.Duration `json:"took_ns"`
}

type snapshotDeleteDoc struct {
	docHeader
	VM       string `json:"vm"`
	Snapshot string `json:"snapshot"`
}

type tickDoc struct {
	docHeader
	Now    time.Time      `json:"now"`
	DryRun bool           `json:"dry_run"`
	VMs    []tickVMResult `json:"vms"`
}

type tickVMResult struct {
	VM     string `json:"vm"`
	Policy string `json:"policy"`
	// CreatedSnapshot is the snapshot taken (or that would be), null
	// when none was due.
	CreatedSnapshot *string  `json:"created_snapshot"`
	PrunedSnapshots []string `json:"pruned_snapshots"`
	Error           string   `json:"error,omitempty"`
}

func tickToJSON(now time.Time, dryRun bool, res []orchestrator.TickResult) tickDoc {
	doc := tickDoc{docHeader: v1, Now: now, DryRun: dryRun, VMs: []tickVMResult{}}
	for _, r := range res {
		x := tickVMResult{VM: r.VM, Policy: r.Policy, PrunedSnapshots: nonNil(r.Pruned), Error: r.Err}
		if r.Created != "" {
			c := r.Created
			x.CreatedSnapshot = &c
		}
		doc.VMs = append(doc.VMs, x)
	}
	return doc
}

type resetDoc struct {
	docHeader
	Took    time.Duration `json:"took_ns"`
	VMs     []resetVMJSON `json:"vms"`
	Skipped []skippedJSON `json:"skipped"`
}

type resetVMJSON struct {
	VM       string        `json:"vm"`
	Snapshot string        `json:"snapshot"`
	State    string        `json:"state,omitempty"`
	Took     time.Duration `json:"took_ns"`
	Error    string        `json:"error,omitempty"`
}

func resetToJSON(took time.Duration, res []orchestrator.ResetResult, sk []skippedHost) resetDoc {
	doc := resetDoc{docHeader: v1, Took: took, VMs: []resetVMJSON{}, Skipped: skippedToJSON(sk)}
	for _, r := range res {
		doc.VMs = append(doc.VMs, resetVMJSON{VM: r.VM, Snapshot: r.Snapshot, State: string(r.State), Took: r.Took, Error: r.Err})
	}
	return doc
}

// --- images ---

type imageVersionsDoc struct {
	docHeader
	Versions []imageVersionJSON `json:"versions"`
}

type imageDeleteDoc struct {
	docHeader
	Deleted []imageVersionJSON `json:"deleted"`
}

type imageVersionJSON struct {
	Image      string        `json:"image"`
	Version    int           `json:"version"`
	Pool       string        `json:"pool"`
	Volume     string        `json:"volume"`
	Path       string        `json:"path"`
	Mode       string        `json:"mode"`
	MetaVolume string        `json:"meta_volume"`
	Metadata   imageMetaJSON `json:"metadata"`
	UsedBy     []string      `json:"used_by"`
}

type imageMetaJSON struct {
	Profile         string           `json:"profile"`
	OS              string           `json:"os"`
	Edition         string           `json:"edition"`
	Arch            string           `json:"arch"`
	SourceISO       string           `json:"source_iso"`
	SourceSHA256    string           `json:"source_sha256"`
	Media           []imageMediaJSON `json:"media"`
	Steps           []string         `json:"steps"`
	BuiltAt         time.Time        `json:"built_at"`
	BuildSeconds    int64            `json:"build_seconds"`
	LegacyvmVersion string           `json:"legacyvm_version"`
	ContentSHA256   string           `json:"content_sha256"`
	CapacityBytes   uint64           `json:"capacity_bytes"`
	Generalized     bool             `json:"generalized"`
	SkipRearm       bool             `json:"skip_rearm"`
}

type imageMediaJSON struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

func imageVersionToJSON(v orchestrator.ImageVersion) imageVersionJSON {
	m := v.Meta
	out := imageVersionJSON{Image: v.Name, Version: v.Version, Pool: v.Pool, Volume: v.Volume, Path: v.Path, Mode: v.Mode,
		MetaVolume: v.MetaVolume, UsedBy: nonNil(v.UsedBy), Metadata: imageMetaJSON{
			Profile: m.Profile, OS: m.OS, Edition: m.Edition, Arch: m.Arch, SourceISO: m.SourceISO, SourceSHA256: m.SourceSHA256,
			Media: []imageMediaJSON{}, Steps: nonNil(m.Steps), BuiltAt: m.BuiltAt, BuildSeconds: m.BuildSeconds,
			LegacyvmVersion: m.LegacyvmVersion, ContentSHA256: m.ContentSHA256, CapacityBytes: m.CapacityBytes,
			Generalized: m.Generalized, SkipRearm: m.SkipRearm,
		}}
	for _, md := range m.Media {
		out.Metadata.Media = append(out.Metadata.Media, imageMediaJSON{Name: md.Name, SHA256: md.SHA256})
	}
	return out
}

func imageVersionsToJSON(vs []orchestrator.ImageVersion) []imageVersionJSON {
	out := []imageVersionJSON{}
	for _, v := range vs {
		out = append(out, imageVersionToJSON(v))
	}
	return out
}

// --- exec, cp, version ---

type execDoc struct {
	docHeader
	VM       string   `json:"vm"`
	Command  []string `json:"command"`
	ExitCode int      `json:"exit_code"`
	Stdout   string   `json:"stdout"`
	Stderr   string   `json:"stderr"`
	Error    string   `json:"error,omitempty"`
}

type cpDoc struct {
	docHeader
	VM       string        `json:"vm"`
	Src      string        `json:"src"`
	Dst      string        `json:"dst"`
	Files    int           `json:"files"`
	Dirs     int           `json:"dirs"`
	Bytes    int64         `json:"bytes"`
	Verified bool          `json:"verified"`
	Took     time.Duration `json:"took_ns"`
}

type versionDoc struct {
	docHeader
	Version string `json:"version"`
	Go      string `json:"go"`
	Commit  string `json:"commit,omitempty"`
}

// --- test ---

type testDoc struct {
	docHeader
	Profile string          `json:"profile"`
	Failed  int             `json:"failed"`
	Results []*TestVMResult `json:"results"`
}
