package virttest

import (
	"net/netip"
	"reflect"
	"slices"

	"github.com/legacyvm/legacyvm/internal/virt"
)

func testNetworks(e *env) {
	hosts := []virt.DHCPHost{
		{MAC: e.mac(1), Name: "one", IP: hostN(e.subnet(1), 11)},
		{MAC: e.mac(2), Name: "two", IP: hostN(e.subnet(1), 12)},
	}
	spec := e.network(1, hosts...)

	check := func(n virt.Network, want virt.NetworkSpec, what string) {
		e.Helper()
		if n.Name != want.Name || n.UUID != want.UUID || n.Bridge != want.Bridge || n.MAC != want.MAC {
			e.Errorf("%s: identity %s/%s bridge %s mac %s, want %s/%s %s %s", what, n.Name, n.UUID, n.Bridge, n.MAC, want.Name, want.UUID, want.Bridge, want.MAC)
		}
		if !n.Active || !n.Autostart || n.Stale {
			e.Errorf("%s: active=%v autostart=%v stale=%v, want active, autostart, not stale", what, n.Active, n.Autostart, n.Stale)
		}
		if n.ForwardMode != "" || n.IPv6 || n.DNS != want.DNS || n.PortIsolated != want.PortIsolated {
			e.Errorf("%s: forward=%q ipv6=%v dns=%v isolated=%v, want no forward, no IPv6, dns=%v isolated=%v", what, n.ForwardMode, n.IPv6, n.DNS, n.PortIsolated, want.DNS, want.PortIsolated)
		}
		if n.Subnet != want.Subnet || n.HostAddress != want.HostAddress || n.DHCP != want.DHCP {
			e.Errorf("%s: subnet %s host %s dhcp %v, want %s %s %v", what, n.Subnet, n.HostAddress, n.DHCP, want.Subnet, want.HostAddress, want.DHCP)
		}
		if want.DHCP && (n.DHCPStart != want.DHCPStart || n.DHCPEnd != want.DHCPEnd || !reflect.DeepEqual(n.DHCPHosts, want.DHCPHosts)) {
			e.Errorf("%s: DHCP %s-%s hosts %+v, want %s-%s %+v", what, n.DHCPStart, n.DHCPEnd, n.DHCPHosts, want.DHCPStart, want.DHCPEnd, want.DHCPHosts)
		}
		if !sameMetadata(n.Metadata, want.Metadata) {
			e.Errorf("%s: metadata %+v, want %+v", what, n.Metadata, want.Metadata)
		}
		if n.XML == "" {
			e.Errorf("%s: Network.XML is empty", what)
		}
	}

	n, err := e.hv.GetNetwork(e.ctx, spec.Name)
	e.must(err, "get network %s", spec.Name)
	check(n, spec, "defined network")
	list, err := e.hv.ListNetworks(e.ctx)
	e.must(err, "list networks")
	if i := slices.IndexFunc(list, func(n virt.Network) bool { return n.Name == spec.Name }); i < 0 {
		e.Errorf("ListNetworks does not show %s", spec.Name)
	} else {
		check(list[i], spec, "listed network")
	}
	leases, err := e.hv.Leases(e.ctx, spec.Name)
	e.must(err, "leases of %s", spec.Name)
	if len(leases) != 0 {
		e.Errorf("leases on a network without guests: %+v", leases)
	}

	// Redefining with changes (no guest uses it) restarts it with them.
	changed := spec
	changed.DHCPHosts = hosts[:1]
	changed.DHCPEnd = hostN(spec.Subnet, 150)
	changed.PortIsolated = true
	changed.DNS = true
	changed.Metadata = &virt.Metadata{Profile: "virttest", Network: "net1", SpecHash: "n2"}
	n, err = e.hv.DefineNetwork(e.ctx, changed)
	e.must(err, "redefine network %s", spec.Name)
	check(n, changed, "redefined network")

	// A layer-2 network: no address, no DHCP.
	l2 := virt.NetworkSpec{Name: e.name("l2"), Bridge: e.name("brl2"), MAC: e.mac(0xe0),
		Metadata: &virt.Metadata{Profile: "virttest", Network: "l2", SpecHash: "l2"}}
	l2.UUID = id(l2.Name)
	n, err = e.hv.DefineNetwork(e.ctx, l2)
	e.cleanupNetwork(l2.Name)
	e.must(err, "define layer-2 network")
	check(n, l2, "layer-2 network")
	if n.Subnet.IsValid() || n.HostAddress.IsValid() {
		e.Errorf("layer-2 network has subnet %s host %s, want none", n.Subnet, n.HostAddress)
	}

	// The bridge name and the UUID belong to one network.
	dup := l2
	dup.Name, dup.UUID = e.name("dup"), id(e.name("dup"))
	_, err = e.hv.DefineNetwork(e.ctx, dup)
	e.cleanupNetwork(dup.Name)
	e.wantErr(err, virt.ErrExists, dup.Name, "define a network with a bridge name in use")
	dup = l2
	dup.Name, dup.Bridge = e.name("dup"), e.name("brdup")
	_, err = e.hv.DefineNetwork(e.ctx, dup)
	e.wantErr(err, virt.ErrExists, dup.Name, "define a network with a UUID in use")

	// A definition that cannot work.
	bad := l2
	bad.Name, bad.UUID, bad.Bridge = e.name("bad"), id(e.name("bad")), e.name("br-bad")
	bad.HostAddress = netip.MustParseAddr("192.0.2.1") // outside any subnet
	_, err = e.hv.DefineNetwork(e.ctx, bad)
	e.cleanupNetwork(bad.Name)
	e.wantErr(err, virt.ErrInvalid, bad.Name, "define a network whose host address has no subnet")

	e.must(e.hv.DeleteNetwork(e.ctx, l2.Name), "delete network %s", l2.Name)
	_, err = e.hv.GetNetwork(e.ctx, l2.Name)
	e.wantErr(err, virt.ErrNotFound, l2.Name, "get a deleted network")
	e.wantErr(e.hv.DeleteNetwork(e.ctx, l2.Name), virt.ErrNotFound, l2.Name, "delete a deleted network")
}

func testFilters(e *env) {
	net := e.network(1)
	rdp := virt.AllowSpec{Name: "rdp", Direction: "in", Peer: "host", Protocol: "tcp", PortStart: 3389, PortEnd: 3389}
	spec := e.filter(net, rdp)

	list, err := e.hv.ListFilters(e.ctx)
	e.must(err, "list filters")
	byName := map[string]virt.Filter{}
	for _, f := range list {
		byName[f.Name] = f
	}
	root, ok := byName[spec.Name]
	if !ok {
		e.Fatalf("ListFilters does not show %s", spec.Name)
	}
	guard, ok := byName[spec.Name+"-guard"]
	if !ok {
		e.Fatalf("ListFilters does not show %s-guard", spec.Name)
	}
	if root.UUID != spec.UUID || root.Chain != "root" || !slices.Equal(root.Refs, []string{guard.Name}) {
		e.Errorf("root filter = %+v, want chain root referencing only %s", root, guard.Name)
	}
	if guard.UUID == "" || guard.UUID == root.UUID || guard.Chain != "root" || len(guard.Refs) != 0 || guard.XML == "" {
		e.Errorf("guard filter = %+v, want its own UUID, chain root (merged into the root chain), rules", guard)
	}
	if _, ok := byName["clean-traffic"]; !ok {
		e.Error("ListFilters does not show libvirt's built-in clean-traffic")
	}

	diff, err := e.hv.FilterDiff(e.ctx, spec)
	e.must(err, "diff filter %s", spec.Name)
	if len(diff) != 0 {
		e.Errorf("FilterDiff right after DefineFilter = %q, want none", diff)
	}
	changed := spec
	changed.Allows = []virt.AllowSpec{{Name: "smb", Direction: "out", Peer: "host", Protocol: "tcp", PortStart: 445, PortEnd: 445}}
	diff, err = e.hv.FilterDiff(e.ctx, changed)
	e.must(err, "diff filter %s", spec.Name)
	if len(diff) == 0 {
		e.Error("FilterDiff against a spec with other allow rules found no difference")
	}

	// Updating in place keeps the UUIDs.
	e.must(e.hv.DefineFilter(e.ctx, changed), "update filter %s", spec.Name)
	if diff, _ := e.hv.FilterDiff(e.ctx, changed); len(diff) != 0 {
		e.Errorf("FilterDiff after the update = %q, want none", diff)
	}
	list, _ = e.hv.ListFilters(e.ctx)
	for _, f := range list {
		if f.Name == guard.Name && f.UUID != guard.UUID {
			e.Errorf("guard UUID changed on update: %s -> %s", guard.UUID, f.UUID)
		}
	}

	// A defined domain that references the filter keeps it (and the guard
	// it reaches) from being deleted.
	vol := e.overlay(e.name("f1"))
	dom := e.domainSpec(e.name("f1"), vol.Path, &net, spec.Name)
	e.domain(dom)
	for _, f := range spec.Names() {
		e.wantErr(e.hv.DeleteFilter(e.ctx, f), virt.ErrInUse, f, "delete a filter a defined domain references")
	}
	e.must(e.hv.UndefineDomain(e.ctx, dom.Name), "undefine %s", dom.Name)
	for _, f := range spec.Names() {
		e.must(e.hv.DeleteFilter(e.ctx, f), "delete filter %s", f)
	}
	diff, err = e.hv.FilterDiff(e.ctx, spec)
	e.must(err, "diff deleted filter")
	if len(diff) != 2 {
		e.Errorf("FilterDiff of deleted filters = %q, want both missing", diff)
	}
	e.wantErr(e.hv.DeleteFilter(e.ctx, spec.Name), virt.ErrNotFound, spec.Name, "delete a deleted filter")
	bad := spec
	bad.Name, bad.UUID = e.name("bad"), "not-a-uuid"
	e.wantErr(e.hv.DefineFilter(e.ctx, bad), virt.ErrInvalid, bad.Name, "define a filter with a malformed UUID")
}
