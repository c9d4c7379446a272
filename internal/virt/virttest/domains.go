package virttest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

func testHostInfo(e *env) {
	info, err := e.hv.HostInfo(e.ctx)
	e.must(err, "host info")
	if info.LibVersion < 9000000 || info.DaemonVersion < 9000000 {
		e.Errorf("versions lib=%d daemon=%d, want libvirt >= 9.0.0", info.LibVersion, info.DaemonVersion)
	}
	if info.Hostname == "" || info.URI == "" || info.Emulator == "" {
		e.Errorf("host info incomplete: %+v", info)
	}
	if pc := info.Machines["pc"]; !strings.HasPrefix(pc, "pc-i440fx-") {
		e.Errorf(`Machines["pc"] = %q, want a pinned pc-i440fx-* type`, pc)
	}
	if q35 := info.Machines["q35"]; !strings.HasPrefix(q35, "pc-q35-") {
		e.Errorf(`Machines["q35"] = %q, want a pinned pc-q35-* type`, q35)
	}
	if e.h.Accel == virt.AccelKVM && !info.KVM {
		e.Error("the harness runs KVM domains but HostInfo says KVM is not offered")
	}
}

// testErrors checks the sentinel every method returns for objects that do
// not exist.
func testErrors(e *env) {
	e.pool()
	missing := e.name("missing")
	checks := []struct {
		what string
		call func() error
		want error
	}{
		{"GetDomain", func() error { _, err := e.hv.GetDomain(e.ctx, missing); return err }, virt.ErrNotFound},
		{"UndefineDomain", func() error { return e.hv.UndefineDomain(e.ctx, missing) }, virt.ErrNotFound},
		{"StartDomain", func() error { return e.hv.StartDomain(e.ctx, missing) }, virt.ErrNotFound},
		{"ShutdownDomain", func() error { return e.hv.ShutdownDomain(e.ctx, missing) }, virt.ErrNotFound},
		{"DestroyDomain", func() error { return e.hv.DestroyDomain(e.ctx, missing) }, virt.ErrNotFound},
		{"SetAutostart", func() error { return e.hv.SetAutostart(e.ctx, missing, true) }, virt.ErrNotFound},
		{"ChangeMedia", func() error { return e.hv.ChangeMedia(e.ctx, missing, "sdb", "") }, virt.ErrNotFound},
		{"GetNetwork", func() error { _, err := e.hv.GetNetwork(e.ctx, missing); return err }, virt.ErrNotFound},
		{"DeleteNetwork", func() error { return e.hv.DeleteNetwork(e.ctx, missing) }, virt.ErrNotFound},
		{"Leases", func() error { _, err := e.hv.Leases(e.ctx, missing); return err }, virt.ErrNotFound},
		{"DeleteFilter", func() error { return e.hv.DeleteFilter(e.ctx, missing) }, virt.ErrNotFound},
		{"GetPool", func() error { _, err := e.hv.GetPool(e.ctx, missing); return err }, virt.ErrNotFound},
		{"ListVolumes", func() error { _, err := e.hv.ListVolumes(e.ctx, missing); return err }, virt.ErrNotFound},
		{"VolumeByPath", func() error {
			_, err := e.hv.VolumeByPath(e.ctx, e.h.PoolDir+"/"+missing+".qcow2")
			return err
		}, virt.ErrNotFound},
		{"DeleteVolume", func() error { return e.hv.DeleteVolume(e.ctx, e.h.Pool, missing) }, virt.ErrNotFound},
		{"ListSnapshots", func() error { _, err := e.hv.ListSnapshots(e.ctx, missing); return err }, virt.ErrNotFound},
		{"CreateSnapshot", func() error {
			_, err := e.hv.CreateSnapshot(e.ctx, missing, virt.SnapshotSpec{Name: "s"})
			return err
		}, virt.ErrNotFound},
		{"RevertSnapshot", func() error { return e.hv.RevertSnapshot(e.ctx, missing, "s") }, virt.ErrNotFound},
		{"DeleteSnapshot", func() error { return e.hv.DeleteSnapshot(e.ctx, missing, "s") }, virt.ErrNotFound},
	}
	for _, c := range checks {
		e.wantErr(c.call(), c.want, missing, c.what+" of a missing object")
	}

	// A cancelled context stops a call before it reaches the host.
	ctx, cancel := e.cleanupCtx()
	cancel()
	if _, err := e.hv.ListDomains(ctx); !errors.Is(err, ctx.Err()) {
		e.Errorf("ListDomains with a cancelled context: %v, want %v", err, ctx.Err())
	}
}

func sameMetadata(a, b *virt.Metadata) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	if !x.Created.Equal(y.Created) {
		return false
	}
	x.Created, y.Created = time.Time{}, time.Time{}
	if (x.StopRequested == nil) != (y.StopRequested == nil) ||
		(x.StopRequested != nil && !x.StopRequested.Equal(*y.StopRequested)) {
		return false
	}
	x.StopRequested, y.StopRequested = nil, nil
	return reflect.DeepEqual(x, y)
}

func testDomainDefine(e *env) {
	vol := e.overlay(e.name("d1"))
	net := e.network(1)
	name := e.name("d1")
	spec := e.domainSpec(name, vol.Path, &net, "")
	spec.MemoryBytes = 192 << 20

	d := e.domain(spec)
	if d.Name != name || d.UUID != spec.UUID {
		e.Errorf("defined %s/%s, want %s/%s", d.Name, d.UUID, name, spec.UUID)
	}
	if d.State != virt.StateShutoff || !d.Persistent || d.Autostart {
		e.Errorf("new domain: state=%s persistent=%v autostart=%v, want shutoff, persistent, no autostart", d.State, d.Persistent, d.Autostart)
	}
	if !strings.HasPrefix(d.Machine, "pc-i440fx-") {
		e.Errorf("machine %q: want the pinned pc-i440fx-* type libvirt expands pc to", d.Machine)
	}
	if d.Accel != spec.Accel || d.VCPUs != 1 || d.MemoryBytes != spec.MemoryBytes {
		e.Errorf("defined accel=%s vcpus=%d memory=%d, want %s 1 %d", d.Accel, d.VCPUs, d.MemoryBytes, spec.Accel, spec.MemoryBytes)
	}
	if !sameMetadata(d.Metadata, spec.Metadata) {
		e.Errorf("metadata round trip:\n got %+v\nwant %+v", d.Metadata, spec.Metadata)
	}
	if len(d.Disks) != 2 || d.Disks[0].Path != vol.Path || d.Disks[0].Target != "sda" || d.Disks[1].Device != virt.DeviceCDROM || d.Disks[1].Path != "" {
		e.Errorf("disks = %+v", d.Disks)
	}
	if len(d.Interfaces) != 1 || d.Interfaces[0].Network != net.Name || d.Interfaces[0].MAC != spec.Interfaces[0].MAC {
		e.Errorf("interfaces = %+v", d.Interfaces)
	}
	if d.XML == "" || !strings.Contains(d.XML, name) {
		e.Error("Domain.XML does not hold the definition")
	}

	got, err := e.hv.GetDomain(e.ctx, name)
	e.must(err, "get %s", name)
	if got.UUID != d.UUID || got.Machine != d.Machine || !sameMetadata(got.Metadata, spec.Metadata) || got.State != virt.StateShutoff {
		e.Errorf("GetDomain differs from what DefineDomain returned: %+v", got)
	}
	list, err := e.hv.ListDomains(e.ctx)
	e.must(err, "list domains")
	if l, ok := findDomain(list, name); !ok || l.UUID != d.UUID || !sameMetadata(l.Metadata, spec.Metadata) {
		e.Errorf("ListDomains: %s missing or different (%+v)", name, l)
	}

	// Defining again updates in place and keeps the pinned machine type,
	// whether the spec says "pc" or pins another i440fx version.
	for _, machine := range []string{"pc", "pc-i440fx-7.1"} {
		spec2 := spec
		spec2.Machine = machine
		spec2.MemoryBytes = 256 << 20
		spec2.Metadata = &virt.Metadata{Profile: "virttest", VM: name, SpecHash: "d2-" + machine}
		d2, err := e.hv.DefineDomain(e.ctx, spec2)
		e.must(err, "define %s again (machine %s)", name, machine)
		if d2.UUID != d.UUID || d2.Machine != d.Machine {
			e.Errorf("redefine with machine %s: uuid %s machine %s, want %s %s (pinned type kept)", machine, d2.UUID, d2.Machine, d.UUID, d.Machine)
		}
		if d2.MemoryBytes != 256<<20 || !sameMetadata(d2.Metadata, spec2.Metadata) {
			e.Errorf("redefine: memory %d metadata %+v, want the new values", d2.MemoryBytes, d2.Metadata)
		}
	}

	// Names and UUIDs are unique.
	other := spec
	other.Name = e.name("d2")
	_, err = e.hv.DefineDomain(e.ctx, other)
	e.cleanupDomain(other.Name)
	e.wantErr(err, virt.ErrExists, other.Name, "define another domain with the same UUID")
	clash := spec
	clash.UUID = id("another uuid")
	_, err = e.hv.DefineDomain(e.ctx, clash)
	e.wantErr(err, virt.ErrExists, name, "define an existing name with another UUID")

	// A definition the renderer or libvirt rejects.
	bad := spec
	bad.Name = e.name("bad")
	bad.VCPUs = 0
	_, err = e.hv.DefineDomain(e.ctx, bad)
	e.cleanupDomain(bad.Name)
	e.wantErr(err, virt.ErrInvalid, bad.Name, "define with 0 vCPUs")

	// SetMetadata changes only legacyvm's metadata.
	before, err := e.hv.GetDomain(e.ctx, name)
	e.must(err, "get %s", name)
	stop := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	md := *before.Metadata
	md.StopRequested = &stop
	md.Provisioned = true
	e.must(e.hv.SetMetadata(e.ctx, name, &md), "set metadata of %s", name)
	after, err := e.hv.GetDomain(e.ctx, name)
	e.must(err, "get %s", name)
	if !sameMetadata(after.Metadata, &md) || after.MemoryBytes != before.MemoryBytes || after.Machine != before.Machine {
		e.Errorf("SetMetadata: metadata %+v (want %+v), memory %d machine %s unchanged?", after.Metadata, &md, after.MemoryBytes, after.Machine)
	}
	e.wantErr(e.hv.SetMetadata(e.ctx, e.name("missing"), &md), virt.ErrNotFound, e.name("missing"), "set metadata of a missing domain")

	e.must(e.hv.SetAutostart(e.ctx, name, true), "autostart %s", name)
	if got, _ := e.hv.GetDomain(e.ctx, name); !got.Autostart {
		e.Error("SetAutostart(true) not reflected")
	}
	e.must(e.hv.SetAutostart(e.ctx, name, false), "autostart off %s", name)

	e.must(e.hv.UndefineDomain(e.ctx, name), "undefine %s", name)
	_, err = e.hv.GetDomain(e.ctx, name)
	e.wantErr(err, virt.ErrNotFound, name, "get an undefined domain")
	list, err = e.hv.ListDomains(e.ctx)
	e.must(err, "list domains")
	if _, ok := findDomain(list, name); ok {
		e.Errorf("ListDomains still shows %s after undefine", name)
	}
	if _, err := e.hv.VolumeByPath(e.ctx, vol.Path); err != nil {
		e.Errorf("undefine touched the volume: %v", err)
	}
}

// testDomainLifecycle boots a guest on a DHCP network behind the traffic
// filter and checks states, state errors, leases, filter bindings, in-use
// refusals, network staleness and a clean ACPI shutdown.
func testDomainLifecycle(e *env) {
	name := e.name("g1")
	vol := e.overlay(name)
	mac := e.mac(1)
	net := e.network(1, virt.DHCPHost{MAC: mac, Name: name, IP: hostN(e.subnet(1), 11)})
	flt := e.filter(net)
	e.domain(e.domainSpec(name, vol.Path, &net, flt.Name))
	events := e.events()

	e.wantErr(e.hv.ShutdownDomain(e.ctx, name), virt.ErrInvalidState, name, "shut down a shut-off domain")
	e.wantErr(e.hv.DestroyDomain(e.ctx, name), virt.ErrInvalidState, name, "destroy a shut-off domain")
	if r := e.stopReason(name); r != virt.StopUnknown {
		e.Errorf("stop reason of a domain never started = %q, want %q", r, virt.StopUnknown)
	}

	e.must(e.hv.StartDomain(e.ctx, name), "start %s", name)
	e.waitEvent(events, name, virt.EventStarted, "booted")
	d, err := e.hv.GetDomain(e.ctx, name)
	e.must(err, "get %s", name)
	if d.State != virt.StateRunning || d.StopReason != "" {
		e.Fatalf("state after start = %s (stop reason %q, want none)", d.State, d.StopReason)
	}
	if !strings.HasPrefix(d.VNC, "127.0.0.1:") {
		e.Errorf("VNC of a running domain = %q, want 127.0.0.1:port", d.VNC)
	}
	e.wantErr(e.hv.StartDomain(e.ctx, name), virt.ErrInvalidState, name, "start a running domain")
	e.wantErr(e.hv.UndefineDomain(e.ctx, name), virt.ErrInvalidState, name, "undefine a running domain")
	_, err = e.hv.CreateSnapshot(e.ctx, name, virt.SnapshotSpec{Name: "disk-only"})
	e.wantErr(err, virt.ErrUnsupported, name, "internal disk-only snapshot of a running domain")

	// The guest gets its reservation (a real guest asks by DHCP).
	lease := e.waitLease(net.Name, mac)
	if lease.IP != hostN(e.subnet(1), 11) {
		e.Errorf("lease %s, want the reservation %s", lease.IP, hostN(e.subnet(1), 11))
	}

	// The filter is bound to the running NIC and cannot be deleted.
	bindings, err := e.hv.FilterBindings(e.ctx)
	e.must(err, "filter bindings")
	i := slices.IndexFunc(bindings, func(b virt.FilterBinding) bool { return b.Owner == name })
	if i < 0 {
		e.Errorf("no filter binding for %s in %+v", name, bindings)
	} else if b := bindings[i]; b.Filter != flt.Name || b.MAC != mac || b.PortDev == "" ||
		!slices.Contains(b.Params, virt.FilterParam{Name: "IP", Value: lease.IP.String()}) {
		e.Errorf("binding = %+v, want filter %s on MAC %s with IP=%s", b, flt.Name, mac, lease.IP)
	}
	for _, f := range flt.Names() {
		e.wantErr(e.hv.DeleteFilter(e.ctx, f), virt.ErrInUse, f, "delete a filter a running domain uses")
	}

	// A filter reference removed from the running NIC (as virsh
	// update-device --live would) unbinds it; setting it again re-binds
	// it live, without a restart.
	before, err := e.hv.GetDomain(e.ctx, name)
	e.must(err, "get %s", name)
	e.must(e.hv.SetInterfaceFilter(e.ctx, name, mac, "", nil), "remove the filter of %s", name)
	bindings, err = e.hv.FilterBindings(e.ctx)
	e.must(err, "filter bindings")
	if slices.ContainsFunc(bindings, func(b virt.FilterBinding) bool { return b.Owner == name }) {
		e.Errorf("filter still bound to %s after its reference was removed: %+v", name, bindings)
	}
	if d, _ := e.hv.GetDomain(e.ctx, name); len(d.Interfaces) != 1 || d.Interfaces[0].Filter != "" {
		e.Errorf("definition after removing the filter: %+v, want one NIC without filter", d.Interfaces)
	}
	ipParam := []virt.FilterParam{{Name: "IP", Value: lease.IP.String()}}
	e.must(e.hv.SetInterfaceFilter(e.ctx, name, mac, flt.Name, ipParam), "re-bind the filter of %s", name)
	bindings, err = e.hv.FilterBindings(e.ctx)
	e.must(err, "filter bindings")
	if i := slices.IndexFunc(bindings, func(b virt.FilterBinding) bool { return b.Owner == name }); i < 0 ||
		bindings[i].Filter != flt.Name || !slices.Contains(bindings[i].Params, ipParam[0]) {
		e.Errorf("after re-binding: bindings %+v, want %s bound to %s with IP=%s", bindings, flt.Name, name, lease.IP)
	}
	after, err := e.hv.GetDomain(e.ctx, name)
	e.must(err, "get %s", name)
	if after.State != virt.StateRunning || after.UUID != before.UUID || len(after.Interfaces) != 1 ||
		after.Interfaces[0].Filter != flt.Name || !slices.Contains(after.Interfaces[0].FilterParams, ipParam[0]) {
		e.Errorf("after re-binding: state %s, interfaces %+v; want still running with the filter in the definition", after.State, after.Interfaces)
	}
	e.wantErr(e.hv.SetInterfaceFilter(e.ctx, name, e.mac(99), flt.Name, nil), virt.ErrNotFound, name, "set the filter of a missing NIC")
	e.wantErr(e.hv.DeleteNetwork(e.ctx, net.Name), virt.ErrInUse, net.Name, "delete a network a running domain uses")

	// The bridge holds the NIC's tap device, which is not listed.
	ports, err := e.hv.BridgePorts(e.ctx, net.Bridge)
	e.must(err, "ports of bridge %s", net.Bridge)
	if len(ports) != 0 {
		e.Errorf("ports of bridge %s = %+v, want none (domain taps are left out)", net.Bridge, ports)
	}
	_, err = e.hv.BridgePorts(e.ctx, e.name("nobr"))
	e.wantErr(err, virt.ErrNotFound, e.name("nobr"), "list the ports of a missing bridge")

	// A reservation added while the guest uses the network (a VM added to
	// a profile) applies at once.
	changed := net
	changed.DHCPHosts = append(slices.Clone(net.DHCPHosts), virt.DHCPHost{MAC: e.mac(9), Name: "later", IP: hostN(e.subnet(1), 19)})
	n, err := e.hv.DefineNetwork(e.ctx, changed)
	e.must(err, "redefine network %s", net.Name)
	if n.Stale || !n.Active || len(n.DHCPHosts) != 2 || n.Running != nil {
		e.Errorf("reservation added while in use: stale=%v active=%v hosts=%v running=%+v, want applied live, 2 hosts", n.Stale, n.Active, n.DHCPHosts, n.Running)
	}
	// Any other change leaves it stale until the network restarts.
	changed.DNS = true
	n, err = e.hv.DefineNetwork(e.ctx, changed)
	e.must(err, "redefine network %s", net.Name)
	if !n.Stale || !n.Active || !n.DNS {
		e.Errorf("network redefined while in use: stale=%v active=%v dns=%v, want stale, active, DNS in the definition", n.Stale, n.Active, n.DNS)
	}
	if n.Running == nil || n.Running.DNS || len(n.Running.DHCPHosts) != 2 || n.Running.Bridge != net.Bridge || n.Running.ForwardMode != "" {
		e.Errorf("running form of the stale network = %+v, want the running definition (bridge %s, no DNS, 2 hosts, no forward)", n.Running, net.Bridge)
	}

	// ACPI shutdown: the guest powers off.
	e.shutdown(name)
	e.waitEvent(events, name, virt.EventStopped, "shutdown")
	if d, _ := e.hv.GetDomain(e.ctx, name); d.VNC != "" {
		e.Errorf("VNC of a shut-off domain = %q, want empty", d.VNC)
	}
	if r := e.stopReason(name); r != virt.StopShutdown {
		e.Errorf("stop reason after the guest powered off = %q, want %q", r, virt.StopShutdown)
	}
	e.wantErr(e.hv.ShutdownDomain(e.ctx, name), virt.ErrInvalidState, name, "shut down a shut-off domain")

	// With no user left, redefining applies the definition (restart).
	n, err = e.hv.DefineNetwork(e.ctx, changed)
	e.must(err, "redefine network %s", net.Name)
	if n.Stale || !n.Active || n.Running != nil {
		e.Errorf("network redefined without users: stale=%v active=%v running=%+v, want fresh and active", n.Stale, n.Active, n.Running)
	}

	// Destroy pulls the plug at once.
	e.must(e.hv.StartDomain(e.ctx, name), "start %s again", name)
	e.waitEvent(events, name, virt.EventStarted, "booted")
	e.must(e.hv.DestroyDomain(e.ctx, name), "destroy %s", name)
	e.waitEvent(events, name, virt.EventStopped, "destroyed")
	if s := e.state(name); s != virt.StateShutoff {
		e.Errorf("state after destroy = %s", s)
	}
	if r := e.stopReason(name); r != virt.StopDestroyed {
		e.Errorf("stop reason after destroy = %q, want %q", r, virt.StopDestroyed)
	}
}
