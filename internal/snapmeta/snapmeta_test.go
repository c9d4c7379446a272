package snapmeta

import (
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

func TestDescriptionRoundTripAndClassify(t *testing.T) {
	exp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := Description{Kind: Auto, Policy: "daily", Expires: &exp}
	got, ok := ParseDescription(d.String())
	if !ok || got.Kind != Auto || got.Policy != "daily" || !got.Expires.Equal(exp) {
		t.Fatalf("round trip: %+v %v", got, ok)
	}
	if _, ok := ParseDescription("taken by hand"); ok {
		t.Error("a foreign description parsed as legacyvm's")
	}
	if _, ok := ParseDescription(`{"policy":"x"}`); ok {
		t.Error("a description without kind parsed as legacyvm's")
	}

	cases := []struct {
		name     string
		snap     virt.Snapshot
		baseline string
		kind     Kind
		memory   bool
	}{
		{"foreign", virt.Snapshot{Name: "mine", Description: "by hand"}, "clean", Manual, false},
		{"auto", virt.Snapshot{Name: "auto-daily-x", Description: d.String()}, "clean", Auto, false},
		{"baseline by name", virt.Snapshot{Name: "clean"}, "clean", Baseline, false},
		{"no baseline name", virt.Snapshot{Name: ""}, "", Manual, false},
		{"memory image", virt.Snapshot{Name: "clean", Description: Description{Kind: Baseline, MemoryPool: "p", MemoryImage: "lvm-a-baseline.mem"}.String()}, "clean", Baseline, true},
	}
	for _, c := range cases {
		info := Classify(c.snap, c.baseline)
		if info.Kind != c.kind || info.Memory != c.memory {
			t.Errorf("%s: kind %q memory %v, want %q %v", c.name, info.Kind, info.Memory, c.kind, c.memory)
		}
		if c.memory && info.State != virt.StateRunning {
			t.Errorf("%s: state %q, want running", c.name, info.State)
		}
	}
}
