package license

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Where a Seat comes from.
const (
	// SeatFromProfile is a seat the plan wants: a VM of the profile being
	// planned that uses a licence.
	SeatFromProfile = "profile"
	// SeatFromHost is a seat already held: a VM defined on the host whose
	// legacyvm metadata names a licence.
	SeatFromHost = "host"
)

// Seat is one VM using one licence. It holds no secret: the key is known
// only by its fingerprint and last group.
type Seat struct {
	// Label is the licence block name in the VM's profile.
	Label   string
	Channel Channel
	Edition Edition
	// Fingerprint is the keyed fingerprint of the key ("" when unknown,
	// for example when the key has not been read).
	Fingerprint string
	// LastGroup is the last five characters of the key ("" when unknown).
	LastGroup string
	// VM is the instance (domain) name.
	VM string
	// Profile is the profile the VM belongs to.
	Profile string
	// Source is SeatFromProfile or SeatFromHost.
	Source string
	// Since is when a host seat's VM was provisioned (zero when unknown
	// or for profile seats).
	Since time.Time
}

// Claim is a licence a plan wants to use: one licence block of the profile
// being planned and the instances that take a seat of it.
type Claim struct {
	Profile string
	Label   string
	Edition Edition
	Channel Channel
	// Seats is the declared number of seats (activations for MAK).
	Seats int
	// KMSHost is the organisation's KMS host (channel kms).
	KMSHost string
	// Fingerprint of the key; "" when the key has not been read. Without
	// fingerprints a key is recognised by (profile, label) only, so reuse
	// under another label or in another profile goes unnoticed.
	Fingerprint string
	LastGroup   string
	// VMs are the instances that take a seat, in the order seats are
	// handed out.
	VMs []string
}

// ViolationKind classifies a Violation.
type ViolationKind int

const (
	// NoFreeSeat: more VMs use the key than its channel allows (retail and
	// OEM: one; MAK: the declared activations; KMS: the declared seats, if
	// any).
	NoFreeSeat ViolationKind = iota + 1
	// KMSHostMissing: a KMS licence without kms_host.
	KMSHostMissing
	// ChannelConflict: the same key is declared with another channel by
	// another licence (in this profile or on the host).
	ChannelConflict
)

// Violation is a seat rule the plan would break. It is attached to one
// Claim (Profile, Label) so the caller can report it at that licence
// block; Summary and Detail are written for an hcl.Diagnostic and never
// contain a key (at most its last group).
type Violation struct {
	Kind    ViolationKind
	Profile string
	Label   string
	Channel Channel
	// Allowed is the number of VMs the key may serve at once (NoFreeSeat).
	Allowed int
	// Holders are the seats counted against the key, in the order seats
	// are granted: host seats of other VMs first, then the plan's VMs that
	// already hold the seat, then new ones.
	Holders []Seat
	// Refused are the claim's VMs that get no seat.
	Refused []string
	// Conflict is the seat that declares another channel
	// (ChannelConflict).
	Conflict *Seat
	// LastGroup of the key, when known.
	LastGroup string
}

// Unlimited is the Allowed value of channels without a seat limit.
const Unlimited = -1

// SeatLimit returns how many VMs may use one key of channel c at the same
// time, given the declared seats: 1 for retail and OEM whatever is
// declared, the declared activations for MAK; for KMS Unlimited unless
// seats are declared (> 0), which then cap the VMs.
func SeatLimit(c Channel, declared int) int {
	switch c {
	case ChannelRetail, ChannelOEM:
		return 1
	case ChannelMAK:
		if declared < 0 {
			return 0
		}
		return declared
	case ChannelKMS:
		if declared > 0 {
			return declared
		}
		return Unlimited
	}
	return 0
}

// sameKey reports whether two seats or claims refer to the same key: by
// fingerprint when both are known, otherwise by (profile, label).
func sameKey(aProfile, aLabel, aFP, bProfile, bLabel, bFP string) bool {
	if aFP != "" && bFP != "" {
		return aFP == bFP
	}
	return aProfile == bProfile && aLabel == bLabel
}

type vmID struct{ profile, vm string }

// CheckSeats applies the seat rules of each channel to what a plan wants
// (claims) given the seats already held on the host (held, from legacyvm
// domain metadata), and returns the violations in claim order (nil when
// there are none). It is a pure function.
//
// The rules: retail and OEM keys serve one VM at a time, across labels and
// profiles (the same fingerprint under another label counts); a MAK serves
// at most the declared number of VMs; KMS serves any number of VMs but
// needs kms_host; a key has one channel. A VM re-applying its own seat is
// not a second seat: a held seat whose (profile, VM) is one of the claims'
// VMs is superseded by the plan. Held seats of domains the plan destroys
// or takes the licence from should be left out by the caller.
func CheckSeats(claims []Claim, held []Seat) []Violation {
	planned := map[vmID]bool{}
	for _, c := range claims {
		for _, vm := range c.VMs {
			planned[vmID{c.Profile, vm}] = true
		}
	}
	var out []Violation
	for ci, c := range claims {
		if c.Channel == ChannelKMS && strings.TrimSpace(c.KMSHost) == "" {
			out = append(out, Violation{Kind: KMSHostMissing, Profile: c.Profile, Label: c.Label, Channel: c.Channel, Allowed: Unlimited, LastGroup: c.LastGroup})
		}
		if v, ok := channelConflict(ci, claims, held, planned); ok {
			out = append(out, v)
		}
		limit := SeatLimit(c.Channel, c.Seats)
		if limit == Unlimited {
			continue
		}
		holders, mine := seatHolders(ci, claims, held, planned)
		if len(holders) <= limit {
			continue
		}
		var refused []string
		for i := limit; i < len(holders); i++ {
			if mine[i] {
				refused = append(refused, holders[i].VM)
			}
		}
		if len(refused) == 0 {
			// The key is over-subscribed, but not by this claim: the
			// violation belongs to the claim whose VMs come later.
			continue
		}
		out = append(out, Violation{
			Kind: NoFreeSeat, Profile: c.Profile, Label: c.Label, Channel: c.Channel,
			Allowed: limit, Holders: holders, Refused: refused, LastGroup: c.LastGroup,
		})
	}
	return out
}

// seatHolders lists the seats counted against claim ci's key, in grant
// order, and marks those that belong to claim ci itself.
func seatHolders(ci int, claims []Claim, held []Seat, planned map[vmID]bool) ([]Seat, []bool) {
	c := claims[ci]
	seen := map[vmID]bool{}
	existing := map[vmID]bool{}
	var hosts []Seat
	for _, h := range held {
		if !sameKey(c.Profile, c.Label, c.Fingerprint, h.Profile, h.Label, h.Fingerprint) {
			continue
		}
		id := vmID{h.Profile, h.VM}
		if planned[id] {
			existing[id] = true
			continue
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		h.Source = SeatFromHost
		hosts = append(hosts, h)
	}
	type planSeat struct {
		seat Seat
		mine bool
	}
	var old, fresh []planSeat
	for oi, o := range claims {
		if !sameKey(c.Profile, c.Label, c.Fingerprint, o.Profile, o.Label, o.Fingerprint) {
			continue
		}
		for _, vm := range o.VMs {
			id := vmID{o.Profile, vm}
			if seen[id] {
				continue
			}
			seen[id] = true
			ps := planSeat{seat: Seat{
				Label: o.Label, Channel: o.Channel, Edition: o.Edition, Fingerprint: o.Fingerprint,
				LastGroup: o.LastGroup, VM: vm, Profile: o.Profile, Source: SeatFromProfile,
			}, mine: oi == ci}
			if existing[id] {
				old = append(old, ps)
			} else {
				fresh = append(fresh, ps)
			}
		}
	}
	seats := append([]Seat(nil), hosts...)
	mine := make([]bool, len(hosts))
	for _, ps := range append(old, fresh...) {
		seats = append(seats, ps.seat)
		mine = append(mine, ps.mine)
	}
	return seats, mine
}

// channelConflict finds another licence with the same (fingerprinted) key
// and a different channel.
func channelConflict(ci int, claims []Claim, held []Seat, planned map[vmID]bool) (Violation, bool) {
	c := claims[ci]
	if c.Fingerprint == "" {
		return Violation{}, false
	}
	mk := func(s Seat) (Violation, bool) {
		return Violation{Kind: ChannelConflict, Profile: c.Profile, Label: c.Label, Channel: c.Channel, Conflict: &s, LastGroup: c.LastGroup}, true
	}
	for oi, o := range claims {
		if oi == ci || o.Fingerprint != c.Fingerprint || o.Channel == c.Channel {
			continue
		}
		vm := ""
		if len(o.VMs) > 0 {
			vm = o.VMs[0]
		}
		return mk(Seat{Label: o.Label, Channel: o.Channel, Edition: o.Edition, Fingerprint: o.Fingerprint, LastGroup: o.LastGroup, VM: vm, Profile: o.Profile, Source: SeatFromProfile})
	}
	for _, h := range held {
		if h.Fingerprint != c.Fingerprint || h.Channel == c.Channel || planned[vmID{h.Profile, h.VM}] {
			continue
		}
		h.Source = SeatFromHost
		return mk(h)
	}
	return Violation{}, false
}

// Summary is a short phrase for a diagnostic.
func (v Violation) Summary() string {
	switch v.Kind {
	case NoFreeSeat:
		switch v.Channel {
		case ChannelRetail, ChannelOEM:
			for _, h := range v.Holders {
				if h.Source == SeatFromHost || h.Profile != v.Profile {
					return "Licence key already in use"
				}
			}
			return "Licence used by more than one VM"
		}
		return "Licence has no free seat"
	case KMSHostMissing:
		return "KMS licence without kms_host"
	case ChannelConflict:
		return "Licence key declared with two channels"
	}
	return "Licence rule violated"
}

// Detail explains the violation in full sentences and says what to do. It
// names the VMs involved and never the key (at most its last group).
func (v Violation) Detail() string {
	var b strings.Builder
	lic := fmt.Sprintf("Licence %q", v.Label)
	if v.LastGroup != "" {
		lic += " (key " + Redact(v.LastGroup) + ")"
	}
	switch v.Kind {
	case NoFreeSeat:
		var others []string
		for _, h := range v.Holders {
			if h.Profile == v.Profile && h.Label == v.Label && h.Source == SeatFromProfile {
				continue
			}
			others = append(others, describeSeat(h, v.Profile))
		}
		switch v.Channel {
		case ChannelRetail, ChannelOEM:
			fmt.Fprintf(&b, "%s is a%s %s licence: its key may be used by one VM at a time.", lic, article(string(v.Channel)), channelName(v.Channel))
		case ChannelKMS:
			fmt.Fprintf(&b, "%s is a KMS licence declared with %s: at most that many VMs may use it.", lic, plural(v.Allowed, "seat"))
		default:
			fmt.Fprintf(&b, "%s is a MAK licence declared with %s: its key may be used by at most that many VMs.", lic, plural(v.Allowed, "activation"))
		}
		if len(others) > 0 {
			fmt.Fprintf(&b, " The same key is already used by %s.", strings.Join(others, ", "))
		}
		fmt.Fprintf(&b, " %s would get no seat.", quoteList("VM", v.Refused))
		switch v.Channel {
		case ChannelRetail, ChannelOEM:
			b.WriteString(" Give each VM its own licence, or destroy the VM that uses this key first.")
		case ChannelKMS:
			b.WriteString(" Raise seats (or remove it: KMS has no per-key limit) if your organisation allows more VMs, or use fewer VMs.")
		default:
			b.WriteString(" Raise seats only if your volume licence agreement allows more activations, or use fewer VMs.")
		}
	case KMSHostMissing:
		fmt.Fprintf(&b, "%s uses the KMS channel: its VMs activate against your organisation's KMS host, which must be named. Set kms_host (for example kms_host = \"kms.example.org\" or \"kms.example.org:1688\").", lic)
	case ChannelConflict:
		s := v.Conflict
		fmt.Fprintf(&b, "%s is declared as %s, but %s uses the same key as %s. A key belongs to one licensing channel: correct the channel of one of the licences.", lic, channelName(v.Channel), describeSeat(*s, v.Profile), channelName(s.Channel))
	}
	return b.String()
}

func describeSeat(s Seat, profile string) string {
	var parts []string
	if s.Label != "" {
		parts = append(parts, "licence "+strconv.Quote(s.Label))
	}
	if s.Profile != profile {
		parts = append(parts, "profile "+strconv.Quote(s.Profile))
	}
	if s.Source == SeatFromHost {
		where := "defined on the host"
		if !s.Since.IsZero() {
			where += " since " + s.Since.UTC().Format(time.RFC3339)
		}
		parts = append(parts, where)
	}
	d := "VM " + strconv.Quote(s.VM)
	if s.VM == "" {
		d = "another licence"
	}
	if len(parts) > 0 {
		d += " (" + strings.Join(parts, ", ") + ")"
	}
	return d
}

func channelName(c Channel) string {
	switch c {
	case ChannelRetail:
		return "retail"
	case ChannelOEM:
		return "OEM"
	case ChannelMAK:
		return "MAK"
	case ChannelKMS:
		return "KMS"
	}
	return strconv.Quote(string(c))
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "n"
	}
	return ""
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func quoteList(noun string, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return noun + " " + q[0]
	}
	return noun + "s " + strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
