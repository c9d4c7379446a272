package domainxml

import (
	"strings"
	"testing"
	"time"
)

// StopRequested (a timestamp, never a secret) survives both metadata forms.
func TestMetadataStopRequestedRoundTrip(t *testing.T) {
	m := sampleMetadata()
	at := time.Date(2026, 11, 25, 14, 0, 5, 0, time.UTC)
	m.StopRequested = &at
	for name, render := range map[string]func() (string, error){
		"MetadataXML":      func() (string, error) { return MetadataXML(m) },
		"MetadataFragment": func() (string, error) { return MetadataFragment(m) },
	} {
		doc, err := render()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(doc, "2026-11-25T14:00:05Z") {
			t.Errorf("%s does not hold the stop time:\n%s", name, doc)
		}
		got, err := ParseMetadata(doc)
		if err != nil {
			t.Fatalf("%s: parse: %v", name, err)
		}
		if got.StopRequested == nil || !got.StopRequested.Equal(at) {
			t.Errorf("%s: StopRequested = %v, want %v", name, got.StopRequested, at)
		}
	}
	m.StopRequested = nil
	doc, _ := MetadataXML(m)
	if strings.Contains(doc, "stop-requested") {
		t.Errorf("an unset stop time is written:\n%s", doc)
	}
}
