package orchestrator

// Licence seats at plan time (the licence inventory of the hosts is
// internal/inventory).
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

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/inventory"
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
			out = append(out, inventory.Seat(d))
		}
	}
	return out
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
