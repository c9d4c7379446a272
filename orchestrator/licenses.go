package orchestrator

// Licence seats at plan time, and the licence inventory.
//
// Where the keys come from. DESIGN says validate and plan read no secrets,
// yet a key is only recognised across licence names and profiles by its
// keyed fingerprint, which needs the key. So seat accounting has two
// strengths, chosen by Options.ReadKeys:
//
//   - ReadKeys false (legacyvm plan): no secret is read. A licence is
//     matched with the seats held on the host by the fingerprint recorded
//     in the metadata of its own VMs when it has some, and otherwise by
//     (profile, licence name). Over-subscription inside the profile, and a
//     licence of this profile held by more VMs than it allows, are found;
//     reuse of the same key under another name or by another profile is
//     not (the key is unknown), and the plan says so in a note.
//   - ReadKeys true (legacyvm apply, always; legacyvm plan
//     --check-keys): the keys of licences whose VMs the plan creates or
//     replaces (exactly the keys apply reads anyway) are read and
//     fingerprinted during planning, before anything changes, and matched
//     against every seat on the host by fingerprint. A second profile that
//     reuses a retail key already in use is refused with a located
//     diagnostic, and apply stops before it has created anything. The keys
//     are read once per command into a secret bundle (secretbundle.go)
//     that the plans hand to apply, which uses them for the answer media
//     without reading them again; the plan itself only sees each key's
//     identity (fingerprint and last group).
//
// Seats are counted across every host the profile uses: a retail key used
// on two hosts is used twice. Seats held on hosts the profile does not use
// are not seen. The check reads the host once, at planning: two applies of
// different profiles started at the same moment (each holds only its own
// profile's lock) can both pass it; the next plan of either reports the
// over-subscription.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/license"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// FingerprintFunc computes the keyed fingerprint of a product key with the
// host's fingerprint secret and returns it with the secret's id
// (license.Fingerprinter.SecretID). held lists the VMs on the hosts being
// worked on that already record a fingerprint: a secret that is missing
// must not be replaced by a new one while they exist (see
// license.OpenFingerprinter), since a new secret never matches them.
type FingerprintFunc func(k license.Key, held []license.FingerprintHolder) (fingerprint, secretID string, err error)

// fingerprintHolders lists the domains that record a licence fingerprint.
func fingerprintHolders(doms []virt.Domain) []license.FingerprintHolder {
	var out []license.FingerprintHolder
	for _, d := range doms {
		if m := d.Metadata; m != nil && m.License != nil && m.License.Fingerprint != "" {
			out = append(out, license.FingerprintHolder{VM: d.Name, SecretID: m.License.SecretID})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VM < out[j].VM })
	return out
}

// keyID identifies a product key without holding it.
type keyID struct {
	// Fingerprint is the keyed fingerprint ("hmac1:..."); "" when the
	// identifier computes none.
	Fingerprint string
	// SecretID identifies the secret that made Fingerprint.
	SecretID string
	// LastGroup is the key's last five characters.
	LastGroup string
}

// keysToRead lists the licences whose keys apply reads for the plans:
// those of the instances the plans create or replace (their setup reads
// the key), in the profile's order.
func keysToRead(p *profiles.Profile, hps []*HostPlan) []*profiles.License {
	provisions := provisionedBy(hps)
	var out []*profiles.License
	for _, l := range p.Licenses {
		for _, in := range p.Instances {
			if in.License == l && provisions[in.Name] {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// seatHolders lists the VMs on the planned hosts that record a licence
// fingerprint.
func seatHolders(hps []*HostPlan) []license.FingerprintHolder {
	var doms []virt.Domain
	for _, hp := range hps {
		if hp.observed != nil {
			for _, name := range sortedKeys(hp.observed.Domains) {
				doms = append(doms, hp.observed.Domains[name])
			}
		}
	}
	return fingerprintHolders(doms)
}

// checkSeats applies the seat rules to the whole profile once every host
// has been planned: the profile's licences (claims) against the seats held
// on those hosts. keysRead says the command read the keys of keysToRead
// and ids holds their identities; otherwise a licence is known by what its
// own VMs recorded. Violations are diagnostics located at the vm block's
// licenses attribute (over-subscription) or at the licence block (a key
// declared with two channels). When no keys were read and a licence's key
// could not be identified, the plans of its hosts get a note saying what
// was not checked. It is pure: the observation and the identities are all
// it reads.
func checkSeats(p *profiles.Profile, hps []*HostPlan, ids map[*profiles.License]keyID, keysRead bool) hcl.Diagnostics {
	held := heldSeats(p, hps)
	provisions := provisionedBy(hps)
	var claims []license.Claim
	var unidentified []*profiles.License
	for _, l := range p.Licenses {
		var vms []string
		needsKey := false
		for _, in := range p.Instances {
			if in.License == l {
				vms = append(vms, in.Name)
				needsKey = needsKey || provisions[in.Name]
			}
		}
		if len(vms) == 0 {
			continue
		}
		c := license.Claim{Profile: p.Name, Label: l.Name, Edition: l.Edition, Channel: l.Channel,
			Seats: l.Seats, KMSHost: l.KMSHost, VMs: vms}
		if id, ok := ids[l]; ok && keysRead && needsKey {
			c.Fingerprint, c.LastGroup = id.Fingerprint, id.LastGroup
		} else {
			c.Fingerprint, c.LastGroup = recordedKey(p.Name, l.Name, held)
		}
		if c.Fingerprint == "" && needsKey {
			unidentified = append(unidentified, l)
		}
		claims = append(claims, c)
	}
	if !keysRead {
		for _, l := range unidentified {
			note := fmt.Sprintf("licence %s: seats counted by licence name only (plan reads no product keys); apply reads the key and also refuses it if another profile's VM already uses it (legacyvm plan --check-keys does the same check now)", l.Name)
			for _, hp := range hps {
				if hostUsesLicence(hp, l) {
					hp.Plan.Notes = append(hp.Plan.Notes, note)
				}
			}
		}
	}
	return seatDiagnostics(p, license.CheckSeats(claims, held))
}

// heldSeats lists the seats recorded in the metadata of the domains on the
// profile's hosts. A seat of the profile's own domain is kept only when the
// plan keeps that domain on the same licence: the plan decides the others
// (deleted, moved to another licence or host), so they are not counted.
func heldSeats(p *profiles.Profile, hps []*HostPlan) []license.Seat {
	var out []license.Seat
	for _, hp := range hps {
		if hp.observed == nil {
			continue
		}
		keep := map[string]string{} // own instance on this host -> licence label
		if hp.desired != nil {
			for _, dv := range hp.desired.VMs {
				if dv.License != nil {
					keep[dv.Spec.Name] = dv.License.Name
				}
			}
		}
		for _, name := range sortedKeys(hp.observed.Domains) {
			d := hp.observed.Domains[name]
			m := d.Metadata
			if m == nil || m.License == nil {
				continue
			}
			if m.Profile == p.Name {
				if label, ok := keep[d.Name]; !ok || label != m.License.Label {
					continue
				}
			}
			out = append(out, seatOf(d))
		}
	}
	return out
}

func seatOf(d virt.Domain) license.Seat {
	m := d.Metadata
	return license.Seat{
		Label:       m.License.Label,
		Channel:     license.Channel(m.License.Channel),
		Edition:     license.Edition(m.License.Edition),
		Fingerprint: m.License.Fingerprint,
		LastGroup:   m.License.LastGroup,
		VM:          d.Name,
		Profile:     m.Profile,
		Source:      license.SeatFromHost,
		Since:       m.Created,
	}
}

// recordedKey returns the key identity the profile's own VMs recorded for
// a licence, when they agree on one.
func recordedKey(profile, label string, held []license.Seat) (fingerprint, lastGroup string) {
	for _, s := range held {
		if s.Profile != profile || s.Label != label || s.Fingerprint == "" {
			continue
		}
		if fingerprint != "" && fingerprint != s.Fingerprint {
			return "", ""
		}
		fingerprint, lastGroup = s.Fingerprint, s.LastGroup
	}
	return fingerprint, lastGroup
}

// provisionedBy reports the instances the plans create or replace: the
// ones whose setup reads the licence key.
func provisionedBy(hps []*HostPlan) map[string]bool {
	out := map[string]bool{}
	for _, hp := range hps {
		if hp.Plan == nil {
			continue
		}
		for _, c := range hp.Plan.Changes {
			if c.Kind == KindVM && (c.Action == ActionCreate || c.Action == ActionReplace) {
				out[c.Name] = true
			}
		}
	}
	return out
}

func hostUsesLicence(hp *HostPlan, l *profiles.License) bool {
	if hp.desired == nil || hp.Plan == nil {
		return false
	}
	for _, dv := range hp.desired.VMs {
		if dv.License == l {
			return true
		}
	}
	return false
}

// seatDiagnostics turns violations into located diagnostics.
func seatDiagnostics(p *profiles.Profile, vs []license.Violation) hcl.Diagnostics {
	lics := map[string]*profiles.License{}
	for _, l := range p.Licenses {
		lics[l.Name] = l
	}
	insts := map[string]*profiles.Instance{}
	for _, in := range p.Instances {
		insts[in.Name] = in
	}
	var diags hcl.Diagnostics
	for _, v := range vs {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: v.Summary(), Detail: v.Detail()}
		if l := lics[v.Label]; l != nil {
			d.Subject = l.DeclRange.Ptr()
		}
		if v.Kind == license.NoFreeSeat && len(v.Refused) > 0 {
			if in := insts[v.Refused[0]]; in != nil {
				d.Subject = in.VM.LicensesRange.Ptr()
			}
		}
		diags = append(diags, d)
	}
	return diags
}

// HostDomains are the domains observed on one host.
type HostDomains struct {
	URI     string
	Domains []virt.Domain
}

// LicenceName names a licence block: its profile and label.
type LicenceName struct {
	Profile string `json:"profile"`
	Label   string `json:"label"`
}

// LicenceUse is one entry of the licence inventory: a product key (known by
// its fingerprint, or by licence name when none was recorded), the licence
// blocks that declare it and the VMs that hold a seat of it.
type LicenceUse struct {
	// Label and Profile name the licence block; when one key is declared
	// under several, the one of the VM that got the first seat.
	Label   string `json:"label"`
	Profile string `json:"profile"`
	// OtherNames are the further licence blocks with the same key (a key
	// shared across profiles or labels).
	OtherNames []LicenceName `json:"other_names,omitempty"`
	Edition    string        `json:"edition,omitempty"`
	Channel    string        `json:"channel"`
	// SeatsDeclared is the licence's seats as declared (0: not limited,
	// for KMS).
	SeatsDeclared int `json:"seats_declared"`
	// SeatsAllowed is how many VMs the channel lets use the key at once
	// (license.SeatLimit); -1 means unlimited.
	SeatsAllowed int `json:"seats_allowed"`
	SeatsUsed    int `json:"seats_used"`
	// Key is the redacted key (XXXXX-XXXXX-XXXXX-XXXXX-ABCDE); several are
	// joined with ", " when a licence's VMs recorded different keys; ""
	// when no VM recorded one.
	Key string `json:"key,omitempty"`
	// OverSubscribed is true when more VMs use the key than it allows.
	OverSubscribed bool        `json:"over_subscribed"`
	VMs            []LicenceVM `json:"vms"`
}

// LicenceVM is a VM holding a seat.
type LicenceVM struct {
	Name    string           `json:"name"`
	Profile string           `json:"profile"`
	Label   string           `json:"label"`
	Host    string           `json:"host"`
	State   virt.DomainState `json:"state"`
	// Provisioned is false while setup has not finished.
	Provisioned bool `json:"provisioned"`
	// Since is when the VM was first provisioned (UTC).
	Since time.Time `json:"since,omitempty"`
}

// LicenceInventory builds the licence inventory from the legacyvm metadata
// of the given domains. When p is not nil the inventory is limited to
// entries that involve one of its licences (VMs of other profiles that use
// the same key included), and its licences that no VM uses yet are listed
// with no seat used. It reads no secrets. Entries are sorted by profile and
// label; VMs by the time they were provisioned (the order seats were
// granted), then profile and name.
func LicenceInventory(hosts []HostDomains, p *profiles.Profile) []LicenceUse {
	type group struct {
		names   map[LicenceName]bool
		fps     map[string]bool
		vms     []LicenceVM
		seats   []license.Seat
		merged  *group
		edition string
		channel string
		seats0  int
	}
	find := func(g *group) *group {
		for g.merged != nil {
			g = g.merged
		}
		return g
	}
	byName := map[LicenceName]*group{}
	var order []*group
	get := func(n LicenceName) *group {
		if g, ok := byName[n]; ok {
			return find(g)
		}
		g := &group{names: map[LicenceName]bool{n: true}, fps: map[string]bool{}}
		byName[n] = g
		order = append(order, g)
		return g
	}
	for _, h := range hosts {
		for _, d := range h.Domains {
			m := d.Metadata
			if m == nil || m.License == nil {
				continue
			}
			g := get(LicenceName{Profile: m.Profile, Label: m.License.Label})
			if m.License.Fingerprint != "" {
				g.fps[m.License.Fingerprint] = true
			}
			if g.channel == "" {
				g.edition, g.channel, g.seats0 = m.License.Edition, m.License.Channel, m.License.Seats
			}
			g.vms = append(g.vms, LicenceVM{Name: d.Name, Profile: m.Profile, Label: m.License.Label, Host: h.URI,
				State: d.State, Provisioned: m.Provisioned, Since: m.Created})
			g.seats = append(g.seats, seatOf(d))
		}
	}
	// Declared licences of the profile that no VM uses yet.
	if p != nil {
		for _, l := range p.Licenses {
			n := LicenceName{Profile: p.Name, Label: l.Name}
			if _, ok := byName[n]; ok {
				continue
			}
			g := get(n)
			g.edition, g.channel, g.seats0 = string(l.Edition), string(l.Channel), l.Seats
		}
	}
	// One key, one entry: merge groups that share a fingerprint.
	owner := map[string]*group{}
	for _, g := range order {
		g = find(g)
		for _, fp := range sortedKeys(g.fps) {
			o, ok := owner[fp]
			if !ok {
				owner[fp] = g
				continue
			}
			o = find(o)
			if o == g {
				continue
			}
			for n := range g.names {
				o.names[n] = true
			}
			for f := range g.fps {
				o.fps[f] = true
				owner[f] = o
			}
			o.vms = append(o.vms, g.vms...)
			o.seats = append(o.seats, g.seats...)
			g.merged = o
			g = o
		}
	}
	var out []LicenceUse
	seen := map[*group]bool{}
	for _, g := range order {
		g = find(g)
		if seen[g] {
			continue
		}
		seen[g] = true
		names := make([]LicenceName, 0, len(g.names))
		involved := p == nil
		for n := range g.names {
			names = append(names, n)
			if p != nil && n.Profile == p.Name {
				involved = true
			}
		}
		if !involved {
			continue
		}
		// VMs in the order their seats were granted; the entry is named
		// after the licence of the first one.
		sort.Slice(g.vms, func(i, j int) bool {
			a, b := g.vms[i], g.vms[j]
			if !a.Since.Equal(b.Since) {
				return a.Since.Before(b.Since)
			}
			if a.Profile != b.Profile {
				return a.Profile < b.Profile
			}
			if a.Name != b.Name {
				return a.Name < b.Name
			}
			return a.Host < b.Host
		})
		first := LicenceName{}
		if len(g.vms) > 0 {
			first = LicenceName{Profile: g.vms[0].Profile, Label: g.vms[0].Label}
		}
		sort.Slice(names, func(i, j int) bool {
			if (names[i] == first) != (names[j] == first) {
				return names[i] == first
			}
			if names[i].Profile != names[j].Profile {
				return names[i].Profile < names[j].Profile
			}
			return names[i].Label < names[j].Label
		})
		u := LicenceUse{Label: names[0].Label, Profile: names[0].Profile, OtherNames: names[1:],
			Edition: g.edition, Channel: g.channel, SeatsDeclared: g.seats0, SeatsUsed: len(g.vms), VMs: g.vms}
		if len(u.OtherNames) == 0 {
			u.OtherNames = nil
		}
		if u.VMs == nil {
			u.VMs = []LicenceVM{}
		}
		u.SeatsAllowed = license.SeatLimit(license.Channel(u.Channel), u.SeatsDeclared)
		u.OverSubscribed = u.SeatsAllowed != license.Unlimited && u.SeatsUsed > u.SeatsAllowed
		var keys []string
		kseen := map[string]bool{}
		for _, s := range g.seats {
			if s.LastGroup != "" && !kseen[s.LastGroup] {
				kseen[s.LastGroup] = true
				keys = append(keys, license.Redact(s.LastGroup))
			}
		}
		sort.Strings(keys)
		u.Key = strings.Join(keys, ", ")
		out = append(out, u)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Profile != out[j].Profile {
			return out[i].Profile < out[j].Profile
		}
		return out[i].Label < out[j].Label
	})
	return out
}
