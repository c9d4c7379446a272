package fake_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// host is a fake with a pool, a golden image, a network and a filter.
func host(t *testing.T, opts ...fake.Option) *fake.Hypervisor {
	t.Helper()
	clock := t0
	opts = append([]fake.Option{
		fake.WithClock(func() time.Time { clock = clock.Add(time.Second); return clock }),
		fake.WithFile("/golden/win7.qcow2", "qcow2", 10<<30),
	}, opts...)
	h := fake.New(opts...)
	ctx := context.Background()
	must(h.EnsurePool(ctx, "lvm", "/pool"))
	must(h.DefineNetwork(ctx, virt.NetworkSpec{
		Name: "lvm-lab", UUID: "6c1f1c0e-0000-4000-8000-000000000001", Bridge: "lvm-lab", MAC: "52:54:00:00:00:01",
		Subnet: netip.MustParsePrefix("10.77.0.0/24"), HostAddress: netip.MustParseAddr("10.77.0.1"),
		DHCP: true, DHCPStart: netip.MustParseAddr("10.77.0.100"), DHCPEnd: netip.MustParseAddr("10.77.0.199"),
		DHCPHosts: []virt.DHCPHost{{MAC: "52:54:00:aa:00:01", Name: "vm1", IP: netip.MustParseAddr("10.77.0.11")}},
		Metadata:  &virt.Metadata{Profile: "p", Network: "lab"},
	}))
	if err := h.DefineFilter(ctx, labFilter); err != nil {
		t.Fatal(err)
	}
	return h
}

// must returns v or, on error, fails the test by panicking (the testing
// package reports the panic with the error and stack).
var labFilter = virt.FilterSpec{Name: "lvm-lab", UUID: "6c1f1c0e-0000-4000-8000-000000000002", BridgeMAC: "52:54:00:00:00:01",
	Subnet: netip.MustParsePrefix("10.77.0.0/24"), HostAddress: netip.MustParseAddr("10.77.0.1"), DHCP: true}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// vm defines vm1: an overlay on the golden image, one CD-ROM drive, one
// filtered NIC with a DHCP reservation.
func vm(t *testing.T, h *fake.Hypervisor, name string) virt.Domain {
	t.Helper()
	ctx := context.Background()
	vol := must(h.CreateVolume(ctx, virt.VolumeSpec{Pool: "lvm", Name: name + ".qcow2", Format: "qcow2", CapacityBytes: 20 << 30, BackingPath: "/golden/win7.qcow2", BackingFormat: "qcow2"}))
	return must(h.DefineDomain(ctx, virt.DomainSpec{
		Name: name, UUID: uuidOf(name), Accel: virt.AccelTCG, Machine: "pc", VCPUs: 1, MemoryBytes: 256 << 20,
		Disks: []virt.DiskSpec{
			{Device: virt.DeviceDisk, Target: "sda", Path: vol.Path, Format: "qcow2", BootOrder: 1},
			{Device: virt.DeviceCDROM, Target: "sdb", Format: "raw"},
		},
		Interfaces: []virt.InterfaceSpec{{Network: "lvm-lab", MAC: "52:54:00:AA:00:01", Filter: "lvm-lab",
			FilterParams: []virt.FilterParam{{Name: "IP", Value: "10.77.0.11"}}}},
		Metadata: &virt.Metadata{Profile: "p", VM: name, SpecHash: "h1"},
	}))
}

func uuidOf(name string) string { return uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)).String() }

// small is a diskless domain spec.
func small(name string) virt.DomainSpec {
	return virt.DomainSpec{Name: name, UUID: uuidOf(name), Accel: virt.AccelTCG, Machine: "pc", VCPUs: 1, MemoryBytes: 1 << 28,
		Metadata: &virt.Metadata{Profile: "p", VM: name}}
}

func TestGuestPowerOffEmitsShutdownEvents(t *testing.T) {
	h := host(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vm(t, h, "vm1")
	events := must(h.Events(ctx))
	if err := h.StartDomain(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if err := h.GuestPowerOff("vm1"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 4 {
		ev := <-events
		got = append(got, string(ev.Kind)+"/"+ev.Detail)
	}
	want := "resumed/unpaused started/booted shutdown/guest stopped/shutdown"
	if strings.Join(got, " ") != want {
		t.Errorf("events = %v, want %s", got, want)
	}
	if d := must(h.GetDomain(ctx, "vm1")); d.State != virt.StateShutoff {
		t.Errorf("state after guest power-off = %s", d.State)
	}
	if err := h.GuestPowerOff("vm1"); !errors.Is(err, virt.ErrInvalidState) {
		t.Errorf("power off a shut-off guest: %v, want ErrInvalidState", err)
	}
	cancel()
	for range events { // closed when ctx ends
	}
}

func TestIgnoreACPI(t *testing.T) {
	h := host(t, fake.IgnoreACPI())
	ctx := context.Background()
	vm(t, h, "vm1")
	if err := h.StartDomain(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := h.ShutdownDomain(ctx, "vm1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.ShutdownRequests("vm1"); n != 2 {
		t.Errorf("ShutdownRequests = %d, want 2", n)
	}
	if d := must(h.GetDomain(ctx, "vm1")); d.State != virt.StateRunning {
		t.Errorf("a guest that ignores ACPI is %s, want running", d.State)
	}
	if err := h.DestroyDomain(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
}

func TestFailOn(t *testing.T) {
	ctx := context.Background()
	h := host(t, fake.FailOn("DefineDomain", "vm2", virt.ErrInvalid))
	vm(t, h, "vm1") // other names are not affected
	_, err := h.DefineDomain(ctx, small("vm2"))
	if !errors.Is(err, virt.ErrInvalid) || !strings.Contains(err.Error(), `define domain "vm2"`) {
		t.Errorf("injected failure: %v", err)
	}

	h.FailTimes("StartDomain", "", 2, virt.ErrBusy)
	for i := range 2 {
		if err := h.StartDomain(ctx, "vm1"); !errors.Is(err, virt.ErrBusy) {
			t.Errorf("call %d: %v, want ErrBusy", i, err)
		}
	}
	if err := h.StartDomain(ctx, "vm1"); err != nil {
		t.Errorf("third call: %v, want success", err)
	}
	h.ClearFailures()
	if _, err := h.DefineDomain(ctx, small("vm2")); err != nil {
		t.Errorf("after ClearFailures: %v", err)
	}
}

func TestRevertRestoresDiskContent(t *testing.T) {
	h := host(t)
	ctx := context.Background()
	d := vm(t, h, "vm1")
	disk := d.Disks[0].Path

	if _, err := h.CreateSnapshot(ctx, "vm1", virt.SnapshotSpec{Name: "clean"}); err != nil {
		t.Fatal(err)
	}
	if err := h.StartDomain(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := h.WriteDisk("vm1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.CreateSnapshot(ctx, "vm1", virt.SnapshotSpec{Name: "busy", Memory: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteDisk("vm1"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		snap  string
		gen   uint64
		state virt.DomainState
	}{
		{"busy", 3, virt.StateRunning},
		{"clean", 0, virt.StateShutoff},
		{"busy", 3, virt.StateRunning},
	}
	for _, tt := range tests {
		if err := h.RevertSnapshot(ctx, "vm1", tt.snap); err != nil {
			t.Fatal(err)
		}
		if g := must(h.DiskGeneration(disk)); g != tt.gen {
			t.Errorf("after revert to %s: disk generation %d, want %d", tt.snap, g, tt.gen)
		}
		if got := must(h.GetDomain(ctx, "vm1")); got.State != tt.state {
			t.Errorf("after revert to %s: state %s, want %s", tt.snap, got.State, tt.state)
		}
	}
	if in := must(h.InternalSnapshots(disk)); strings.Join(in, ",") != "clean,busy" {
		t.Errorf("internal snapshots in %s = %v", disk, in)
	}
}

func TestRevertOfRunningDomainRestartsIt(t *testing.T) {
	h := host(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vm(t, h, "vm1")
	if err := h.StartDomain(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateSnapshot(ctx, "vm1", virt.SnapshotSpec{Name: "s", Memory: true}); err != nil {
		t.Fatal(err)
	}
	events := must(h.Events(ctx))
	if err := h.RevertSnapshot(ctx, "vm1", "s"); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for len(got) < 4 {
		ev := <-events
		got = append(got, string(ev.Kind)+"/"+ev.Detail)
	}
	if want := "stopped/from-snapshot started/from-snapshot resumed/from-snapshot defined/from-snapshot"; strings.Join(got, " ") != want {
		t.Errorf("events = %v, want %s", got, want)
	}
}

func TestFilterInUse(t *testing.T) {
	h := host(t)
	ctx := context.Background()
	vm(t, h, "vm1")
	// The guard is reached through the root filter the NIC references.
	for _, name := range []string{"lvm-lab", "lvm-lab-guard"} {
		if err := h.DeleteFilter(ctx, name); !errors.Is(err, virt.ErrInUse) {
			t.Errorf("delete %s while vm1 is defined: %v, want ErrInUse", name, err)
		}
	}
	if err := h.UndefineDomain(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lvm-lab", "lvm-lab-guard"} {
		if err := h.DeleteFilter(ctx, name); err != nil {
			t.Errorf("delete %s: %v", name, err)
		}
	}
}

func TestFilterDiff(t *testing.T) {
	h := host(t)
	ctx := context.Background()
	if d := must(h.FilterDiff(ctx, labFilter)); len(d) != 0 {
		t.Errorf("diff of an unchanged filter: %v", d)
	}
	// Someone deletes the guard's last rule with virsh nwfilter-edit.
	err := h.TamperFilter("lvm-lab-guard", func(f *libvirtxml.NWFilter) { f.Entries = f.Entries[:len(f.Entries)-1] })
	if err != nil {
		t.Fatal(err)
	}
	if d := must(h.FilterDiff(ctx, labFilter)); len(d) != 1 || !strings.HasPrefix(d[0], "filter lvm-lab-guard: ") {
		t.Errorf("diff after tampering: %q", d)
	}
	changed := labFilter
	changed.Allows = []virt.AllowSpec{{Name: "rdp", Direction: "in", Peer: "host", Protocol: "tcp", PortStart: 3389, PortEnd: 3389}}
	if err := h.DefineFilter(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if d := must(h.FilterDiff(ctx, changed)); len(d) != 0 {
		t.Errorf("diff right after defining: %q", d)
	}
	if d := must(h.FilterDiff(ctx, labFilter)); len(d) == 0 || !strings.Contains(d[0], "lvm-lab-guard") {
		t.Errorf("diff against the old spec: %q, want guard differences", d)
	}
	if err := h.DeleteFilter(ctx, "lvm-lab"); err != nil {
		t.Fatal(err)
	}
	if d := must(h.FilterDiff(ctx, changed)); len(d) != 1 || d[0] != "filter lvm-lab is missing" {
		t.Errorf("diff with a missing filter: %q", d)
	}
}

func TestLeases(t *testing.T) {
	h := host(t)
	ctx := context.Background()
	vm(t, h, "vm1")
	vm2 := small("vm2")
	vm2.Interfaces = []virt.InterfaceSpec{{Network: "lvm-lab", MAC: "52:54:00:aa:00:02"}}
	must(h.DefineDomain(ctx, vm2))
	if l := must(h.Leases(ctx, "lvm-lab")); len(l) != 0 {
		t.Errorf("leases with nothing running: %v", l)
	}
	for _, n := range []string{"vm1", "vm2"} {
		if err := h.StartDomain(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	l := must(h.Leases(ctx, "lvm-lab"))
	if len(l) != 2 || l[0].IP.String() != "10.77.0.11" || l[0].Hostname != "vm1" || l[1].IP.String() != "10.77.0.100" {
		t.Errorf("leases = %+v", l)
	}
}

func TestNetworkRedefineWhileInUseIsStale(t *testing.T) {
	h := host(t)
	ctx := context.Background()
	vm(t, h, "vm1")
	n := must(h.GetNetwork(ctx, "lvm-lab"))
	spec := virt.NetworkSpec{Name: n.Name, UUID: n.UUID, Bridge: n.Bridge, MAC: n.MAC, Subnet: n.Subnet, HostAddress: n.HostAddress, Metadata: n.Metadata,
		DHCP: true, DHCPStart: n.DHCPStart, DHCPEnd: n.DHCPEnd, DHCPHosts: n.DHCPHosts}
	spec.DHCPHosts = append(spec.DHCPHosts, virt.DHCPHost{MAC: "52:54:00:aa:00:09", Name: "vm9", IP: netip.MustParseAddr("10.77.0.19")})

	if err := h.StartDomain(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if got := must(h.DefineNetwork(ctx, spec)); got.Stale || len(got.DHCPHosts) != 2 {
		t.Errorf("reservation added while vm1 runs: stale=%v hosts=%v, want applied live, 2 hosts", got.Stale, got.DHCPHosts)
	}
	spec.DNS = true
	if got := must(h.DefineNetwork(ctx, spec)); !got.Stale || got.Running == nil || got.Running.DNS || len(got.Running.DHCPHosts) != 2 {
		t.Errorf("DNS turned on while vm1 runs: stale=%v running=%+v, want stale, running without DNS with 2 hosts", got.Stale, got.Running)
	}
	if err := h.DeleteNetwork(ctx, "lvm-lab"); !errors.Is(err, virt.ErrInUse) {
		t.Errorf("delete network in use: %v, want ErrInUse", err)
	}
	if err := h.DestroyDomain(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if got := must(h.DefineNetwork(ctx, spec)); got.Stale {
		t.Error("defined again with no user: still stale, want restarted")
	}
}

func TestStartNeedsItsParts(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		sabotage func(h *fake.Hypervisor) error
		want     error
	}{
		{"missing disk", func(h *fake.Hypervisor) error { return h.DeleteVolume(ctx, "lvm", "vm1.qcow2") }, virt.ErrNotFound},
		{"missing network", func(h *fake.Hypervisor) error { return h.DeleteNetwork(ctx, "lvm-lab") }, virt.ErrNotFound},
		{"missing backing file", func(h *fake.Hypervisor) error {
			must(h.EnsurePool(ctx, "golden", "/golden"))
			return h.DeleteVolume(ctx, "golden", "win7.qcow2")
		}, virt.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host(t)
			vm(t, h, "vm1")
			if err := tt.sabotage(h); err != nil {
				t.Fatal(err)
			}
			if err := h.StartDomain(ctx, "vm1"); !errors.Is(err, tt.want) {
				t.Errorf("start: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDisconnectClosesEvents(t *testing.T) {
	h := host(t)
	ctx := context.Background()
	events := must(h.Events(ctx))
	h.Disconnect()
	if _, ok := <-events; ok {
		t.Error("event channel still open after Disconnect")
	}
	if _, err := h.ListDomains(ctx); !errors.Is(err, virt.ErrConnection) {
		t.Errorf("list after Disconnect: %v, want ErrConnection", err)
	}
	h.Reconnect()
	if _, err := h.ListDomains(ctx); err != nil {
		t.Errorf("list after Reconnect: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	h := host(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "c" + string(rune('a'+i))
			if _, err := h.CreateVolume(ctx, virt.VolumeSpec{Pool: "lvm", Name: name, Format: "qcow2", CapacityBytes: 1 << 30}); err != nil {
				t.Error(err)
			}
			if _, err := h.ListVolumes(ctx, "lvm"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if v := must(h.ListVolumes(ctx, "lvm")); len(v) != 8 {
		t.Errorf("%d volumes, want 8", len(v))
	}
}
