package imagemeta

import (
	"strings"
	"testing"
	"time"
)

func TestEncodeParse(t *testing.T) {
	m := Meta{Format: Format, Image: "win7", Version: 3, Edition: "professional",
		Media: []Media{{Name: "drivers.iso", SHA256: "ab"}}, BuiltAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Generalized: true}
	doc := m.Encode()
	if !strings.HasSuffix(string(doc), "}\n") || !strings.Contains(string(doc), `  "image": "win7"`) {
		t.Fatalf("encoding: %s", doc)
	}
	got, ok := Parse(doc, "win7", 3)
	if !ok || got.Edition != "professional" || len(got.Media) != 1 || got.Media[0].Name != "drivers.iso" || !got.BuiltAt.Equal(m.BuiltAt) {
		t.Fatalf("parse: %+v %v", got, ok)
	}
	other := m
	other.Format = Format + 1
	for name, c := range map[string]struct {
		doc     []byte
		image   string
		version int
	}{
		"not JSON":      {[]byte("garbage"), "win7", 3},
		"other image":   {doc, "xp", 3},
		"other version": {doc, "win7", 2},
		"other format":  {other.Encode(), "win7", 3},
	} {
		if _, ok := Parse(c.doc, c.image, c.version); ok {
			t.Errorf("%s: parsed", name)
		}
	}
}
