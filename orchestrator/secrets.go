package orchestrator

import (
	"fmt"
	"sort"
	"strings"
)

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
