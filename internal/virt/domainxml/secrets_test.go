package domainxml

import (
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// keyForms are the ways fakeKey could leak.
var keyForms = []string{fakeKey, strings.ReplaceAll(fakeKey, "-", ""), strings.ToLower(fakeKey)}

func assertNoKey(t *testing.T, where, s string) {
	t.Helper()
	for _, k := range keyForms {
		if strings.Contains(s, k) {
			t.Errorf("%s contains the product key", where)
		}
	}
}

// TestNoKeyInOutput renders every golden case (the fixtures carry the fake
// key's fingerprint and last group) and checks that no key appears and that
// the last group appears only as the licence's last-group attribute.
func TestNoKeyInOutput(t *testing.T) {
	lastGroupAttr := regexp.MustCompile(`last-group="` + fakeLastGroup + `"`)
	for _, c := range goldenCases() {
		docs, err := c.render()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for suffix, doc := range docs {
			where := c.name + suffix
			assertNoKey(t, where, doc)
			if looksLikeKey(doc) {
				t.Errorf("%s contains something shaped like a product key", where)
			}
			if n, m := strings.Count(doc, fakeLastGroup), len(lastGroupAttr.FindAllString(doc, -1)); n != m {
				t.Errorf("%s: the last key group appears %d times, %d of them as last-group", where, n, m)
			}
		}
	}
}

// TestKeyRefused tries to smuggle the key through every free-text field
// that reaches libvirt. Each attempt must fail without repeating the key.
func TestKeyRefused(t *testing.T) {
	withMeta := func(f func(*virt.Metadata)) func() error {
		return func() error {
			s := baseDomain()
			f(s.Metadata)
			_, err := DomainXML(s)
			return err
		}
	}
	withDomain := func(f func(*virt.DomainSpec)) func() error {
		return func() error {
			s := baseDomain()
			f(&s)
			_, err := DomainXML(s)
			return err
		}
	}
	tests := map[string]func() error{
		"title":             withDomain(func(s *virt.DomainSpec) { s.Title = "key " + fakeKey }),
		"smbios serial":     withDomain(func(s *virt.DomainSpec) { s.SMBIOSSerial = strings.ReplaceAll(fakeKey, "-", "") }),
		"oem string":        withDomain(func(s *virt.DomainSpec) { s.OEMStrings = append(s.OEMStrings, "legacyvm:key="+fakeKey) }),
		"oem string, lower": withDomain(func(s *virt.DomainSpec) { s.OEMStrings = []string{strings.ToLower(fakeKey)} }),
		"filter parameter": withDomain(func(s *virt.DomainSpec) {
			s.Interfaces[0].FilterParams = []virt.FilterParam{{Name: "KEY", Value: fakeKey}}
		}),
		"metadata profile":   withMeta(func(m *virt.Metadata) { m.Profile = fakeKey }),
		"metadata instance":  withMeta(func(m *virt.Metadata) { m.Instance = fakeKey }),
		"metadata image":     withMeta(func(m *virt.Metadata) { m.Image = "/keys/" + fakeKey + ".iso" }),
		"metadata spec hash": withMeta(func(m *virt.Metadata) { m.SpecHash = fakeKey }),
		"metadata volume":    withMeta(func(m *virt.Metadata) { m.Volumes[0].Name = fakeKey }),
		"metadata filter":    withMeta(func(m *virt.Metadata) { m.Filters = []string{fakeKey} }),
		"licence label":      withMeta(func(m *virt.Metadata) { m.License.Label = fakeKey }),
		"licence fingerprint": withMeta(func(m *virt.Metadata) {
			m.License.Fingerprint = strings.ReplaceAll(fakeKey, "-", "")
		}),
		"licence last group": withMeta(func(m *virt.Metadata) { m.License.LastGroup = fakeKey }),
		"policy schedule":    withMeta(func(m *virt.Metadata) { m.Policy.Schedule = fakeKey }),
		"network metadata": func() error {
			n := sampleNetwork()
			n.Metadata.Network = fakeKey
			_, err := NetworkXML(n)
			return err
		},
		"snapshot description": func() error {
			_, err := SnapshotXML(virt.SnapshotSpec{Name: "s", Description: `{"key":"` + fakeKey + `"}`}, false)
			return err
		},
	}
	for name, try := range tests {
		t.Run(name, func(t *testing.T) {
			err := try()
			if err == nil {
				t.Fatal("accepted a product key")
			}
			assertNoKey(t, "error "+err.Error(), err.Error())
		})
	}
}

// TestLicenseRefHoldsNoKey pins the licence record's shape: a label, the
// edition and channel, a fingerprint and the id of its secret (an HMAC of
// a fixed label, which reveals neither the secret nor the key), the last
// group and the seat count, and the wire form has exactly the same fields.
// Adding a field to either fails here on purpose: review it for secrets
// first.
func TestLicenseRefHoldsNoKey(t *testing.T) {
	want := []string{"Channel", "Edition", "Fingerprint", "Label", "LastGroup", "Seats", "SecretID"}
	for _, typ := range []reflect.Type{reflect.TypeOf(virt.LicenseRef{}), reflect.TypeOf(licenseRefXML{})} {
		var got []string
		for i := range typ.NumField() {
			got = append(got, typ.Field(i).Name)
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s fields = %v, want %v", typ, got, want)
		}
	}
	// Metadata: every field is known and none is a secret.
	var meta []string
	typ := reflect.TypeOf(virt.Metadata{})
	for i := range typ.NumField() {
		meta = append(meta, typ.Field(i).Name)
	}
	sort.Strings(meta)
	wantMeta := []string{"Created", "Doors", "Filters", "Image", "ImageBuild", "ImageName", "ImageVersion", "Instance", "License", "Network", "Policy", "Profile", "Provisioned", "SpecHash", "StopRequested", "VM", "Volumes"}
	if !reflect.DeepEqual(meta, wantMeta) {
		t.Errorf("virt.Metadata fields = %v, want %v (a new field must be rendered, parsed and checked for secrets)", meta, wantMeta)
	}

	// The round trip keeps the licence reference as is.
	m := sampleMetadata()
	doc, err := MetadataXML(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseMetadata(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.License, m.License) {
		t.Errorf("licence = %+v, want %+v", got.License, m.License)
	}
	assertNoKey(t, "metadata", doc)
}

func TestKeyShape(t *testing.T) {
	for s, want := range map[string]bool{
		fakeKey:                              true,
		strings.ToLower(fakeKey):             true,
		"xx" + fakeKey + "yy":                true,
		strings.ReplaceAll(fakeKey, "-", ""): true,
		"XXXXX-XXXXX-XXXXX-XXXXX-6789B":      false, // the redacted form
		fakeLastGroup:                        false,
		"sha256:1f0e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0": false,
		"LVM-6F1C1D4E":                  false,
		"BCDFG-HJKMP-QRTVW-XY234":       false,
		"BCDFG-HJKMP-QRTVW-XY234-6789":  false,
		"ABCDE-HJKMP-QRTVW-XY234-6789B": false, // A, E are not in the alphabet
	} {
		if got := looksLikeKey(s); got != want {
			t.Errorf("looksLikeKey(%q) = %v, want %v", s, got, want)
		}
	}
}
