package orchestrator

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// Action is what a plan does to one object.
type Action string

const (
	ActionNoop    Action = "no-op"
	ActionCreate  Action = "create"
	ActionUpdate  Action = "update"  // in place; the object and its data stay
	ActionReplace Action = "replace" // delete then create: disk content and snapshots are lost
	ActionDelete  Action = "delete"
)

// Kind is the kind of object a change concerns.
type Kind string

const (
	KindPool    Kind = "pool"
	KindNetwork Kind = "network"
	KindFilter  Kind = "filter"
	KindVM      Kind = "vm" // a domain with its volumes and baseline
	// KindVolume is a volume on its own: only answer media no VM owns,
	// which plan deletes (see planOrphanAnswers).
	KindVolume Kind = "volume"
	// KindImage is a golden image uploaded to a host that lacks it.
	KindImage Kind = "image"
	// KindDoor is a publish or egress door: recorded in its VM's
	// metadata, opened in its network's guard and relayed by legacyvm
	// daemon.
	KindDoor Kind = "door"
)

// Change is one planned action. Reasons say why (typed; String words each
// one: "memory 2 GiB -> 4 GiB", "disk image changed: A -> B"). A change is
// Destructive when it loses disk content or snapshots; apply asks before
// running destructive changes unless told not to.
type Change struct {
	Kind    Kind     `json:"kind"`
	Name    string   `json:"name"` // libvirt name
	Action  Action   `json:"action"`
	Reasons []Reason `json:"reasons,omitempty"`
	// Details describe the object as it will be (create) or is (delete).
	Details       []string `json:"details,omitempty"`
	Destructive   bool     `json:"destructive,omitempty"`
	RestartNeeded bool     `json:"restart_needed,omitempty"`

	// Execution inputs (not part of the plan's printed form).
	vm      *desiredVM
	network *desiredNetwork
	pool    *poolChange
	upload  *imageUpload
	// observed is the object as it is (update, replace, delete).
	observedDomain *virt.Domain
	observedNet    *virt.Network
	filterNames    []string // filters to delete with a network
	volume         *virt.VolumeRef
	// takeBaseline: an update that also takes the missing baseline.
	takeBaseline bool
	// rebind: an update that sets the NICs' traffic filter references in
	// the definition and on the running interfaces (no restart).
	rebind bool
}

type poolChange struct{ Name, Path string }

// Plan is the difference between a profile and a host. It is a value:
// printing it, or applying it, changes nothing else.
type Plan struct {
	Profile string   `json:"profile"`
	Host    string   `json:"host"`
	Accel   string   `json:"accelerator"`
	Changes []Change `json:"changes"`
	// Notes are things the user should know that are not changes.
	Notes []string `json:"notes,omitempty"`

	desired *desiredState
	// secrets are the secrets the command read while planning (nil: none;
	// apply reads them). Never printed.
	secrets *secretBundle
}

// HasChanges reports whether applying the plan would do anything.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action != ActionNoop {
			return true
		}
	}
	return false
}

// Destructive returns the changes that lose data.
func (p *Plan) Destructive() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Destructive {
			out = append(out, c)
		}
	}
	return out
}

// Counts returns how many changes of each action the plan has.
func (p *Plan) Counts() map[Action]int {
	m := map[Action]int{}
	for _, c := range p.Changes {
		m[c.Action]++
	}
	return m
}

// planSettings are the choices of the command that planning takes besides
// the profile and the observation.
type planSettings struct {
	// SerialLogDir: see Options.SerialLogDir.
	SerialLogDir string
	// ImageUpdates: see Options.ImageUpdates.
	ImageUpdates []string
}

func (o Options) settings() planSettings {
	return planSettings{SerialLogDir: o.SerialLogDir, ImageUpdates: o.ImageUpdates}
}

// poolOf is the storage pool of a host's system disks and answer media.
func poolOf(h *profiles.Host) string {
	if h.StoragePool == "" {
		return "default"
	}
	return h.StoragePool
}

// makePlan plans part (the part of a profile placed on host, see Split)
// on the host at uri from what was observed there. It is a pure function
// of its arguments: it talks to no host and reads no file (observeHost
// gathered all of it), so the same observation always gives the same
// plan. Diagnostics are problems the profile author can fix; the error is
// for a profile that cannot be rendered on the host (addresses that do not
// fit, a pool lookup that failed). Seats are checked across hosts
// afterwards (checkSeats).
func makePlan(part *profiles.Profile, host *profiles.Host, uri string, o *observation, s planSettings) (*desiredState, *Plan, hcl.Diagnostics, error) {
	_, diags := resolveAccel(host, o.Host)
	isoDiags, err := checkInstallISOs(part, uri, o)
	diags = append(diags, isoDiags...)
	diags = append(diags, checkGoldenImages(part, host, uri, o)...)
	if err != nil {
		return nil, nil, diags, err
	}
	diags = append(diags, checkImageRefs(part, o, s.ImageUpdates)...)
	diags = append(diags, checkImageSources(part, host, uri, o)...)
	t, imgDiags := planTarget(part, host, uri, o, s)
	diags = append(diags, imgDiags...)
	ds, err := desiredFor(part, t, o)
	if err != nil {
		return nil, nil, diags, err
	}
	plan, d := planChanges(part, ds, o)
	plan.Notes = append(placementNotes(part, host), plan.Notes...)
	return ds, plan, append(diags, d...), nil
}

// planTarget resolves what planning needs to know about the host beyond
// the profile, from the observation: the accelerator, the pool and where
// each golden image comes from. Diagnostics are about images that cannot
// be uploaded.
func planTarget(part *profiles.Profile, host *profiles.Host, uri string, o *observation, s planSettings) (hostTarget, hcl.Diagnostics) {
	poolName := poolOf(host)
	accel, _ := resolveAccel(host, o.Host)
	pool := o.Pool
	if !o.PoolFound {
		pool = virt.Pool{Name: poolName, Path: "/var/lib/libvirt/images"}
	}
	t := hostTarget{URI: uri, Accel: accel, Pool: pool, SerialLogDir: s.SerialLogDir, ImageUpdates: s.ImageUpdates}
	var diags hcl.Diagnostics
	t.Images, t.Uploads, diags = planImages(part, uri, o, poolName, pool.Path)
	return t, diags
}

// planChanges computes the changes for one profile on one host from the
// desired state and what was observed (pure).
// Objects with clashing names that legacyvm does not own (or that another
// profile owns) are reported as diagnostics located at the declaration, and
// never touched.
func planChanges(p *profiles.Profile, ds *desiredState, o *observation) (*Plan, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	plan := &Plan{Profile: p.Name, Host: ds.Target.URI, Accel: accelName(ds.Target.Accel), desired: ds}

	// Storage: the target pool and the pools that make images visible.
	if !o.PoolFound {
		if ds.Target.Pool.Name == "default" {
			plan.Changes = append(plan.Changes, Change{Kind: KindPool, Name: "default", Action: ActionCreate,
				Details: []string{"directory pool at /var/lib/libvirt/images"},
				pool:    &poolChange{Name: "default", Path: "/var/lib/libvirt/images"}})
		} else {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Storage pool not found",
				Detail: fmt.Sprintf("The host %s has no storage pool %q. Create it (virsh pool-define-as %s dir --target DIR; virsh pool-build %s; virsh pool-start %s; virsh pool-autostart %s) or remove storage_pool to use \"default\".",
					ds.Target.URI, ds.Target.Pool.Name, ds.Target.Pool.Name, ds.Target.Pool.Name, ds.Target.Pool.Name, ds.Target.Pool.Name),
				Subject: hostRange(p)})
		}
	}
	for _, dir := range imageDirsWithoutPool(ds, o) {
		name := imagePoolName(dir)
		plan.Changes = append(plan.Changes, Change{Kind: KindPool, Name: name, Action: ActionCreate,
			Details: []string{"directory pool at " + dir + " so libvirt can see the golden images and ISOs there"},
			pool:    &poolChange{Name: name, Path: dir}})
	}

	// Golden images uploaded to a host that lacks them (after the pools,
	// before the VMs that clone them).
	plan.Changes = append(plan.Changes, uploadChanges(ds.Target)...)

	// Networks and their filters.
	desiredNets := map[string]bool{}
	for _, dn := range ds.Networks {
		desiredNets[dn.Spec.Name] = true
		obs, exists := o.Networks[dn.Spec.Name]
		switch {
		case !exists:
			plan.Changes = append(plan.Changes, Change{Kind: KindNetwork, Name: dn.Spec.Name, Action: ActionCreate,
				Details: networkDetails(dn), network: dn})
		case !ownedBy(obs.Metadata, p.Name):
			diags = append(diags, conflict("network", dn.Spec.Name, obs.Metadata, dn.Decl.DeclRange))
			continue
		default:
			reasons := networkDrift(dn, obs)
			act := ActionNoop
			if len(reasons) > 0 {
				act = ActionUpdate
			}
			obsCopy := obs
			plan.Changes = append(plan.Changes, Change{Kind: KindNetwork, Name: dn.Spec.Name, Action: act,
				Reasons: reasons, network: dn, observedNet: &obsCopy})
		}
		if d := filterConflicts(p.Name, dn, o); len(d) > 0 {
			diags = append(diags, d...)
			continue
		}
		fc := Change{Kind: KindFilter, Name: dn.Filter.Name, network: dn}
		if _, ok := o.Filters[dn.Filter.Name]; !ok {
			fc.Action = ActionCreate
			fc.Details = filterDetails(dn)
		} else if diffs := o.FilterDiffs[dn.Filter.Name]; len(diffs) > 0 {
			fc.Action = ActionUpdate
			fc.Reasons = []Reason{{Code: ReasonFilterRules}}
			for _, d := range diffs {
				fc.Reasons = append(fc.Reasons, Reason{Code: ReasonFilterRule, Subject: d})
			}
		} else {
			fc.Action = ActionNoop
		}
		plan.Changes = append(plan.Changes, fc)
	}

	// VMs, each followed by its doors.
	desiredVMs := map[string]bool{}
	diags = append(diags, doorDiagnostics(ds, o)...)
	for _, dv := range ds.VMs {
		desiredVMs[dv.Spec.Name] = true
		c, d := planVM(p, dv, o)
		diags = append(diags, d...)
		if dv.NewerImage > 0 && c != nil && c.Action != ActionReplace && c.Action != ActionCreate {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s stays on image %s v%d (pinned); v%d exists: apply --image-update %s (or image_version = \"latest\") replaces it with a clone of v%d",
				dv.Spec.Name, dv.ImageName, dv.ImageVersion, dv.NewerImage, dv.ImageName, dv.NewerImage))
		}
		if c != nil {
			plan.Changes = append(plan.Changes, *c)
			one := &desiredState{VMs: []*desiredVM{dv}}
			plan.Changes = append(plan.Changes, planDoors(one, o, map[string]Action{c.Name: c.Action})...)
		}
	}
	// VMs the profile owns that it no longer declares.
	for _, name := range sortedKeys(o.Domains) {
		d := o.Domains[name]
		if desiredVMs[name] || !ownedBy(d.Metadata, p.Name) || d.Metadata.ImageBuild != "" {
			continue // image-build domains are no VMs (image build cleans them up)
		}
		dc := d
		c := Change{Kind: KindVM, Name: name, Action: ActionDelete, Reasons: []Reason{{Code: ReasonNotInProfile}},
			Destructive: true, observedDomain: &dc}
		c.Details = deleteDetails(&d, o)
		plan.Changes = append(plan.Changes, c)
	}
	// Answer media no VM owns: the profile's own are deleted (a new VM's
	// media would collide with them), others are reported.
	planOrphanAnswers(plan, o, ds.Target.Pool.Name, desiredVMs)
	// Networks the profile owns that it no longer declares.
	for _, name := range sortedKeys(o.Networks) {
		n := o.Networks[name]
		if desiredNets[name] || !ownedBy(n.Metadata, p.Name) {
			continue
		}
		nc := n
		filters := []string{name, name + "-guard"}
		if n.Metadata != nil && len(n.Metadata.Filters) > 0 {
			filters = n.Metadata.Filters
		}
		plan.Changes = append(plan.Changes, Change{Kind: KindNetwork, Name: name, Action: ActionDelete,
			Reasons: []Reason{{Code: ReasonNotInProfile}}, observedNet: &nc, filterNames: filters})
	}
	return plan, diags
}

func accelName(a virt.Accel) string {
	if a == virt.AccelTCG {
		return "tcg"
	}
	return string(a)
}

func ownedBy(m *virt.Metadata, profile string) bool { return m != nil && m.Profile == profile }

func conflict(kind, name string, m *virt.Metadata, rng hcl.Range) *hcl.Diagnostic {
	owner := "is not managed by legacyvm"
	if m != nil {
		owner = fmt.Sprintf("belongs to legacyvm profile %q", m.Profile)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("A %s named %s already exists", kind, name),
		Detail: fmt.Sprintf("The host already has a %s named %q that %s. legacyvm never touches objects it does not own: rename this block, or remove the other %s first.",
			kind, name, owner, kind),
		Subject: rng.Ptr(),
	}
}

// filterConflicts reports the nwfilters named like dn's filters that exist
// but are not this profile's: a filter is ours when the profile's network
// lists it in its metadata, or (its network gone after an interrupted
// delete) when it is the root filter with the UUID legacyvm gives it, or the
// guard that such a root references. Anything else was made outside
// legacyvm (or by another profile) and is never redefined.
func filterConflicts(profile string, dn *desiredNetwork, o *observation) hcl.Diagnostics {
	var diags hcl.Diagnostics
	root, rootExists := o.Filters[dn.Filter.Name]
	ourRoot := rootExists && strings.EqualFold(root.UUID, dn.Filter.UUID)
	net, netExists := o.Networks[dn.Spec.Name]
	for i, name := range dn.Filter.Names() {
		if _, ok := o.Filters[name]; !ok {
			continue
		}
		if netExists && ownedBy(net.Metadata, profile) && containsString(net.Metadata.Filters, name) {
			continue
		}
		if ourRoot && (i == 0 || containsString(root.Refs, name)) {
			continue
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("A traffic filter named %s already exists", name),
			Detail: fmt.Sprintf("The host already has an nwfilter named %q that legacyvm did not create for this network. legacyvm never touches objects it does not own: rename this network block, or remove the other filter first (virsh nwfilter-undefine %s).",
				name, name),
			Subject: dn.Decl.DeclRange.Ptr(),
		})
	}
	return diags
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func hostRange(p *profiles.Profile) *hcl.Range {
	for _, h := range p.Hosts {
		if !h.Implicit {
			return h.DeclRange.Ptr()
		}
	}
	return nil
}

func networkDetails(dn *desiredNetwork) []string {
	var d []string
	if dn.Spec.Subnet.IsValid() {
		d = append(d, "subnet "+dn.Spec.Subnet.String())
	} else {
		d = append(d, "layer 2 only (no host address)")
	}
	if dn.Spec.DHCP {
		d = append(d, "dhcp")
	}
	if dn.Spec.DNS {
		d = append(d, "dns")
	}
	if dn.Spec.PortIsolated {
		d = append(d, "guests isolated from each other")
	}
	d = append(d, "no forwarding", "bridge "+dn.Spec.Bridge)
	return []string{strings.Join(d, ", ")}
}

func filterDetails(dn *desiredNetwork) []string {
	var allows []string
	for _, a := range dn.Filter.Allows {
		s := fmt.Sprintf("allow %s %s %s", a.Name, a.Direction, a.Protocol)
		if a.PortStart != 0 {
			if a.PortEnd != 0 && a.PortEnd != a.PortStart {
				s += fmt.Sprintf(" %d-%d", a.PortStart, a.PortEnd)
			} else {
				s += fmt.Sprintf(" %d", a.PortStart)
			}
		}
		allows = append(allows, s)
	}
	d := "anti-spoofing + host guard (guest traffic to the host dropped"
	if dn.Filter.DHCP {
		d += " except DHCP"
		if dn.Filter.DNS {
			d += " and DNS"
		}
	}
	d += ")"
	out := []string{d}
	return append(out, allows...)
}

// networkDrift lists how an owned network differs from its desired spec.
func networkDrift(dn *desiredNetwork, obs virt.Network) []Reason {
	var r []Reason
	if obs.ForwardMode != "" {
		r = append(r, Reason{Code: ReasonForwardAdded, To: obs.ForwardMode})
	}
	if obs.PortIsolated != dn.Spec.PortIsolated {
		r = append(r, changed(ReasonPortIsolation, obs.PortIsolated, dn.Spec.PortIsolated))
	}
	// libvirt holds a subnet only as the host's <ip>: a network without a
	// host address (no DHCP, DNS or allow rule from the host) has none
	// there, and its subnet (used for the guests' addresses and filters)
	// is covered by the spec hash instead.
	wantSubnet := dn.Spec.Subnet
	if !dn.Spec.HostAddress.IsValid() {
		wantSubnet = netip.Prefix{}
	}
	if obs.Subnet != wantSubnet {
		r = append(r, changed(ReasonSubnet, prefixStr(obs.Subnet), prefixStr(wantSubnet)))
	}
	if obs.DHCP != dn.Spec.DHCP {
		r = append(r, changed(ReasonDHCP, obs.DHCP, dn.Spec.DHCP))
	}
	if obs.DNS != dn.Spec.DNS {
		r = append(r, changed(ReasonDNS, obs.DNS, dn.Spec.DNS))
	}
	if obs.IPv6 {
		r = append(r, Reason{Code: ReasonIPv6Enabled})
	}
	if !sameHosts(obs.DHCPHosts, dn.Spec.DHCPHosts) {
		r = append(r, Reason{Code: ReasonReservations})
	}
	if obs.Metadata != nil && obs.Metadata.SpecHash != dn.Hash && len(r) == 0 {
		r = append(r, Reason{Code: ReasonDefinitionChanged})
	}
	if !obs.Active {
		r = append(r, Reason{Code: ReasonNetworkInactive})
	}
	if !obs.Autostart {
		r = append(r, Reason{Code: ReasonNoAutostart})
	}
	return r
}

func prefixStr(p interface{ IsValid() bool }) string {
	if !p.IsValid() {
		return "none"
	}
	return fmt.Sprint(p)
}

func sameHosts(a, b []virt.DHCPHost) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(h virt.DHCPHost) string { return strings.ToLower(h.MAC) + "|" + h.Name + "|" + h.IP.String() }
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		as[i], bs[i] = key(a[i]), key(b[i])
	}
	sort.Strings(as)
	sort.Strings(bs)
	for i := range as {
		if as[i] != bs[i] {
			return false
		}
	}
	return true
}

func planVM(p *profiles.Profile, dv *desiredVM, o *observation) (*Change, hcl.Diagnostics) {
	name := dv.Spec.Name
	decl := dv.Instance.VM.DeclRange
	obs, exists := o.Domains[name]
	if exists && !ownedBy(obs.Metadata, p.Name) {
		return nil, hcl.Diagnostics{conflict("domain", name, obs.Metadata, decl)}
	}
	if !exists {
		// A system volume without its domain is not ours to reuse or delete:
		// it may be all that is left of a VM someone undefined by hand.
		if v, ok := o.Volumes[dv.System.Name]; ok {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Disk volume exists without its VM",
				Detail: fmt.Sprintf("The volume %s (%s) exists but no domain %q uses it; it may hold data of a VM that was undefined outside legacyvm. Move it out of the pool or delete it (virsh vol-delete --pool %s %s), then apply again.",
					v.Name, v.Path, name, dv.System.Pool, v.Name),
				Subject: decl.Ptr(),
			}}
		}
		return &Change{Kind: KindVM, Name: name, Action: ActionCreate, Details: createDetails(dv), vm: dv}, nil
	}
	// legacyvm always creates qcow2 system disks; one that is not (changed
	// by hand) cannot hold internal snapshots, and the policy would fail at
	// its first snapshot or reset.
	if sys, ok := systemDisk(obs); ok && dv.Policy != nil && sys.Format != "" && sys.Format != "qcow2" {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Disk cannot take snapshots",
			Detail: fmt.Sprintf("The system disk of %s (%s) is in %s format, but snapshot policy %q needs qcow2: libvirt keeps internal snapshots inside qcow2 images. Convert the disk (qemu-img convert -O qcow2) and point the domain at it, or remove the snapshot_policy from this vm block.",
				name, sys.Path, sys.Format, dv.Policy.Name),
			Subject: decl.Ptr(),
		}}
	}
	oc := obs
	c := &Change{Kind: KindVM, Name: name, vm: dv, observedDomain: &oc}
	m := obs.Metadata
	var replace []Reason
	if !m.Provisioned {
		replace = append(replace, Reason{Code: ReasonUnprovisioned})
	}
	switch {
	case m.ImageName != "" && m.ImageName == dv.ImageName && m.ImageVersion != dv.ImageVersion:
		r := changed(ReasonImageVersion, m.ImageVersion, dv.ImageVersion)
		r.Subject = dv.ImageName
		replace = append(replace, r)
	case m.Image != dv.Image:
		replace = append(replace, changed(ReasonImage, m.Image, dv.Image))
	}
	if sys, ok := systemDisk(obs); ok && sys.Path != systemDiskPath(dv) && sys.Path != observedLayerPath(obs, dv) {
		replace = append(replace, changed(ReasonSystemDiskMoved, sys.Path, systemDiskPath(dv)))
	}
	if len(replace) > 0 {
		c.Action = ActionReplace
		c.Reasons = replace
		// An unfinished VM holds nothing worth keeping.
		c.Destructive = m.Provisioned || len(o.Snapshots[name]) > 0
		c.Details = append(deleteDetails(&obs, o), createDetails(dv)...)
		return c, nil
	}
	var upd []Reason
	restart := false
	if obs.MemoryBytes != dv.Spec.MemoryBytes {
		upd = append(upd, changed(ReasonMemory, humanBytes(obs.MemoryBytes), humanBytes(dv.Spec.MemoryBytes)))
		restart = true
	}
	if obs.VCPUs != dv.Spec.VCPUs {
		upd = append(upd, changed(ReasonCPUs, obs.VCPUs, dv.Spec.VCPUs))
		restart = true
	}
	if obs.GuestAgent != dv.Spec.GuestAgent {
		if dv.Spec.GuestAgent {
			upd = append(upd, Reason{Code: ReasonGuestAgentAdded})
		} else {
			upd = append(upd, Reason{Code: ReasonGuestAgentRemoved})
		}
		restart = true
	}
	if r, filterOnly := interfaceDrift(obs.Interfaces, dv.Spec.Interfaces); len(r) > 0 {
		upd = append(upd, r...)
		if filterOnly {
			// A filter reference is set on the running NIC too.
			c.rebind = true
		} else {
			restart = true
		}
	}
	if obs.State != virt.StateShutoff {
		if r := bindingDrift(name, o.Bindings, dv.Spec.Interfaces); len(r) > 0 {
			upd = append(upd, r...)
			c.rebind = true
		}
	}
	for _, w := range dv.Spec.Interfaces {
		// legacyvm never writes isolated='no'; it overrides the network's
		// port isolation (see verify.go).
		if interfacePortOverride(obs.XML, w.MAC) == "no" {
			upd = append(upd, Reason{Code: ReasonNICIsolationOff, Subject: w.MAC})
			restart = true
		}
	}
	if m.SpecHash != dv.Hash && len(upd) == 0 {
		upd = append(upd, Reason{Code: ReasonDefinitionChanged})
		restart = true
	}
	if p := dv.Policy; p != nil && !hasSnapshot(o.Snapshots[name], p.Baseline) {
		// Apply marks a VM provisioned right before its baseline (the
		// baseline's copy of the definition must say provisioned), so a
		// kill in between leaves a provisioned VM without it; so does a
		// policy added to an existing VM, or a baseline deleted by hand.
		// The VM is kept: the baseline is taken from it as it is.
		state := "shut off"
		if obs.State != virt.StateShutoff {
			state = "running"
		} else if ref, ok := memoryImageRef(dv.Spec.Metadata); ok && p.Memory && obs.StopReason == virt.StopOther && o.Volumes[ref.Name].Name == ref.Name {
			state = "saved"
		}
		upd = append(upd, Reason{Code: ReasonBaselineMissing, Subject: p.Baseline, From: state})
		c.takeBaseline = true
	}
	if len(upd) == 0 {
		c.Action = ActionNoop
		return c, nil
	}
	c.Action = ActionUpdate
	c.Reasons = upd
	c.RestartNeeded = restart && obs.State != virt.StateShutoff
	return c, nil
}

func systemDiskPath(dv *desiredVM) string {
	for _, d := range dv.Spec.Disks {
		if d.Target == systemTarget {
			return d.Path
		}
	}
	return ""
}

// observedLayerPath is where the layer the domain's metadata lists lives
// (beside the system disk, in the same pool), or "" when it lists none: a
// VM with a layered baseline runs on it.
func observedLayerPath(d virt.Domain, dv *desiredVM) string {
	ref, ok := layerRef(d.Metadata)
	sys := systemDiskPath(dv)
	if !ok || sys == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(sys), ref.Name)
}

func systemDisk(d virt.Domain) (virt.DiskSpec, bool) {
	for _, x := range d.Disks {
		if x.Device == virt.DeviceDisk {
			return x, true
		}
	}
	return virt.DiskSpec{}, false
}

// bindingDrift compares the filters bound to a running domain's NICs with
// the desired references: a NIC whose filter was removed live (virsh
// update-device --live) runs unfiltered although its definition may be
// right.
func bindingDrift(domain string, bindings []virt.FilterBinding, want []virt.InterfaceSpec) []Reason {
	var r []Reason
	for _, w := range want {
		if w.Filter == "" {
			continue
		}
		var b *virt.FilterBinding
		for i := range bindings {
			if bindings[i].Owner == domain && strings.EqualFold(bindings[i].MAC, w.MAC) {
				b = &bindings[i]
			}
		}
		wantIP := paramIP(w.FilterParams)
		switch {
		case b == nil:
			r = append(r, Reason{Code: ReasonBindingMissing, Subject: w.MAC, To: w.Filter})
		case b.Filter != w.Filter:
			r = append(r, Reason{Code: ReasonBindingFilter, Subject: w.MAC, From: b.Filter, To: w.Filter})
		case wantIP.IsValid() && paramIP(b.Params) != wantIP:
			r = append(r, Reason{Code: ReasonBindingIP, Subject: w.MAC, From: addrStr(paramIP(b.Params)), To: wantIP.String()})
		}
	}
	return r
}

// interfaceDrift compares NICs; a missing filter reference is called out
// because it removes the VM's isolation. filterOnly reports that every
// difference is in the filter references (which apply sets live).
func interfaceDrift(have, want []virt.InterfaceSpec) (r []Reason, filterOnly bool) {
	other := 0
	byMAC := map[string]virt.InterfaceSpec{}
	for _, i := range have {
		byMAC[strings.ToLower(i.MAC)] = i
	}
	for _, w := range want {
		h, ok := byMAC[strings.ToLower(w.MAC)]
		if !ok {
			r = append(r, Reason{Code: ReasonNICAdded, Subject: w.MAC, To: w.Network})
			other++
			continue
		}
		delete(byMAC, strings.ToLower(w.MAC))
		if h.Network != w.Network {
			r = append(r, Reason{Code: ReasonNICNetwork, Subject: w.MAC, From: h.Network, To: w.Network})
			other++
		}
		if h.Filter != w.Filter {
			if h.Filter == "" {
				r = append(r, Reason{Code: ReasonNICFilterRemoved, Subject: w.MAC})
			} else {
				r = append(r, Reason{Code: ReasonNICFilter, Subject: w.MAC, From: h.Filter, To: w.Filter})
			}
		} else if !sameParams(h.FilterParams, w.FilterParams) {
			r = append(r, Reason{Code: ReasonNICFilterParams, Subject: w.MAC})
		}
		if h.Model != "" && w.Model != "" && h.Model != w.Model {
			r = append(r, Reason{Code: ReasonNICModel, Subject: w.MAC, From: h.Model, To: w.Model})
			other++
		}
		if h.PortIsolated != w.PortIsolated {
			r = append(r, Reason{Code: ReasonNICPortIsolation, Subject: w.MAC, From: fmt.Sprint(h.PortIsolated), To: fmt.Sprint(w.PortIsolated)})
			other++
		}
	}
	for _, mac := range sortedKeys(byMAC) {
		r = append(r, Reason{Code: ReasonNICRemoved, Subject: mac, From: byMAC[mac].Network})
		other++
	}
	return r, len(r) > 0 && other == 0
}

func sameParams(a, b []virt.FilterParam) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, p := range a {
		m[p.Name+"="+p.Value]++
	}
	for _, p := range b {
		m[p.Name+"="+p.Value]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func createDetails(dv *desiredVM) []string {
	var disk string
	switch {
	case dv.Install != nil:
		disk = fmt.Sprintf("installed from %s (%s)", dv.Image, humanBytes(dv.System.CapacityBytes))
	case dv.Clone == profiles.CloneFull:
		disk = "full copy of " + dv.Image
	default:
		disk = "linked clone of " + dv.Image
	}
	d := []string{disk, fmt.Sprintf("%d vCPU, %s", dv.Spec.VCPUs, humanBytes(dv.Spec.MemoryBytes))}
	if len(dv.Spec.Interfaces) > 0 {
		n := "network " + dv.Spec.Interfaces[0].Network
		if dv.IP.IsValid() {
			n += ", address " + dv.IP.String()
		}
		d = append(d, n)
	}
	if dv.Answer {
		d = append(d, "answer media for setup (reads the product key at apply)")
	}
	if dv.License != nil {
		d = append(d, fmt.Sprintf("licence %s (%s)", dv.License.Name, dv.License.Channel))
	}
	if dv.Policy != nil {
		s := "baseline snapshot " + dv.Policy.Baseline
		if dv.Policy.Memory {
			s += " with memory"
		}
		d = append(d, s)
	}
	return d
}

func deleteDetails(d *virt.Domain, o *observation) []string {
	var out []string
	if n := len(o.Snapshots[d.Name]); n > 0 {
		out = append(out, fmt.Sprintf("deletes the disk and %d snapshot(s)", n))
	} else {
		out = append(out, "deletes the disk")
	}
	return out
}

// imageDirsWithoutPool lists directories of images libvirt cannot see
// through any pool.
func imageDirsWithoutPool(ds *desiredState, o *observation) []string {
	seen := map[string]bool{}
	var out []string
	for _, dv := range ds.VMs {
		if dv.Image == "" || dv.ImageName != "" { // registered images are in their pool
			continue
		}
		if _, ok := o.Images[dv.Image]; ok {
			continue
		}
		if _, ok := ds.Target.Images[dv.Image]; ok {
			continue // on a remote host: uploaded, or to be uploaded
		}
		dir := filepath.Dir(dv.Image)
		if !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
	}
	sort.Strings(out)
	return out
}

// imagePoolName names the pool legacyvm defines for an image directory.
func imagePoolName(dir string) string { return namePrefix + "images-" + hashOf(dir)[:8] }

// humanBytes prints sizes the way profiles write them.
func humanBytes(n uint64) string {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
	)
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= gib:
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	case n >= mib:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= kib:
		return fmt.Sprintf("%d KiB", n/kib)
	}
	return fmt.Sprintf("%d B", n)
}

func hasSnapshot(snaps []virt.Snapshot, name string) bool {
	for _, s := range snaps {
		if s.Name == name {
			return true
		}
	}
	return false
}
