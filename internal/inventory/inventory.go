// Package inventory builds the licence inventory of hosts from the legacyvm
// metadata of their domains: which product keys (known by fingerprint or
// licence name) are used by which VMs, how many seats each allows, and
// which fingerprint secrets made the recorded fingerprints. It is pure: the
// caller lists the domains; nothing here reads a secret or talks to a host.
package inventory

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/license"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

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

// Licences builds the licence inventory from the legacyvm metadata
// of the given domains. When p is not nil the inventory is limited to
// entries that involve one of its licences (VMs of other profiles that use
// the same key included), and its licences that no VM uses yet are listed
// with no seat used. It reads no secrets. Entries are sorted by profile and
// label; VMs by the time they were provisioned (the order seats were
// granted), then profile and name.
func Licences(hosts []HostDomains, p *profiles.Profile) []LicenceUse {
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
			g.seats = append(g.seats, Seat(d))
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

// Seat is the licence seat a domain holds, from its legacyvm metadata (which
// must record a licence).
func Seat(d virt.Domain) license.Seat {
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

// FingerprintSecret is one fingerprint secret in use on the hosts, known by
// its id (license.Fingerprinter.SecretID), with the VMs whose licence
// fingerprint it made.
type FingerprintSecret struct {
	ID  string   `json:"id"`
	VMs []string `json:"vms"`
	// Hosts are the URIs of the hosts those VMs are on, sorted.
	Hosts []string `json:"hosts"`
}

// FingerprintSecrets lists the fingerprint secrets that made the licence
// fingerprints recorded on the hosts, by id (fingerprints recorded before
// secret ids were stored are left out: their secret is unknown). More
// than one means reuse of a key between VMs of different secrets cannot be
// detected: the fingerprints of the same key differ.
func FingerprintSecrets(hosts []HostDomains) []FingerprintSecret {
	byID := map[string]*FingerprintSecret{}
	hostSeen := map[string]map[string]bool{}
	for _, h := range hosts {
		for _, d := range h.Domains {
			m := d.Metadata
			if m == nil || m.License == nil || m.License.Fingerprint == "" || m.License.SecretID == "" {
				continue
			}
			id := m.License.SecretID
			s := byID[id]
			if s == nil {
				s = &FingerprintSecret{ID: id}
				byID[id] = s
				hostSeen[id] = map[string]bool{}
			}
			s.VMs = append(s.VMs, d.Name)
			if !hostSeen[id][h.URI] {
				hostSeen[id][h.URI] = true
				s.Hosts = append(s.Hosts, h.URI)
			}
		}
	}
	out := make([]FingerprintSecret, 0, len(byID))
	for _, s := range byID {
		sort.Strings(s.VMs)
		sort.Strings(s.Hosts)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].VMs) != len(out[j].VMs) {
			return len(out[i].VMs) > len(out[j].VMs)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// MixedSecretsWarning is the warning for secrets with more than one
// entry, "" otherwise.
func MixedSecretsWarning(secrets []FingerprintSecret) string {
	if len(secrets) < 2 {
		return ""
	}
	var parts []string
	for _, s := range secrets {
		vms := strings.Join(s.VMs, ", ")
		if len(s.VMs) > 3 {
			vms = strings.Join(s.VMs[:3], ", ") + fmt.Sprintf(" and %d more", len(s.VMs)-3)
		}
		parts = append(parts, fmt.Sprintf("%s (%s, on %s)", s.ID, vms, strings.Join(s.Hosts, ", ")))
	}
	return fmt.Sprintf("licence fingerprints here were made with %d different secrets: %s. The same key used by VMs of different secrets is not detected and their seats are not counted together. Share one secret: fingerprint_key in every profile, or the same LEGACYVM_FINGERPRINT_KEY file for everyone (docs/hosts.md).",
		len(secrets), strings.Join(parts, "; "))
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
