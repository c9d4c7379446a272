package inventory

import (
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

func seatDomain(name, profile, label, channel, fp, last string, since time.Time) virt.Domain {
	return virt.Domain{Name: name, State: virt.StateRunning, Metadata: &virt.Metadata{Profile: profile, Provisioned: true, Created: since,
		License: &virt.LicenseRef{Label: label, Channel: channel, Edition: "professional", Fingerprint: fp, LastGroup: last}}}
}

// One key declared under two profiles is one entry, named after the first
// seat; a profile's view lists its unused licences too.
func TestLicencesMergeByFingerprint(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mak := seatDomain("vol1", "gamma", "vol", "mak", "hmac1:k2", "JK89C", t0)
	mak.Metadata.License.Seats = 5
	hosts := []HostDomains{
		{URI: "test:///a", Domains: []virt.Domain{
			seatDomain("late", "beta", "spare", "retail", "hmac1:k1", "6789B", t0.Add(time.Hour)),
			{Name: "plain"},
		}},
		{URI: "test:///b", Domains: []virt.Domain{
			seatDomain("early", "alpha", "office", "retail", "hmac1:k1", "6789B", t0),
			mak,
		}},
	}
	all := Licences(hosts, nil)
	if len(all) != 2 {
		t.Fatalf("want 2 entries, got %+v", all)
	}
	office := all[0]
	if office.Profile != "alpha" || office.Label != "office" || len(office.OtherNames) != 1 || office.OtherNames[0] != (LicenceName{Profile: "beta", Label: "spare"}) {
		t.Errorf("names: %+v", office)
	}
	if office.SeatsUsed != 2 || office.SeatsAllowed != 1 || !office.OverSubscribed || office.Key != "XXXXX-XXXXX-XXXXX-XXXXX-6789B" {
		t.Errorf("seats: %+v", office)
	}
	if office.VMs[0].Name != "early" || office.VMs[0].Host != "test:///b" || office.VMs[1].Name != "late" {
		t.Errorf("VMs in seat order: %+v", office.VMs)
	}
	if all[1].Channel != "mak" || all[1].SeatsAllowed != 5 || all[1].OverSubscribed {
		t.Errorf("mak entry: %+v", all[1])
	}

	p := &profiles.Profile{Name: "gamma", Licenses: []*profiles.License{{Name: "vol"}, {Name: "unused", Channel: "retail"}}}
	mine := Licences(hosts, p)
	if len(mine) != 2 || mine[0].Label != "unused" || mine[0].SeatsUsed != 0 || mine[0].VMs == nil || mine[1].Label != "vol" {
		t.Errorf("profile view: %+v", mine)
	}
}
