package orchestrator

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// guardHV passes every call to hv and reports each one made from outside
// the observer (observe.go not on the caller's stack). It names every
// method of virt.Hypervisor (no embedding): a method added to the port
// does not compile here until it is guarded too.
type guardHV struct {
	hv virt.Hypervisor
	g  *guard
}

type guard struct {
	t     *testing.T
	mu    sync.Mutex
	calls int
}

// check fails the test when the caller is not the observer.
func (g *guard) check(method string) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	var stack []string
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.File, "/orchestrator/observe.go") {
			return
		}
		stack = append(stack, f.Function)
		if !more {
			break
		}
	}
	g.t.Errorf("%s called while planning, outside the observer:\n  %s", method, strings.Join(stack, "\n  "))
}

func (g *guard) connector(h virt.Hypervisor) Connector {
	return func(ctx context.Context, uri string) (virt.Hypervisor, error) {
		return guardHV{hv: nopClose{h}, g: g}, nil
	}
}

// Close is no talk: closing the connection is the caller's business.
func (g guardHV) Close() error { return g.hv.Close() }
func (g guardHV) HostInfo(ctx context.Context) (virt.HostInfo, error) {
	g.g.check("HostInfo")
	return g.hv.HostInfo(ctx)
}

func (g guardHV) ListDomains(ctx context.Context) ([]virt.Domain, error) {
	g.g.check("ListDomains")
	return g.hv.ListDomains(ctx)
}

func (g guardHV) GetDomain(ctx context.Context, name string) (virt.Domain, error) {
	g.g.check("GetDomain")
	return g.hv.GetDomain(ctx, name)
}

func (g guardHV) DefineDomain(ctx context.Context, spec virt.DomainSpec) (virt.Domain, error) {
	g.g.check("DefineDomain")
	return g.hv.DefineDomain(ctx, spec)
}

func (g guardHV) UndefineDomain(ctx context.Context, name string) error {
	g.g.check("UndefineDomain")
	return g.hv.UndefineDomain(ctx, name)
}

func (g guardHV) StartDomain(ctx context.Context, name string) error {
	g.g.check("StartDomain")
	return g.hv.StartDomain(ctx, name)
}

func (g guardHV) ShutdownDomain(ctx context.Context, name string) error {
	g.g.check("ShutdownDomain")
	return g.hv.ShutdownDomain(ctx, name)
}

func (g guardHV) DestroyDomain(ctx context.Context, name string) error {
	g.g.check("DestroyDomain")
	return g.hv.DestroyDomain(ctx, name)
}

func (g guardHV) SetMetadata(ctx context.Context, name string, m *virt.Metadata) error {
	g.g.check("SetMetadata")
	return g.hv.SetMetadata(ctx, name, m)
}

func (g guardHV) SetAutostart(ctx context.Context, name string, on bool) error {
	g.g.check("SetAutostart")
	return g.hv.SetAutostart(ctx, name, on)
}

func (g guardHV) SetInterfaceFilter(ctx context.Context, domain, mac, filter string, params []virt.FilterParam) error {
	g.g.check("SetInterfaceFilter")
	return g.hv.SetInterfaceFilter(ctx, domain, mac, filter, params)
}

func (g guardHV) ChangeMedia(ctx context.Context, domain, target, path string) error {
	g.g.check("ChangeMedia")
	return g.hv.ChangeMedia(ctx, domain, target, path)
}

func (g guardHV) ListNetworks(ctx context.Context) ([]virt.Network, error) {
	g.g.check("ListNetworks")
	return g.hv.ListNetworks(ctx)
}

func (g guardHV) GetNetwork(ctx context.Context, name string) (virt.Network, error) {
	g.g.check("GetNetwork")
	return g.hv.GetNetwork(ctx, name)
}

func (g guardHV) DefineNetwork(ctx context.Context, spec virt.NetworkSpec) (virt.Network, error) {
	g.g.check("DefineNetwork")
	return g.hv.DefineNetwork(ctx, spec)
}

func (g guardHV) DeleteNetwork(ctx context.Context, name string) error {
	g.g.check("DeleteNetwork")
	return g.hv.DeleteNetwork(ctx, name)
}

func (g guardHV) Leases(ctx context.Context, network string) ([]virt.Lease, error) {
	g.g.check("Leases")
	return g.hv.Leases(ctx, network)
}

func (g guardHV) ListFilters(ctx context.Context) ([]virt.Filter, error) {
	g.g.check("ListFilters")
	return g.hv.ListFilters(ctx)
}

func (g guardHV) DefineFilter(ctx context.Context, spec virt.FilterSpec) error {
	g.g.check("DefineFilter")
	return g.hv.DefineFilter(ctx, spec)
}

func (g guardHV) FilterDiff(ctx context.Context, spec virt.FilterSpec) ([]string, error) {
	g.g.check("FilterDiff")
	return g.hv.FilterDiff(ctx, spec)
}

func (g guardHV) DeleteFilter(ctx context.Context, name string) error {
	g.g.check("DeleteFilter")
	return g.hv.DeleteFilter(ctx, name)
}

func (g guardHV) FilterBindings(ctx context.Context) ([]virt.FilterBinding, error) {
	g.g.check("FilterBindings")
	return g.hv.FilterBindings(ctx)
}

func (g guardHV) BridgePorts(ctx context.Context, bridge string) ([]virt.BridgePort, error) {
	g.g.check("BridgePorts")
	return g.hv.BridgePorts(ctx, bridge)
}

func (g guardHV) GetPool(ctx context.Context, name string) (virt.Pool, error) {
	g.g.check("GetPool")
	return g.hv.GetPool(ctx, name)
}

func (g guardHV) EnsurePool(ctx context.Context, name, path string) (virt.Pool, error) {
	g.g.check("EnsurePool")
	return g.hv.EnsurePool(ctx, name, path)
}

func (g guardHV) RemovePool(ctx context.Context, name string) error {
	g.g.check("RemovePool")
	return g.hv.RemovePool(ctx, name)
}

func (g guardHV) ListVolumes(ctx context.Context, pool string) ([]virt.Volume, error) {
	g.g.check("ListVolumes")
	return g.hv.ListVolumes(ctx, pool)
}

func (g guardHV) VolumeByPath(ctx context.Context, path string) (virt.Volume, error) {
	g.g.check("VolumeByPath")
	return g.hv.VolumeByPath(ctx, path)
}

func (g guardHV) CreateVolume(ctx context.Context, spec virt.VolumeSpec) (virt.Volume, error) {
	g.g.check("CreateVolume")
	return g.hv.CreateVolume(ctx, spec)
}

func (g guardHV) CloneVolume(ctx context.Context, spec virt.VolumeSpec, sourcePath string) (virt.Volume, error) {
	g.g.check("CloneVolume")
	return g.hv.CloneVolume(ctx, spec, sourcePath)
}

func (g guardHV) UploadVolume(ctx context.Context, spec virt.VolumeSpec, r io.Reader, size int64) (virt.Volume, error) {
	g.g.check("UploadVolume")
	return g.hv.UploadVolume(ctx, spec, r, size)
}

func (g guardHV) DownloadVolume(ctx context.Context, pool, name string, w io.Writer, max int64) (int64, error) {
	g.g.check("DownloadVolume")
	return g.hv.DownloadVolume(ctx, pool, name, w, max)
}

func (g guardHV) UploadFile(ctx context.Context, spec virt.VolumeSpec, path string, progress func(done, total int64)) (virt.Volume, error) {
	g.g.check("UploadFile")
	return g.hv.UploadFile(ctx, spec, path, progress)
}

func (g guardHV) VolumeSHA256(ctx context.Context, pool, name string) (string, error) {
	g.g.check("VolumeSHA256")
	return g.hv.VolumeSHA256(ctx, pool, name)
}

func (g guardHV) DeleteVolume(ctx context.Context, pool, name string) error {
	g.g.check("DeleteVolume")
	return g.hv.DeleteVolume(ctx, pool, name)
}

func (g guardHV) ListSnapshots(ctx context.Context, domain string) ([]virt.Snapshot, error) {
	g.g.check("ListSnapshots")
	return g.hv.ListSnapshots(ctx, domain)
}

func (g guardHV) CreateSnapshot(ctx context.Context, domain string, spec virt.SnapshotSpec) (virt.Snapshot, error) {
	g.g.check("CreateSnapshot")
	return g.hv.CreateSnapshot(ctx, domain, spec)
}

func (g guardHV) RevertSnapshot(ctx context.Context, domain, name string) error {
	g.g.check("RevertSnapshot")
	return g.hv.RevertSnapshot(ctx, domain, name)
}

func (g guardHV) DeleteSnapshot(ctx context.Context, domain, name string) error {
	g.g.check("DeleteSnapshot")
	return g.hv.DeleteSnapshot(ctx, domain, name)
}

func (g guardHV) Events(ctx context.Context) (<-chan virt.Event, error) {
	g.g.check("Events")
	return g.hv.Events(ctx)
}

func (g guardHV) AgentCommand(ctx context.Context, domain string, command []byte, timeout time.Duration) ([]byte, error) {
	g.g.check("AgentCommand")
	return g.hv.AgentCommand(ctx, domain, command, timeout)
}

// No package but the observer talks to the host while planning: plan
// (with keys, door probes, filters that exist, running VMs, snapshots,
// image blocks), plan for a remote host (pool lookups, uploads) and
// destroy, through connections that fail the test on any call made
// outside observe.go. The listen probe is guarded the same way.
func TestPlanningTalksToHostsOnlyThroughTheObserver(t *testing.T) {
	ctx := context.Background()
	g := &guard{t: t}
	probes := 0
	probe := func(addr string) error {
		probes++
		g.check("ProbeListen " + addr)
		return nil
	}
	fp := testFingerprinter(t)
	h := newFakeHost(t)
	opts := Options{DefaultURI: "test:///fake", ProbeListen: probe, ReadKeys: true, keys: sourceKeys(seatGetenv, fp)}
	src := strings.Replace(tableImageProfile, "%AGENT%", "", 1) + `
license "office" {
  product_key = env("KEY_B")
  edition     = "professional"
  channel     = "retail"
}
vm "lic" {
  os     = "win7-x64"
  memory = "1GiB"
  disk {
    image   = "/images/golden.qcow2"
    prepare = "none"
  }
  licenses = [license.office]
}
`
	// The plain profile first, applied without the guard, so that the
	// next plans see filters, running VMs, snapshots and seats.
	base := loadProfile(t, "guarded", strings.Replace(tableProfile, "%AGENT%", "", 1))
	apply(t, plan(t, base, h))

	for _, p := range []string{strings.Replace(tableProfile, "%AGENT%", "", 1), src} {
		prof := loadProfile(t, "guarded", p)
		hps, _, err := planProfile(ctx, prof, g.connector(h), opts)
		if err != nil {
			t.Fatal(err)
		}
		closeAll(hps)
	}
	if probes == 0 {
		t.Error("the listen probe was never called: the test proves nothing about it")
	}

	// A remote host: ISO pools looked up, a golden image to upload.
	dir := t.TempDir()
	local := filepath.Join(dir, "golden.qcow2")
	if err := os.WriteFile(local, append([]byte("QFI\xfb"), make([]byte, 508)...), 0o644); err != nil {
		t.Fatal(err)
	}
	remote := loadProfile(t, "remote", `
vm "fresh" {
  os = "win7-x64"
  disk {
    install {
      iso     = "/isos/w7.iso"
      edition = "professional"
    }
  }
}
vm "clone" {
  os = "win7-x64"
  disk {
    image   = "`+local+`"
    prepare = "none"
  }
}
`)
	hps, _, err := planProfile(ctx, remote, g.connector(newFakeHost(t)), Options{DefaultURI: remoteURI})
	if err != nil {
		t.Fatal(err)
	}
	closeAll(hps)

	dps, err := planProfileDestroy(ctx, base, g.connector(h), Options{DefaultURI: "test:///fake"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(dps)
	if g.calls == 0 {
		t.Fatal("no hypervisor call went through the guard: the test proves nothing")
	}
}

// makePlan reads nothing but its arguments: once observed, the host and
// the files can change and the plan of that observation stays the same,
// while a new observation sees the change.
func TestMakePlanDependsOnlyOnTheObservation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	iso := filepath.Join(dir, "w7.iso")
	if err := os.WriteFile(iso, []byte("CD001"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(tableProfile, "%AGENT%", "", 1) + `
vm "fresh" {
  os = "win7-x64"
  disk {
    install {
      iso     = "` + iso + `"
      edition = "professional"
    }
  }
}
`
	h := newFakeHost(t)
	apply(t, plan(t, loadProfile(t, "pure", strings.Replace(tableProfile, "%AGENT%", "", 1)), h))
	p := loadProfile(t, "pure", src)
	part, o := observeProfile(t, p, h, Options{DefaultURI: "test:///fake"})
	render := func(o *observation) string {
		_, pl, diags, err := makePlan(part, part.Hosts[0], "test:///fake", o, planSettings{})
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(pl)
		return string(js) + diagText(diags)
	}
	before := render(o)

	// The world changes: the ISO goes, the VM stops, the network goes.
	if err := os.Remove(iso); err != nil {
		t.Fatal(err)
	}
	if err := h.DestroyDomain(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteNetwork(ctx, "lvm-lab"); err != nil {
		t.Fatal(err)
	}
	if again := render(o); again != before {
		t.Errorf("the plan of one observation changed with the world:\nbefore %s\nafter  %s", before, again)
	}
	_, fresh := observeProfile(t, p, h, Options{DefaultURI: "test:///fake"})
	now := render(fresh)
	if now == before || !strings.Contains(now, "Installation ISO not found") || !strings.Contains(now, `"name":"lvm-lab","action":"create"`) {
		t.Errorf("a new observation does not see the change:\n%s", now)
	}
}

func (g guardHV) SaveDomain(ctx context.Context, domain, pool, volume string, opts virt.SaveOptions) (virt.Volume, error) {
	g.g.check("SaveDomain")
	return g.hv.SaveDomain(ctx, domain, pool, volume, opts)
}

func (g guardHV) PrepareLayer(ctx context.Context, spec virt.VolumeSpec, mark string) (virt.Volume, error) {
	g.g.check("PrepareLayer")
	return g.hv.PrepareLayer(ctx, spec, mark)
}

func (g guardHV) SnapshotToLayer(ctx context.Context, domain string, spec virt.LayerSnapshotSpec) (virt.Snapshot, error) {
	g.g.check("SnapshotToLayer")
	return g.hv.SnapshotToLayer(ctx, domain, spec)
}

func (g guardHV) RestoreDomain(ctx context.Context, domain, pool, volume string, opts virt.SaveOptions) error {
	g.g.check("RestoreDomain")
	return g.hv.RestoreDomain(ctx, domain, pool, volume, opts)
}

func (g guardHV) Screenshot(ctx context.Context, domain string) (virt.Screenshot, error) {
	g.g.check("Screenshot")
	return g.hv.Screenshot(ctx, domain)
}

func (g guardHV) OpenGraphics(ctx context.Context, domain string) (net.Conn, error) {
	g.g.check("OpenGraphics")
	return g.hv.OpenGraphics(ctx, domain)
}

func (g guardHV) DiskWrites(ctx context.Context, domain string) (int64, error) {
	g.g.check("DiskWrites")
	return g.hv.DiskWrites(ctx, domain)
}
