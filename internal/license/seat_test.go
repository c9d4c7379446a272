package license

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCheckSeats(t *testing.T) {
	const fpA, fpB = "hmac1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "hmac1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	host := func(profile, label string, ch Channel, fp, vm string) Seat {
		return Seat{Profile: profile, Label: label, Channel: ch, Fingerprint: fp, VM: vm, Source: SeatFromHost, LastGroup: "6789B", Since: since}
	}
	claim := func(profile, label string, ch Channel, seats int, fp string, vms ...string) Claim {
		return Claim{Profile: profile, Label: label, Channel: ch, Seats: seats, Fingerprint: fp, LastGroup: "6789B", VMs: vms}
	}
	type want struct {
		kind    ViolationKind
		label   string
		refused []string
		holders []string // VM names in grant order
		detail  []string // substrings of Detail
		summary string
	}
	tests := []struct {
		name   string
		claims []Claim
		held   []Seat
		want   []want
	}{
		{name: "retail one VM", claims: []Claim{claim("lab", "acct", ChannelRetail, 1, fpA, "acct")}},
		{
			name:   "retail count 2 in one profile",
			claims: []Claim{claim("lab", "acct", ChannelRetail, 1, fpA, "acct-1", "acct-2")},
			want: []want{{kind: NoFreeSeat, label: "acct", refused: []string{"acct-2"}, holders: []string{"acct-1", "acct-2"},
				summary: "Licence used by more than one VM", detail: []string{`VM "acct-2" would get no seat`, "one VM at a time"}}},
		},
		{
			name:   "retail declared with 2 seats still serves one VM",
			claims: []Claim{claim("lab", "acct", ChannelRetail, 2, fpA, "acct-1", "acct-2")},
			want:   []want{{kind: NoFreeSeat, label: "acct", refused: []string{"acct-2"}, holders: []string{"acct-1", "acct-2"}}},
		},
		{
			name:   "second profile reusing a retail key already used on the host is refused",
			claims: []Claim{claim("lab2", "win7", ChannelRetail, 1, fpA, "b-1")},
			held:   []Seat{host("lab1", "acct", ChannelRetail, fpA, "acct-1")},
			want: []want{{kind: NoFreeSeat, label: "win7", refused: []string{"b-1"}, holders: []string{"acct-1", "b-1"},
				summary: "Licence key already in use",
				detail:  []string{`VM "acct-1" (licence "acct", profile "lab1", defined on the host since 2026-03-01T12:00:00Z)`, `VM "b-1" would get no seat`, "XXXXX-XXXXX-XXXXX-XXXXX-6789B"}}},
		},
		{
			name:   "same label in another profile with another key is another licence",
			claims: []Claim{claim("lab2", "acct", ChannelRetail, 1, fpB, "b-1")},
			held:   []Seat{host("lab1", "acct", ChannelRetail, fpA, "acct-1")},
		},
		{
			name:   "re-applying its own seat is not a second seat",
			claims: []Claim{claim("lab", "acct", ChannelRetail, 1, fpA, "acct")},
			held:   []Seat{host("lab", "acct", ChannelRetail, fpA, "acct")},
		},
		{
			name:   "existing VM keeps its seat, the new one is refused",
			claims: []Claim{claim("lab", "acct", ChannelRetail, 1, fpA, "new", "old")},
			held:   []Seat{host("lab", "acct", ChannelRetail, fpA, "old")},
			want:   []want{{kind: NoFreeSeat, label: "acct", refused: []string{"new"}, holders: []string{"old", "new"}}},
		},
		{
			name:   "a VM moved to another licence releases the old one",
			claims: []Claim{claim("lab", "new", ChannelRetail, 1, fpB, "acct"), claim("lab", "acct", ChannelRetail, 1, fpA, "acct-b")},
			held:   []Seat{host("lab", "acct", ChannelRetail, fpA, "acct")},
		},
		{
			name:   "OEM key under two labels in one profile",
			claims: []Claim{claim("lab", "a", ChannelOEM, 1, fpA, "vm-a"), claim("lab", "b", ChannelOEM, 1, fpA, "vm-b")},
			want: []want{{kind: NoFreeSeat, label: "b", refused: []string{"vm-b"}, holders: []string{"vm-a", "vm-b"},
				detail: []string{`VM "vm-a" (licence "a")`, "an OEM licence"}}},
		},
		{
			name:   "OEM held twice on the host already, plan adds nothing",
			claims: []Claim{claim("lab", "other", ChannelOEM, 1, fpB, "x")},
			held:   []Seat{host("p", "a", ChannelOEM, fpA, "h1"), host("q", "a", ChannelOEM, fpA, "h2")},
		},
		{
			name:   "MAK within declared activations across profiles",
			claims: []Claim{claim("lab", "vol", ChannelMAK, 3, fpA, "v-1")},
			held:   []Seat{host("p", "vol", ChannelMAK, fpA, "p-1"), host("q", "mak", ChannelMAK, fpA, "q-1")},
		},
		{
			name:   "MAK beyond declared activations",
			claims: []Claim{claim("lab", "vol", ChannelMAK, 3, fpA, "v-1", "v-2")},
			held:   []Seat{host("p", "vol", ChannelMAK, fpA, "p-1"), host("q", "mak", ChannelMAK, fpA, "q-1")},
			want: []want{{kind: NoFreeSeat, label: "vol", refused: []string{"v-2"}, holders: []string{"p-1", "q-1", "v-1", "v-2"},
				summary: "Licence has no free seat", detail: []string{"3 activations", `VM "p-1"`, `VM "q-1"`, "volume licence agreement"}}},
		},
		{
			name:   "MAK re-applied by the same VMs",
			claims: []Claim{claim("lab", "vol", ChannelMAK, 2, fpA, "v-1", "v-2")},
			held:   []Seat{host("lab", "vol", ChannelMAK, fpA, "v-1"), host("lab", "vol", ChannelMAK, fpA, "v-2")},
		},
		{
			name:   "MAK with zero seats refuses every VM",
			claims: []Claim{claim("lab", "vol", ChannelMAK, 0, fpA, "v-1", "v-2")},
			want:   []want{{kind: NoFreeSeat, label: "vol", refused: []string{"v-1", "v-2"}, holders: []string{"v-1", "v-2"}, detail: []string{`VMs "v-1" and "v-2" would get no seat`, "0 activations"}}},
		},
		{
			name:   "KMS serves any number of VMs across profiles",
			claims: []Claim{{Profile: "lab", Label: "kms", Channel: ChannelKMS, KMSHost: "kms.example.org", VMs: []string{"k-1", "k-2", "k-3"}}},
			held:   []Seat{host("p", "kms", ChannelKMS, "", "p-1"), host("lab", "kms", ChannelKMS, "", "old-1")},
		},
		{
			name:   "KMS with declared seats caps the VMs",
			claims: []Claim{{Profile: "lab", Label: "kms", Channel: ChannelKMS, Seats: 2, KMSHost: "kms.example.org", VMs: []string{"k-1", "k-2", "k-3"}}},
			want:   []want{{kind: NoFreeSeat, label: "kms", refused: []string{"k-3"}, summary: "Licence has no free seat", detail: []string{"KMS licence declared with 2 seats"}}},
		},
		{
			name:   "KMS without kms_host",
			claims: []Claim{{Profile: "lab", Label: "kms", Channel: ChannelKMS, VMs: []string{"k-1"}}},
			want:   []want{{kind: KMSHostMissing, label: "kms", summary: "KMS licence without kms_host", detail: []string{"Set kms_host"}}},
		},
		{
			name:   "key declared retail on the host and MAK here",
			claims: []Claim{claim("lab", "vol", ChannelMAK, 5, fpA, "v-1")},
			held:   []Seat{host("p", "acct", ChannelRetail, fpA, "p-1")},
			want: []want{{kind: ChannelConflict, label: "vol", summary: "Licence key declared with two channels",
				detail: []string{"declared as MAK", `VM "p-1" (licence "acct", profile "p"`, "as retail"}}},
		},
		{
			name:   "unknown fingerprint: same profile and label still counts",
			claims: []Claim{claim("lab", "acct", ChannelRetail, 1, "", "acct-2")},
			held:   []Seat{host("lab", "acct", ChannelRetail, fpA, "acct-1")},
			want:   []want{{kind: NoFreeSeat, label: "acct", refused: []string{"acct-2"}, holders: []string{"acct-1", "acct-2"}}},
		},
		{
			name:   "unknown fingerprint: another profile is not matched",
			claims: []Claim{claim("lab2", "acct", ChannelRetail, 1, "", "b-1")},
			held:   []Seat{host("lab1", "acct", ChannelRetail, fpA, "acct-1")},
		},
		{
			name:   "duplicate host seats count once",
			claims: []Claim{claim("lab", "vol", ChannelMAK, 2, fpA, "v-1")},
			held:   []Seat{host("p", "vol", ChannelMAK, fpA, "p-1"), host("p", "vol", ChannelMAK, fpA, "p-1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckSeats(tt.claims, tt.held)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d violations, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				v := got[i]
				if v.Kind != w.kind || v.Label != w.label {
					t.Errorf("violation %d: kind %d label %q, want %d %q", i, v.Kind, v.Label, w.kind, w.label)
				}
				if !reflect.DeepEqual(v.Refused, w.refused) {
					t.Errorf("violation %d: refused %q, want %q", i, v.Refused, w.refused)
				}
				if w.holders != nil {
					var names []string
					for _, h := range v.Holders {
						names = append(names, h.VM)
					}
					if !reflect.DeepEqual(names, w.holders) {
						t.Errorf("violation %d: holders %q, want %q", i, names, w.holders)
					}
				}
				if w.summary != "" && v.Summary() != w.summary {
					t.Errorf("violation %d: summary %q, want %q", i, v.Summary(), w.summary)
				}
				d := v.Detail()
				for _, s := range w.detail {
					if !strings.Contains(d, s) {
						t.Errorf("violation %d: detail %q does not contain %q", i, d, s)
					}
				}
				if strings.Contains(d, "hmac1:") {
					t.Errorf("detail shows a fingerprint: %q", d)
				}
				assertNoKey(t, "detail", d)
			}
		})
	}
}

func TestSeatLimit(t *testing.T) {
	tests := []struct {
		ch       Channel
		declared int
		want     int
	}{
		{ChannelRetail, 1, 1}, {ChannelRetail, 5, 1}, {ChannelOEM, 0, 1},
		{ChannelMAK, 10, 10}, {ChannelMAK, -1, 0}, {ChannelKMS, 0, Unlimited}, {ChannelKMS, 5, 5}, {"bogus", 3, 0},
	}
	for _, tt := range tests {
		if got := SeatLimit(tt.ch, tt.declared); got != tt.want {
			t.Errorf("SeatLimit(%s, %d) = %d, want %d", tt.ch, tt.declared, got, tt.want)
		}
	}
}
