package virttest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Harness is what one conformance case needs from the implementation under
// test. Every field is required unless it says otherwise.
type Harness struct {
	// HV is the implementation under test; the suite closes it when the
	// case ends.
	HV virt.Hypervisor
	// Pool and PoolDir name a directory pool the case may create (the suite
	// calls EnsurePool) and fill with volumes.
	Pool    string
	PoolDir string
	// Golden is a bootable qcow2 image (the stand-in guest) that overlays
	// are built on. The suite makes its directory the pool GoldenPool and
	// never writes to it.
	Golden     string
	GoldenPool string
	// Accel is the accelerator of the domains the suite defines.
	Accel virt.Accel
	// Boots is true when guests really boot: the case then waits for a
	// DHCP lease before it asks the guest to shut down, and waits for
	// state changes that take time.
	Boots bool
	// Timeout bounds each wait for a guest (boot, lease, shutdown,
	// revert); default one minute.
	Timeout time.Duration
	// WriteDisk writes new content into the disk image at path (of a
	// shut-off domain) and returns a token that identifies it; ReadDisk
	// returns the token of the content the image holds now. Together they
	// prove that a revert restores disk content.
	WriteDisk func(ctx context.Context, path string) (string, error)
	ReadDisk  func(ctx context.Context, path string) (string, error)
	// InternalSnapshots lists the internal snapshots stored inside the
	// qcow2 image at path.
	InternalSnapshots func(ctx context.Context, path string) ([]string, error)
}

// Run runs every conformance case against the implementation newHV
// returns; newHV is called once per case (as a subtest).
func Run(t *testing.T, newHV func(t *testing.T) Harness) {
	cases := []struct {
		name string
		run  func(*env)
	}{
		{"HostInfo", testHostInfo},
		{"Errors", testErrors},
		{"DomainDefine", testDomainDefine},
		{"DomainLifecycle", testDomainLifecycle},
		{"Networks", testNetworks},
		{"Filters", testFilters},
		{"Storage", testStorage},
		{"Snapshots", testSnapshots},
		{"MemoryImages", testMemoryImages},
		{"LayeredBaseline", testLayeredBaseline},
		{"ChangeMedia", testChangeMedia},
		{"Events", testEvents},
		{"Agent", testAgent},
		{"Display", testDisplay},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHV(t)
			if h.Timeout == 0 {
				h.Timeout = time.Minute
			}
			t.Cleanup(func() {
				if err := h.HV.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c.run(&env{T: t, h: h, hv: h.HV, ctx: ctx, prefix: "vt" + strings.ToLower(c.name[:3])})
		})
	}
}

// env is one running case.
type env struct {
	*testing.T
	h      Harness
	hv     virt.Hypervisor
	ctx    context.Context
	prefix string // "vt" + three letters of the case
}

// name returns an object name unique to the case.
func (e *env) name(s string) string { return e.prefix + "-" + s }

// id returns a stable UUID for an object name.
func id(name string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("legacyvm-virttest/"+name)).String()
}

// mac returns a stable locally administered MAC for (case, n).
func (e *env) mac(n int) string {
	var sum byte
	for _, c := range e.prefix {
		sum = sum*31 + byte(c)
	}
	return fmt.Sprintf("52:54:00:7e:%02x:%02x", sum, n)
}

// subnet returns a /24 unique to the case (and to n within it).
func (e *env) subnet(n int) netip.Prefix {
	var sum byte
	for _, c := range e.prefix {
		sum = sum*17 + byte(c)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 231, sum&0xf0 | byte(n&0x0f), 0}), 24)
}

func hostN(p netip.Prefix, n byte) netip.Addr {
	a := p.Addr().As4()
	a[3] = n
	return netip.AddrFrom4(a)
}

func (e *env) cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// must fails the case when err is not nil.
func (e *env) must(err error, what string, args ...any) {
	e.Helper()
	if err != nil {
		e.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// wantErr checks that err wraps sentinel and names the object.
func (e *env) wantErr(err, sentinel error, object, what string) {
	e.Helper()
	if !errors.Is(err, sentinel) {
		e.Errorf("%s: got %v, want an error wrapping %q", what, err, sentinel)
		return
	}
	if object != "" && !strings.Contains(err.Error(), object) {
		e.Errorf("%s: error %q does not name %q", what, err, object)
	}
}

// pool ensures the case's pool and returns its name.
func (e *env) pool() string {
	e.Helper()
	_, err := e.hv.EnsurePool(e.ctx, e.h.Pool, e.h.PoolDir)
	e.must(err, "ensure pool %s", e.h.Pool)
	return e.h.Pool
}

// goldenPool makes the golden image's directory a pool.
func (e *env) goldenPool() {
	e.Helper()
	_, err := e.hv.EnsurePool(e.ctx, e.h.GoldenPool, filepath.Dir(e.h.Golden))
	e.must(err, "ensure golden pool %s", e.h.GoldenPool)
}

// overlay creates a qcow2 overlay of the golden image and removes it when
// the case ends.
func (e *env) overlay(name string) virt.Volume {
	e.Helper()
	pool := e.pool()
	spec := virt.VolumeSpec{Pool: pool, Name: name + ".qcow2", Format: "qcow2", CapacityBytes: 64 << 20,
		BackingPath: e.h.Golden, BackingFormat: "qcow2"}
	v, err := e.hv.CreateVolume(e.ctx, spec)
	e.must(err, "create overlay %s", spec.Name)
	e.cleanupVolume(pool, spec.Name)
	return v
}

func (e *env) cleanupVolume(pool, name string) {
	e.Cleanup(func() {
		ctx, cancel := e.cleanupCtx()
		defer cancel()
		if err := e.hv.DeleteVolume(ctx, pool, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			e.Errorf("cleanup: delete volume %s: %v", name, err)
		}
	})
}

// network defines an isolated network with DHCP on the case's subnet n
// and reservations for hosts, and removes it when the case ends.
func (e *env) network(n int, hosts ...virt.DHCPHost) virt.NetworkSpec {
	e.Helper()
	sub := e.subnet(n)
	spec := virt.NetworkSpec{
		Name:        e.name(fmt.Sprintf("net%d", n)),
		Bridge:      e.name(fmt.Sprintf("br%d", n)),
		MAC:         e.mac(0xf0 + n),
		Subnet:      sub,
		HostAddress: hostN(sub, 1),
		DHCP:        true,
		DHCPStart:   hostN(sub, 100),
		DHCPEnd:     hostN(sub, 199),
		DHCPHosts:   hosts,
		Metadata:    &virt.Metadata{Profile: "virttest", Network: fmt.Sprintf("net%d", n), SpecHash: "n1"},
	}
	spec.UUID = id(spec.Name)
	_, err := e.hv.DefineNetwork(e.ctx, spec)
	e.must(err, "define network %s", spec.Name)
	e.cleanupNetwork(spec.Name)
	return spec
}

func (e *env) cleanupNetwork(name string) {
	e.Cleanup(func() {
		ctx, cancel := e.cleanupCtx()
		defer cancel()
		if err := e.hv.DeleteNetwork(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			e.Errorf("cleanup: delete network %s: %v", name, err)
		}
	})
}

// filter defines the case's traffic filter for network spec.
func (e *env) filter(n virt.NetworkSpec, allows ...virt.AllowSpec) virt.FilterSpec {
	e.Helper()
	spec := virt.FilterSpec{
		Name: n.Name, UUID: id(n.Name + "/filter"), BridgeMAC: n.MAC,
		Subnet: n.Subnet, HostAddress: n.HostAddress, DHCP: n.DHCP, DNS: n.DNS, Allows: allows,
	}
	e.must(e.hv.DefineFilter(e.ctx, spec), "define filter %s", spec.Name)
	e.Cleanup(func() {
		ctx, cancel := e.cleanupCtx()
		defer cancel()
		for _, name := range spec.Names() {
			if err := e.hv.DeleteFilter(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
				e.Errorf("cleanup: delete filter %s: %v", name, err)
			}
		}
	})
	return spec
}

// domainSpec is a small stand-in guest: the overlay as SATA disk, an empty
// CD-ROM drive and, when net is set, one e1000 NIC.
func (e *env) domainSpec(name, disk string, net *virt.NetworkSpec, filter string) virt.DomainSpec {
	spec := virt.DomainSpec{
		Name:         name,
		UUID:         id(name),
		Title:        "virttest " + name,
		Accel:        e.h.Accel,
		Arch:         "x86_64",
		Machine:      "pc",
		VCPUs:        1,
		MemoryBytes:  256 << 20,
		SMBIOSSerial: "VT-" + strings.ToUpper(name),
		OEMStrings:   []string{"rig.name=" + name},
		Disks: []virt.DiskSpec{
			{Device: virt.DeviceDisk, Bus: "sata", Target: "sda", Path: disk, Format: "qcow2", BootOrder: 1},
			{Device: virt.DeviceCDROM, Bus: "sata", Target: "sdb", Format: "raw"},
		},
		Metadata: &virt.Metadata{
			Profile: "virttest", VM: name, Instance: name, SpecHash: "d1",
			Image:   e.h.Golden,
			Volumes: []virt.VolumeRef{{Pool: e.h.Pool, Name: filepath.Base(disk), Role: "system"}},
			License: &virt.LicenseRef{Label: "lab", Channel: "retail", Fingerprint: "hmac-0123", SecretID: "sid1:00aa11bb22cc", LastGroup: "6789B", Seats: 1},
			Policy:  &virt.PolicyRef{Name: "daily", Baseline: "clean", Schedule: "@daily", Keep: 3, Memory: true},
			Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		},
	}
	if net != nil {
		nic := virt.InterfaceSpec{Network: net.Name, MAC: e.mac(1), Model: "e1000"}
		for _, h := range net.DHCPHosts {
			if h.Name == name {
				nic.MAC = h.MAC
				if filter != "" {
					nic.FilterParams = []virt.FilterParam{{Name: "IP", Value: h.IP.String()}}
				}
			}
		}
		nic.Filter = filter
		spec.Interfaces = []virt.InterfaceSpec{nic}
		spec.Metadata.Filters = []string{filter}
	}
	return spec
}

// domain defines spec and removes the domain (with its snapshots) when the
// case ends.
func (e *env) domain(spec virt.DomainSpec) virt.Domain {
	e.Helper()
	d, err := e.hv.DefineDomain(e.ctx, spec)
	e.must(err, "define domain %s", spec.Name)
	e.cleanupDomain(spec.Name)
	return d
}

func (e *env) cleanupDomain(name string) {
	e.Cleanup(func() {
		ctx, cancel := e.cleanupCtx()
		defer cancel()
		if err := e.hv.DestroyDomain(ctx, name); err != nil && !errors.Is(err, virt.ErrInvalidState) && !errors.Is(err, virt.ErrNotFound) {
			e.Errorf("cleanup: destroy %s: %v", name, err)
		}
		snaps, err := e.hv.ListSnapshots(ctx, name)
		if errors.Is(err, virt.ErrNotFound) {
			return
		}
		for _, s := range snaps {
			if err := e.hv.DeleteSnapshot(ctx, name, s.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
				e.Errorf("cleanup: delete snapshot %s of %s: %v", s.Name, name, err)
			}
		}
		if err := e.hv.UndefineDomain(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			e.Errorf("cleanup: undefine %s: %v", name, err)
		}
	})
}

// state returns the domain's state.
func (e *env) state(name string) virt.DomainState {
	e.Helper()
	d, err := e.hv.GetDomain(e.ctx, name)
	e.must(err, "get domain %s", name)
	return d.State
}

// waitState polls until the domain is in state want.
// stopReason is the domain's shutoff reason.
func (e *env) stopReason(name string) virt.StopReason {
	e.Helper()
	d, err := e.hv.GetDomain(e.ctx, name)
	e.must(err, "get %s", name)
	return d.StopReason
}

func (e *env) waitState(name string, want virt.DomainState, timeout time.Duration) {
	e.Helper()
	deadline := time.Now().Add(timeout)
	var got virt.DomainState
	for time.Now().Before(deadline) {
		if got = e.state(name); got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.Fatalf("domain %s is %s after %v, want %s", name, got, timeout, want)
}

// waitLease polls until the network has a lease for mac.
func (e *env) waitLease(network, mac string) virt.Lease {
	e.Helper()
	deadline := time.Now().Add(e.h.Timeout)
	for time.Now().Before(deadline) {
		leases, err := e.hv.Leases(e.ctx, network)
		e.must(err, "leases of %s", network)
		for _, l := range leases {
			if l.MAC == mac {
				return l
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	e.Fatalf("no DHCP lease for %s on %s after %v", mac, network, e.h.Timeout)
	return virt.Lease{}
}

// shutdown asks the guest to power off and waits until it has, asking
// again every few seconds (a guest that is still booting may miss the
// first ACPI event).
func (e *env) shutdown(name string) {
	e.Helper()
	deadline := time.Now().Add(e.h.Timeout)
	for time.Now().Before(deadline) {
		err := e.hv.ShutdownDomain(e.ctx, name)
		if errors.Is(err, virt.ErrInvalidState) {
			return // already off
		}
		e.must(err, "shut down %s", name)
		for next := time.Now().Add(5 * time.Second); time.Now().Before(next); time.Sleep(100 * time.Millisecond) {
			if e.state(name) == virt.StateShutoff {
				return
			}
		}
	}
	e.Fatalf("domain %s did not shut down within %v", name, e.h.Timeout)
}

// events subscribes to lifecycle events until the case ends.
func (e *env) events() <-chan virt.Event {
	e.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	e.Cleanup(cancel)
	ch, err := e.hv.Events(ctx)
	e.must(err, "subscribe to events")
	return ch
}

// waitEvent reads events until one for dom matches kind and detail ("" =
// any detail); it returns the events seen before it.
func (e *env) waitEvent(ch <-chan virt.Event, dom string, kind virt.EventKind, detail string) []virt.Event {
	e.Helper()
	timer := time.NewTimer(e.h.Timeout)
	defer timer.Stop()
	var seen []virt.Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				e.Fatalf("event channel closed while waiting for %s %s/%s (seen %v)", dom, kind, detail, seen)
			}
			if ev.Domain == dom && ev.Kind == kind && (detail == "" || ev.Detail == detail) {
				if ev.Time.IsZero() {
					e.Errorf("event %s/%s has no time", ev.Kind, ev.Detail)
				}
				return seen
			}
			seen = append(seen, ev)
		case <-timer.C:
			e.Fatalf("no %s/%s event for %s within %v (seen %v)", kind, detail, dom, e.h.Timeout, seen)
		}
	}
}

// findDomain returns the domain named name from a list.
func findDomain(list []virt.Domain, name string) (virt.Domain, bool) {
	i := slices.IndexFunc(list, func(d virt.Domain) bool { return d.Name == name })
	if i < 0 {
		return virt.Domain{}, false
	}
	return list[i], true
}
