package profiles

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/legacyvm/legacyvm/internal/license"
)

// required reports a missing attribute on the block header.
func (l *loader) required(expr hcl.Expression, def hcl.Range, block, attr, example string) bool {
	if present(expr) {
		return true
	}
	l.errorf(def, "Missing required argument", "The %s block needs %s, for example %s.", block, attr, example)
	return false
}

func (l *loader) decodeHost(b *hostBlock) {
	if !l.declare("host", b.Name, b.NameRange, b.DefRange) {
		return
	}
	l.checkName("host", b.Name, b.NameRange, MaxNameLen, "")
	h := &Host{Name: b.Name, Accelerator: AccelAuto, StoragePool: "default", DeclRange: b.DefRange}
	l.hosts[b.Name] = h
	ctx := l.baseCtx
	if s, ok := l.str(b.URI, ctx, scopeBlock, "uri"); ok {
		if u, err := url.Parse(s); err != nil || u.Scheme == "" {
			l.errorf(b.URI.Range(), "Invalid libvirt URI", "uri must be a libvirt connection URI such as \"qemu:///system\" or \"qemu+ssh://admin@lab1/system\", not %q.", s)
		} else {
			h.URI = s
		}
	}
	if s, ok := l.enum(b.Accelerator, ctx, scopeBlock, "accelerator", []string{"auto", "kvm", "tcg"}); ok {
		h.Accelerator = Accelerator(s)
	}
	if s, ok := l.str(b.StoragePool, ctx, scopeBlock, "storage_pool"); ok {
		if s == "" || strings.ContainsAny(s, "/ \t\n") {
			l.errorf(b.StoragePool.Range(), "Invalid storage pool name", "storage_pool must name a libvirt storage pool (see virsh pool-list), like \"default\".")
		} else {
			h.StoragePool = s
		}
	}
}

func editionNames() []string {
	out := make([]string, len(license.Editions))
	for i, e := range license.Editions {
		out[i] = string(e)
	}
	return out
}

func channelNames() []string {
	out := make([]string, len(license.Channels))
	for i, c := range license.Channels {
		out[i] = string(c)
	}
	return out
}

func (l *loader) decodeLicense(b *licenseBlock) {
	if !l.declare("license", b.Name, b.NameRange, b.DefRange) {
		return
	}
	l.checkName("license", b.Name, b.NameRange, MaxNameLen, "")
	lic := &License{Name: b.Name, Seats: 1, DeclRange: b.DefRange, ProductKeyRange: b.ProductKey.Range()}
	l.licenses[b.Name] = lic
	ctx := l.baseCtx

	if l.required(b.ProductKey, b.DefRange, "license", "product_key", `product_key = env("ACCT_WIN7_KEY")`) {
		lic.ProductKey = l.secret(b.ProductKey, ctx, scopeBlock, "product_key", "Product key", 5)
		if lic.ProductKey.Kind == license.SourceLiteral {
			if _, err := license.ParseKey(lic.ProductKey.Literal); err != nil {
				l.errorf(b.ProductKey.Range(), "Invalid product key", "The product key %s is not a Windows 7 product key: %s. A Windows 7 key is five groups of five characters from %s, like XXXXX-XXXXX-XXXXX-XXXXX-XXXXX.",
					redactRaw(lic.ProductKey.Literal), strings.TrimPrefix(err.Error(), license.ErrKeyFormat.Error()+": "), license.Alphabet)
			}
		}
	}
	editionSet, channelSet := false, false
	if l.required(b.Edition, b.DefRange, "license", "edition", `edition = "professional"`) {
		if s, ok := l.enum(b.Edition, ctx, scopeBlock, "edition", editionNames()); ok {
			lic.Edition, editionSet = license.Edition(s), true
		}
	}
	if l.required(b.Channel, b.DefRange, "license", "channel", `channel = "retail"`) {
		if s, ok := l.enum(b.Channel, ctx, scopeBlock, "channel", channelNames()); ok {
			lic.Channel, channelSet = license.Channel(s), true
		}
	}
	seats, seatsSet := l.integer(b.Seats, ctx, scopeBlock, "seats", "seats = 1")
	if seatsSet {
		if seats < 1 {
			l.errorf(b.Seats.Range(), "Invalid seats", "seats is how many VMs may use this licence at the same time; it must be at least 1.")
			seatsSet = false
		} else {
			lic.Seats = seats
		}
	}
	if channelSet && !seatsSet && lic.Channel == license.ChannelKMS {
		lic.Seats = UnlimitedSeats
	}
	if channelSet && seatsSet && seats > 1 && (lic.Channel == license.ChannelRetail || lic.Channel == license.ChannelOEM) {
		l.errorf(b.Seats.Range(), "Too many seats for channel", "A %s licence may be used by one VM at a time, so seats must be 1. For several VMs, list one licence per key in the vm's licenses, or use volume licensing (channel = \"mak\" with the number of activations your agreement allows).", lic.Channel)
	}
	kmsHost, kmsSet := l.str(b.KMSHost, ctx, scopeBlock, "kms_host")
	if kmsSet {
		if err := checkHostPort(kmsHost); err != nil {
			l.errorf(b.KMSHost.Range(), "Invalid kms_host", "kms_host must be a host name or address with an optional port, like \"kms.example.org\" or \"10.0.0.5:1688\": %s.", err)
		} else {
			lic.KMSHost = kmsHost
		}
	}
	if !channelSet {
		return
	}
	switch lic.Channel {
	case license.ChannelKMS:
		if !kmsSet {
			l.errorf(b.Channel.Range(), "KMS licence without kms_host", "A KMS client activates against your organisation's KMS host, so channel = \"kms\" needs kms_host, for example kms_host = \"kms.example.org\".")
		}
	default:
		if kmsSet {
			l.errorf(b.KMSHost.Range(), "kms_host without KMS channel", "kms_host only applies to channel = \"kms\"; this licence's channel is %q. Remove kms_host or change the channel.", lic.Channel)
		}
	}
	if channelSet && lic.Channel == license.ChannelOEM {
		l.warnf(b.Channel.Range(), "OEM licence in a VM", "OEM licences are tied to the computer they came with and are generally not valid in a virtual machine. Use it only if your licence terms allow it; legacyvm never emulates OEM firmware.")
	}
	if !editionSet {
		return
	}
	volume := lic.Channel == license.ChannelMAK || lic.Channel == license.ChannelKMS
	proOrEnt := lic.Edition == license.EditionProfessional || lic.Edition == license.EditionEnterprise
	switch {
	case volume && !proOrEnt:
		l.errorf(b.Edition.Range(), "Edition not volume licensed", "Windows 7 %s has no volume licensing; channel %q is only for professional and enterprise. Use channel = \"retail\" for this edition.", lic.Edition, lic.Channel)
	case !volume && lic.Edition == license.EditionEnterprise:
		l.errorf(b.Edition.Range(), "Enterprise needs volume licensing", "Windows 7 Enterprise is only sold through volume licensing: use channel = \"mak\" or channel = \"kms\".")
	}
}

// UnlimitedSeats is License.Seats for a KMS licence that does not set
// seats: KMS clients share one public key by design.
const UnlimitedSeats = 0

// redactRaw shows only the last five letters or digits of a value that
// failed to parse as a key.
func redactRaw(s string) string {
	var alnum []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			alnum = append(alnum, c)
		}
	}
	if len(alnum) < 10 {
		return "(redacted)"
	}
	return license.Redact(strings.ToUpper(string(alnum[len(alnum)-5:])))
}

func checkHostPort(s string) error {
	host, port := s, ""
	if h, p, err := splitHostPortOpt(s); err == nil {
		host, port = h, p
	} else {
		return err
	}
	if host == "" || strings.ContainsAny(host, " /\t") {
		return fmt.Errorf("%q is not a host name", host)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not between 1 and 65535", port)
		}
	}
	return nil
}

func splitHostPortOpt(s string) (string, string, error) {
	if i := strings.LastIndex(s, ":"); i >= 0 && !strings.Contains(s[i+1:], "]") && strings.Count(s, ":") == 1 {
		return s[:i], s[i+1:], nil
	}
	return s, "", nil
}

func (l *loader) decodeNetwork(b *networkBlock) {
	if !l.declare("network", b.Name, b.NameRange, b.DefRange) {
		return
	}
	l.checkName("network", b.Name, b.NameRange, MaxNetworkNameLen, fmt.Sprintf(" and the bridge is named %s<network>, and Linux interface names have at most 15 characters, so a network name has at most %d", BridgePrefix, MaxNetworkNameLen))
	n := &Network{Name: b.Name, GuestToGuest: true, DeclRange: b.DefRange}
	l.networks[b.Name] = n
	l.netDecls = append(l.netDecls, netDecl{n: n, subnet: b.Subnet, name: b.NameRange})
	ctx := l.baseCtx
	if s, ok := l.str(b.Subnet, ctx, scopeBlock, "subnet"); ok {
		if p, ok := l.checkSubnet(s, b.Subnet.Range()); ok {
			n.Subnet = p
		}
	}
	subnetWritten := present(b.Subnet)
	if v, ok := l.boolean(b.DHCP, ctx, scopeBlock, "dhcp"); ok {
		n.DHCP = v
		if v && !subnetWritten {
			l.errorf(b.DHCP.Range(), "DHCP without subnet", "dhcp = true hands out addresses from the network's subnet, but this network has none. Add subnet = \"10.77.0.0/24\" (any private /16 to /29 that no other network uses), or remove dhcp.")
		}
	}
	if v, ok := l.boolean(b.DNS, ctx, scopeBlock, "dns"); ok {
		n.DNS = v
		if v && !subnetWritten {
			l.errorf(b.DNS.Range(), "DNS without subnet", "dns = true makes the host answer DNS on the network's first address, but this network has no subnet. Add subnet = \"10.77.0.0/24\" or remove dns.")
		}
	}
	if v, ok := l.boolean(b.GuestToGuest, ctx, scopeBlock, "guest_to_guest"); ok {
		n.GuestToGuest = v
	}
	seen := map[string]hcl.Range{}
	needHost := n.DHCP || n.DNS
	for _, ab := range b.Allows {
		if first, dup := seen[ab.Name]; dup {
			l.errorf(ab.NameRange, "Duplicate allow block", "An allow rule named %q was already declared in this network at %s. Rename one of them.", ab.Name, at(first))
			continue
		}
		seen[ab.Name] = ab.DefRange
		r := l.decodeAllow(ab, subnetWritten)
		if r == nil {
			continue
		}
		n.Allows = append(n.Allows, r)
		if r.Peer == PeerHost {
			needHost = true
		}
	}
	eseen := map[string]hcl.Range{}
	for _, eb := range b.Egresses {
		if first, dup := eseen[eb.Name]; dup {
			l.errorf(eb.NameRange, "Duplicate door", "An egress named %q was already declared in this network at %s. Rename one of them.", eb.Name, at(first))
			continue
		}
		eseen[eb.Name] = eb.DefRange
		e := l.decodeEgress(eb, ctx, scopeBlock)
		if e == nil {
			continue
		}
		if !subnetWritten {
			l.errorf(eb.DefRange, "Egress without subnet", "Guests reach an egress at the network's host address, which comes from its subnet. Add subnet = \"10.77.0.0/24\" to the network.")
			continue
		}
		n.Egresses = append(n.Egresses, e)
		needHost = true
	}
	if needHost && n.Subnet.IsValid() {
		n.HostAddress = n.Subnet.Addr().Next()
	}
}

type netDecl struct {
	n      *Network
	subnet hcl.Expression
	name   hcl.Range
}

// checkSubnet parses and checks a network's subnet.
func (l *loader) checkSubnet(s string, rng hcl.Range) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil && a.Is4() {
			l.errorf(rng, "Invalid subnet", "subnet must be an IPv4 network in CIDR notation with a prefix length, like \"%s/24\".", s)
		} else {
			l.errorf(rng, "Invalid subnet", "subnet must be an IPv4 network in CIDR notation, like \"10.77.0.0/24\"; %q is not.", s)
		}
		return netip.Prefix{}, false
	}
	if !p.Addr().Is4() {
		l.errorf(rng, "IPv6 subnet", "legacyvm networks are IPv4 only (IPv6 is switched off on them); use a private IPv4 subnet like \"10.77.0.0/24\".")
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		l.errorf(rng, "Subnet has host bits set", "%s has bits set after the first %d; the network address is %s. Write subnet = %q.", s, p.Bits(), p.Masked().Addr(), p.Masked().String())
		return netip.Prefix{}, false
	}
	for _, r := range reservedSubnets {
		if p.Overlaps(r.prefix) {
			l.errorf(rng, "Reserved subnet", "%s overlaps %s (%s), which is not usable on a network: %s. Use a private range like \"10.77.0.0/24\".", s, r.prefix, r.what, r.why)
			return netip.Prefix{}, false
		}
	}
	if p.Bits() < 16 || p.Bits() > 29 {
		l.errorf(rng, "Subnet size out of range", "A lab network's subnet must be between /16 (65534 addresses) and /29 (6 addresses); %s is not. Use for example \"%s/24\".", s, p.Addr())
		return netip.Prefix{}, false
	}
	if !p.Addr().IsPrivate() {
		l.warnf(rng, "Public subnet", "%s is not a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16). Guests cannot reach it anyway, but addresses that belong to someone else confuse anyone reading logs; prefer a private range.", s)
	}
	return p, true
}

// reservedSubnets are IPv4 ranges a lab network must not use: the kernel,
// the guard and the guests treat their addresses specially, so rules
// written for them do not mean what they seem to.
var reservedSubnets = []struct {
	prefix    netip.Prefix
	what, why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\"", "its addresses mean \"any\" or \"this host\" to the kernel and to DHCP"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", "its addresses are the host's own loopback, so the host would answer for every guest"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast", "its addresses reach groups of hosts, not one guest"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved and limited broadcast", "the kernel does not route it and 255.255.255.255 is the limited broadcast"},
}

// GuardSuffix ends the name of a network's guard nwfilter: network "x" has
// the root filter lvm-x and the guard lvm-x-guard.
const GuardSuffix = "-guard"

// checkGuardNames refuses network names that end in "-guard": the root
// nwfilter of network "x" is lvm-x and its guard lvm-x-guard, so a network
// "x-guard" (in this profile or another on the same host) would own the
// other's guard filter and neither would converge.
func (l *loader) checkGuardNames() {
	for _, d := range l.netDecls {
		base, ok := strings.CutSuffix(d.n.Name, GuardSuffix)
		if !ok {
			continue
		}
		detail := fmt.Sprintf("Network %q would get the nwfilter %s%s, which is the name of network %q's guard filter (%s%s%s): one of the two networks would overwrite the other's rules on every apply.", d.n.Name, BridgePrefix, d.n.Name, base, BridgePrefix, base, GuardSuffix)
		if other, ok := l.networks[base]; ok && base != "" {
			detail += fmt.Sprintf(" Network %q is declared at %s.", base, at(other.DeclRange))
		} else {
			detail += fmt.Sprintf(" Filter names are shared by every profile on a host, so the name is refused even without a network %q here.", base)
		}
		detail += " Rename the network so that it does not end in \"" + GuardSuffix + "\"."
		l.errorf(d.name, "Network name collides with a guard filter", "%s", detail)
	}
}

// checkSubnetOverlaps reports networks whose subnets overlap an earlier
// network's.
func (l *loader) checkSubnetOverlaps() {
	for i, d := range l.netDecls {
		if !d.n.Subnet.IsValid() {
			continue
		}
		for _, e := range l.netDecls[:i] {
			if e.n.Subnet.IsValid() && e.n.Subnet.Overlaps(d.n.Subnet) {
				l.errorf(d.subnet.Range(), "Overlapping subnets", "Network %q uses %s, which overlaps %s of network %q declared at %s. Each network needs its own subnet: pick one that does not overlap.", d.n.Name, d.n.Subnet, e.n.Subnet, e.n.Name, at(e.n.DeclRange))
				break
			}
		}
	}
}

func (l *loader) decodeAllow(b *allowBlock, hasSubnet bool) *AllowRule {
	l.checkName("allow rule", b.Name, b.NameRange, MaxNameLen, "")
	ctx := l.baseCtx
	r := &AllowRule{Name: b.Name, DeclRange: b.DefRange}
	ok := true
	if l.required(b.Direction, b.DefRange, "allow", "direction", `direction = "in"`) {
		s, set := l.enum(b.Direction, ctx, scopeBlock, "direction", []string{"in", "out"})
		r.Direction = Direction(s)
		ok = ok && set
	} else {
		ok = false
	}
	if l.required(b.Protocol, b.DefRange, "allow", "protocol", `protocol = "tcp"`) {
		s, set := l.enum(b.Protocol, ctx, scopeBlock, "protocol", []string{"tcp", "udp", "icmp", "any"})
		r.Protocol = Protocol(s)
		ok = ok && set
	} else {
		ok = false
	}
	// Peer: from for "in", to for "out".
	from, fromSet := l.str(b.From, ctx, scopeBlock, "from")
	to, toSet := l.str(b.To, ctx, scopeBlock, "to")
	switch {
	case fromSet && toSet:
		l.errorf(b.To.Range(), "Both from and to", "An allow rule has one peer: from = \"host\" for direction = \"in\" (traffic to the guest), to = \"host\" for direction = \"out\". Remove one of them.")
		ok = false
	case !fromSet && !toSet:
		if present(b.From) || present(b.To) {
			ok = false
			break
		}
		l.errorf(b.DefRange, "Missing required argument", "The allow block needs a peer: from = \"host\" with direction = \"in\", or to = \"host\" with direction = \"out\".")
		ok = false
	default:
		attr, val, expr := "from", from, b.From
		if toSet {
			attr, val, expr = "to", to, b.To
		}
		if val != string(PeerHost) {
			l.errorf(expr.Range(), fmt.Sprintf("Invalid %s", attr), "%s must be \"host\" (the virtualisation host); other peers are not supported, and guest-to-guest traffic is set with the network's guest_to_guest.", attr)
			ok = false
			break
		}
		r.Peer = PeerHost
		if r.Direction == DirectionIn && attr == "to" {
			l.errorf(expr.Range(), "Peer does not match direction", "direction = \"in\" is traffic to the guest, so its peer is written from = \"host\", not to.")
			ok = false
		}
		if r.Direction == DirectionOut && attr == "from" {
			l.errorf(expr.Range(), "Peer does not match direction", "direction = \"out\" is traffic from the guest, so its peer is written to = \"host\", not from.")
			ok = false
		}
		if !hasSubnet {
			l.errorf(expr.Range(), "Host peer without subnet", "A rule with the host needs the host to have an address on the network, which comes from the network's subnet. Add subnet = \"10.77.0.0/24\" to the network.")
			ok = false
		}
	}
	// Ports.
	portSet, portsSet := present(b.Port), present(b.Ports)
	if portSet && portsSet {
		l.errorf(b.Ports.Range(), "Both port and ports", "Write either port = 3389 for one port or ports = \"1000-2000\" for a range, not both.")
		ok = false
	} else if portSet || portsSet {
		expr := b.Port
		if portsSet {
			expr = b.Ports
		}
		if r.Protocol == ProtoICMP || r.Protocol == ProtoAny {
			l.errorf(expr.Range(), "Port with protocol "+string(r.Protocol), "Ports only exist for tcp and udp; protocol = %q matches all of its traffic. Remove the port or set protocol = \"tcp\" or \"udp\".", r.Protocol)
			ok = false
		} else if portSet && l.isPortAny(b.Port, ctx) {
			// port = "any": every port, written on purpose (r.Ports stays
			// the zero PortRange).
		} else if portSet {
			if p, set := l.integer(b.Port, ctx, scopeBlock, "port", "port = 3389 (or port = \"any\" for every port)"); set {
				if p < 1 || p > 65535 {
					l.errorf(b.Port.Range(), "Invalid port", "port must be between 1 and 65535, not %d.", p)
					ok = false
				} else {
					r.Ports = PortRange{Start: uint16(p), End: uint16(p)}
				}
			} else {
				ok = false
			}
		} else if s, set := l.str(b.Ports, ctx, scopeBlock, "ports"); set {
			pr, err := ParsePortRange(s)
			if err != nil {
				l.errorf(b.Ports.Range(), "Invalid port range", "ports: %s.", err)
				ok = false
			} else {
				r.Ports = pr
			}
		} else {
			ok = false
		}
	}
	if !portSet && !portsSet && ok && (r.Protocol == ProtoTCP || r.Protocol == ProtoUDP) {
		l.errorf(b.DefRange, "Missing port", "A %s allow rule without a port opens every %s port. Write the port it is for, like port = 3389, or a range, like ports = \"1000-2000\"; if every port is really meant, write port = %q.", r.Protocol, r.Protocol, PortAny)
		ok = false
	}
	if !ok {
		return nil
	}
	return r
}

// PortAny is the value of an allow rule's port that opens every port of
// its protocol; a tcp or udp rule must name a port, a range or this.
const PortAny = "any"

// isPortAny reports whether expr is the string PortAny (port = "any").
func (l *loader) isPortAny(expr hcl.Expression, ctx *hcl.EvalContext) bool {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() || v.Type() != cty.String {
		return false
	}
	return v.AsString() == PortAny
}

// ParsePortRange parses "3389" or "1000-2000" (inclusive, 1..65535).
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("%q is not a port or range of ports; write it like \"1000-2000\"", s)
	}
	if a < 1 || a > 65535 || b < 1 || b > 65535 {
		return PortRange{}, fmt.Errorf("ports must be between 1 and 65535 (%q)", s)
	}
	if a > b {
		return PortRange{}, fmt.Errorf("the range %q starts after it ends; write \"%d-%d\"", s, b, a)
	}
	return PortRange{Start: uint16(a), End: uint16(b)}, nil
}

func (l *loader) decodeSnapshotPolicy(b *snapshotPolicyBlock) {
	if !l.declare("snapshot_policy", b.Name, b.NameRange, b.DefRange) {
		return
	}
	l.checkName("snapshot_policy", b.Name, b.NameRange, MaxNameLen, "")
	sp := &SnapshotPolicy{Name: b.Name, Baseline: "clean", Keep: 7, OnShutdown: OnShutdownKeep, DeclRange: b.DefRange}
	l.policies[b.Name] = sp
	ctx := l.baseCtx
	if s, ok := l.str(b.Baseline, ctx, scopeBlock, "baseline"); ok {
		switch err := CheckName(s, MaxNameLen); {
		case err != nil:
			l.errorf(b.Baseline.Range(), "Invalid baseline name", "The baseline becomes a libvirt snapshot name: %s. Use lower-case letters, digits and hyphens, like \"clean\".", err)
		case strings.HasPrefix(s, "auto-"):
			l.errorf(b.Baseline.Range(), "Reserved snapshot name", "Names starting with \"auto-\" are used for scheduled snapshots, which retention deletes; the baseline needs another name, like \"clean\".")
		default:
			sp.Baseline = s
		}
	}
	if s, ok := l.str(b.Schedule, ctx, scopeBlock, "schedule"); ok {
		if _, err := ParseSchedule(s); err != nil {
			l.errorf(b.Schedule.Range(), "Invalid schedule", "schedule %q: %s.", s, err)
		} else {
			sp.Schedule = s
		}
	}
	keepBad := false
	if n, ok := l.integer(b.Keep, ctx, scopeBlock, "keep", "keep = 7"); ok {
		if keepBad = n < 1; keepBad {
			l.errorf(b.Keep.Range(), "Invalid keep", "keep is how many scheduled snapshots are kept (the baseline is always kept on top); it must be at least 1.")
		} else {
			sp.Keep = n
		}
	}
	if s, ok := l.str(b.MaxAge, ctx, scopeBlock, "max_age"); ok {
		d, err := ParseDuration(s)
		switch {
		case err != nil:
			l.errorf(b.MaxAge.Range(), "Invalid duration", "max_age: %s.", err)
		case d == 0:
			l.errorf(b.MaxAge.Range(), "Invalid duration", "max_age must be longer than zero; leave it out for no age limit.")
		default:
			sp.MaxAge = d
		}
	}
	if v, ok := l.boolean(b.Memory, ctx, scopeBlock, "memory"); ok {
		sp.Memory = v
	}
	if s, ok := l.str(b.Settle, ctx, scopeBlock, "settle"); ok {
		d, err := ParseDuration(s)
		switch {
		case err != nil:
			l.errorf(b.Settle.Range(), "Invalid duration", "settle: %s.", err)
		case d > 2*time.Hour:
			l.errorf(b.Settle.Range(), "Invalid duration", "settle is how long the VM runs before its memory baseline is taken; %s is longer than the 2h allowed.", s)
		default:
			sp.Settle = d
			if !sp.Memory {
				l.warnf(b.Settle.Range(), "Settle without memory", "settle only delays a baseline that includes memory; with memory = false the baseline is taken with the VM shut off and settle has no effect.")
			}
		}
	}
	if s, ok := l.enum(b.OnShutdown, ctx, scopeBlock, "on_shutdown", []string{"keep", "revert"}); ok {
		sp.OnShutdown = ShutdownAction(s)
	}
	if !present(b.Schedule) {
		for _, e := range []struct {
			expr hcl.Expression
			name string
		}{{b.Keep, "keep"}, {b.MaxAge, "max_age"}} {
			if present(e.expr) && !(e.name == "keep" && keepBad) {
				l.warnf(e.expr.Range(), "Retention without schedule", "%s applies to scheduled snapshots, but this policy has no schedule, so it has no effect. Add schedule = \"@daily\" (or a cron expression) or remove %s.", e.name, e.name)
			}
		}
	}
}
