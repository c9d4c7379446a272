package orchestrator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
	"github.com/legacyvm/legacyvm/profiles"
)

const golden = "/images/golden.qcow2"

// labProfile is a small profile: two linked clones on one network with a
// baseline policy, and one VM without network.
const labProfile = `
network "lab" {
  subnet = "10.80.0.0/24"
  dhcp   = true
  allow "rdp" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 3389
  }
}
snapshot_policy "p" {
  memory = true
}
vm "web" {
  count  = 2
  os     = "win7-x64"
  cpus   = 2
  memory = "%MEM%"
  disk {
    image   = "%IMAGE%"
    prepare = "none"
  }
  network         = network.lab
  snapshot_policy = snapshot_policy.p
}
vm "solo" {
  os     = "win7-x86"
  memory = "2GiB"
  disk {
    image   = "/images/golden.qcow2"
    prepare = "none"
  }
}
`

func loadProfile(t *testing.T, name, src string, repl ...string) *profiles.Profile {
	t.Helper()
	r := strings.NewReplacer(append([]string{"%MEM%", "2GiB", "%IMAGE%", golden}, repl...)...)
	// Replacements given by the caller come after the defaults, so apply
	// them first.
	if len(repl) > 0 {
		src = strings.NewReplacer(repl...).Replace(src)
	}
	src = r.Replace(src)
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := profiles.Load(dir, profiles.LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
	if diags.HasErrors() {
		t.Fatalf("load profile: %s", diags.Error())
	}
	return p
}

func newFakeHost(t *testing.T) *fake.Hypervisor {
	t.Helper()
	h := fake.New(fake.WithFile(golden, "qcow2", 10<<30))
	if _, err := h.EnsurePool(context.Background(), "default", "/var/lib/libvirt/images"); err != nil {
		t.Fatal(err)
	}
	return h
}

func connector(h virt.Hypervisor) Connector {
	return func(ctx context.Context, uri string) (virt.Hypervisor, error) { return nopClose{h}, nil }
}

// nopClose keeps the shared fake open across plans.
type nopClose struct{ virt.Hypervisor }

func (nopClose) Close() error { return nil }

func plan(t *testing.T, p *profiles.Profile, h virt.Hypervisor) *HostPlan {
	t.Helper()
	hps, diags, err := planProfile(context.Background(), p, connector(h), Options{DefaultURI: "test:///fake"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if diags.HasErrors() {
		t.Fatalf("plan diagnostics: %s", diags.Error())
	}
	if len(hps) != 1 {
		t.Fatalf("got %d host plans, want 1", len(hps))
	}
	return hps[0]
}

func apply(t *testing.T, hp *HostPlan) []Result {
	t.Helper()
	e := &engine{HV: hp.HV, Parallelism: 3, PollInterval: 1}
	res, err := e.Apply(context.Background(), hp.Plan)
	if err != nil {
		t.Fatalf("apply: %v (results %+v)", err, res)
	}
	return res
}

func changesByName(p *Plan) map[string]Change {
	m := map[string]Change{}
	for _, c := range p.Changes {
		m[string(c.Kind)+"/"+c.Name] = c
	}
	return m
}

func TestApplyCreatesEverythingThenPlansNothing(t *testing.T) {
	h := newFakeHost(t)
	p := loadProfile(t, "lab", labProfile)
	hp := plan(t, p, h)
	got := changesByName(hp.Plan)
	for _, key := range []string{"pool/" + imagePoolName("/images"), "network/lvm-lab", "filter/lvm-lab", "vm/web-1", "vm/web-2", "vm/solo"} {
		if got[key].Action != ActionCreate {
			t.Errorf("%s: action %q, want create (plan %+v)", key, got[key].Action, hp.Plan.Changes)
		}
	}
	apply(t, hp)

	ctx := context.Background()
	for _, name := range []string{"web-1", "web-2", "solo"} {
		d, err := h.GetDomain(ctx, name)
		if err != nil {
			t.Fatalf("domain %s: %v", name, err)
		}
		if d.State != virt.StateRunning {
			t.Errorf("%s is %s, want running", name, d.State)
		}
		if d.Metadata == nil || d.Metadata.Profile != "lab" || !d.Metadata.Provisioned {
			t.Errorf("%s metadata = %+v, want profile lab, provisioned", name, d.Metadata)
		}
	}
	// Baselines with memory for the VMs that have the policy; none for solo.
	for name, want := range map[string]int{"web-1": 1, "web-2": 1, "solo": 0} {
		snaps, err := h.ListSnapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(snaps) != want {
			t.Fatalf("%s has %d snapshots, want %d", name, len(snaps), want)
		}
		if want == 1 {
			s := snaps[0]
			desc, ok := snapmeta.ParseDescription(s.Description)
			// A memory baseline: a disk snapshot plus the memory image.
			if s.Name != "clean" || s.Memory || !ok || desc.Kind != snapmeta.Baseline || desc.MemoryImage != memoryImageVolumeName(name) || !snapmeta.Classify(s, "clean").Memory {
				t.Errorf("%s baseline = %+v (desc %+v)", name, s, desc)
			}
		}
	}
	// Linked clones: overlays of the golden image.
	vols, err := h.ListVolumes(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 7 {
		t.Fatalf("volumes %+v, want 7 (three disks, two memory images, the two layers the memory-baseline VMs run on)", vols)
	}
	for _, v := range vols {
		if strings.HasSuffix(v.Name, "-baseline.mem") {
			if v.Format != "raw" || v.AllocationBytes < 2<<30 {
				t.Errorf("memory image %s: %+v, want raw, at least the 2 GiB of memory", v.Name, v)
			}
			continue
		}
		if vm, ok := strings.CutSuffix(strings.TrimPrefix(v.Name, "lvm-"), "-live.qcow2"); ok {
			// The layer the VM runs on, over its system disk (frozen:
			// the baseline's disk state).
			if want := "/var/lib/libvirt/images/lvm-" + vm + "-system.qcow2"; v.BackingPath != want || v.Format != "qcow2" {
				t.Errorf("layer %s: %+v, want a qcow2 overlay of %s", v.Name, v, want)
			}
			d, err := h.GetDomain(ctx, vm)
			if sys, ok := systemDisk(d); err != nil || !ok || sys.Path != v.Path {
				t.Errorf("%s runs on %+v (%v), want its layer %s", vm, d.Disks, err, v.Path)
			}
			continue
		}
		if v.BackingPath != golden || v.CapacityBytes != 10<<30 {
			t.Errorf("volume %s: backing %q capacity %d", v.Name, v.BackingPath, v.CapacityBytes)
		}
	}
	// The network's reservations match the filter parameters of each NIC.
	n, err := h.GetNetwork(ctx, "lvm-lab")
	if err != nil {
		t.Fatal(err)
	}
	if n.ForwardMode != "" || len(n.DHCPHosts) != 2 {
		t.Fatalf("network %+v", n)
	}
	for _, dh := range n.DHCPHosts {
		d, _ := h.GetDomain(ctx, dh.Name)
		if len(d.Interfaces) != 1 || d.Interfaces[0].MAC != dh.MAC || d.Interfaces[0].Filter != "lvm-lab" ||
			len(d.Interfaces[0].FilterParams) != 1 || d.Interfaces[0].FilterParams[0].Value != dh.IP.String() {
			t.Errorf("%s interface %+v does not match reservation %+v", dh.Name, d.Interfaces, dh)
		}
	}

	hp2 := plan(t, p, h)
	if hp2.Plan.HasChanges() {
		t.Fatalf("second plan has changes: %+v", hp2.Plan.Changes)
	}
}

func TestPlanUpdateReplaceDelete(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))

	// Memory: update in place, restart needed because the VMs run.
	hp := plan(t, loadProfile(t, "lab", labProfile, "%MEM%", "4GiB"), h)
	c := changesByName(hp.Plan)["vm/web-1"]
	if c.Action != ActionUpdate || !c.RestartNeeded || c.Destructive || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "memory 2 GiB -> 4 GiB") {
		t.Fatalf("memory change planned as %+v", c)
	}
	res := apply(t, hp)
	var noted bool
	for _, r := range res {
		if r.Object == "web-1" && len(r.Notes) > 0 {
			noted = true
		}
	}
	if !noted {
		t.Errorf("no restart note in results %+v", res)
	}
	d, _ := h.GetDomain(ctx, "web-1")
	if d.MemoryBytes != 2<<30 {
		// The fake keeps the live definition of a running domain, as libvirt
		// does: the persistent one changed.
		t.Logf("live memory %d", d.MemoryBytes)
	}
	snaps, _ := h.ListSnapshots(ctx, "web-1")
	if len(snaps) != 1 {
		t.Errorf("update in place lost snapshots: %+v", snaps)
	}

	// Golden image: replace, with the reason, destructive.
	h.PutFile("/images/golden2.qcow2", "qcow2", 10<<30)
	hp = plan(t, loadProfile(t, "lab", labProfile, "%MEM%", "4GiB", "%IMAGE%", "/images/golden2.qcow2"), h)
	c = changesByName(hp.Plan)["vm/web-2"]
	if c.Action != ActionReplace || !c.Destructive || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "disk image changed: /images/golden.qcow2 -> /images/golden2.qcow2") {
		t.Fatalf("image change planned as %+v", c)
	}
	apply(t, hp)
	vols, _ := h.ListVolumes(ctx, "default")
	for _, v := range vols {
		if strings.HasPrefix(v.Name, "lvm-web") && strings.HasSuffix(v.Name, "-system.qcow2") && v.BackingPath != "/images/golden2.qcow2" {
			t.Errorf("%s still backed by %s", v.Name, v.BackingPath)
		}
	}

	// Removing the VM block deletes its instances and their disks.
	src := strings.Replace(labProfile, "count  = 2", "count  = 1", 1)
	hp = plan(t, loadProfile(t, "lab", src, "%MEM%", "4GiB", "%IMAGE%", "/images/golden2.qcow2"), h)
	c = changesByName(hp.Plan)["vm/web-2"]
	if c.Action != ActionDelete || !c.Destructive {
		t.Fatalf("removed instance planned as %+v", c)
	}
	apply(t, hp)
	if _, err := h.GetDomain(ctx, "web-2"); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("web-2 still exists: %v", err)
	}
	if _, err := h.InternalSnapshots("/var/lib/libvirt/images/lvm-web-2-system.qcow2"); err == nil {
		t.Errorf("web-2's disk still exists")
	}
}

func TestDestroyRemovesOnlyWhatTheProfileOwns(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))
	// Someone else's objects with similar names.
	if _, err := h.DefineNetwork(ctx, virt.NetworkSpec{Name: "lvm-lab2", UUID: "5a0b8e4e-1f6a-4c1e-9f55-0d6a3c2b1a01", Bridge: "lvm-lab2", MAC: "52:54:00:aa:bb:cc", Metadata: &virt.Metadata{Profile: "someone-else"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DefineDomain(ctx, virt.DomainSpec{Name: "web-3", UUID: "5a0b8e4e-1f6a-4c1e-9f55-0d6a3c2b1a02", Accel: virt.AccelTCG, Arch: "x86_64", Machine: "pc", VCPUs: 1, MemoryBytes: 1 << 30, Metadata: &virt.Metadata{Profile: "someone-else"}}); err != nil {
		t.Fatal(err)
	}
	other := loadProfile(t, "other", `
vm "x" {
  os = "win7-x64"
  disk {
    image   = "/images/golden.qcow2"
    prepare = "none"
  }
}`)
	apply(t, plan(t, other, h))

	hps, err := planProfileDestroy(ctx, p, connector(h), Options{DefaultURI: "test:///fake"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{HV: h, Parallelism: 2, PollInterval: 1}
	if _, err := e.Apply(ctx, hps[0].Plan); err != nil {
		t.Fatal(err)
	}
	doms, _ := h.ListDomains(ctx)
	var names []string
	for _, d := range doms {
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "web-3,x" {
		t.Errorf("domains left: %v, want web-3,x", names)
	}
	nets, _ := h.ListNetworks(ctx)
	if len(nets) != 1 || nets[0].Name != "lvm-lab2" {
		t.Errorf("networks left: %+v", nets)
	}
	filters, _ := h.ListFilters(ctx)
	for _, f := range filters {
		if strings.HasPrefix(f.Name, "lvm-lab") {
			t.Errorf("filter %s left behind", f.Name)
		}
	}
	vols, _ := h.ListVolumes(ctx, "default")
	if len(vols) != 1 || vols[0].Name != "lvm-x-system.qcow2" {
		t.Errorf("volumes left: %+v", vols)
	}
	// The golden image is untouched.
	if _, err := h.VolumeByPath(ctx, golden); err != nil {
		t.Errorf("golden image: %v", err)
	}
}

func TestPlanRefusesObjectsItDoesNotOwn(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	if _, err := h.DefineDomain(ctx, virt.DomainSpec{Name: "solo", UUID: "5a0b8e4e-1f6a-4c1e-9f55-0d6a3c2b1a03", Accel: virt.AccelTCG, Arch: "x86_64", Machine: "pc", VCPUs: 1, MemoryBytes: 1 << 30, Metadata: &virt.Metadata{Profile: "someone-else"}}); err != nil {
		t.Fatal(err)
	}
	p := loadProfile(t, "lab", labProfile)
	_, diags, err := planProfile(ctx, p, connector(h), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !diags.HasErrors() || !strings.Contains(diags[0].Summary, "A domain named solo already exists") {
		t.Fatalf("diags = %v", diags)
	}
	if diags[0].Subject == nil || diags[0].Subject.Start.Line == 0 {
		t.Errorf("diagnostic not located: %+v", diags[0])
	}
}

func TestFailedVMIsRolledBackOthersSucceed(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	boom := errors.New("injected")
	h.FailOn("SnapshotToLayer", "web-2", boom)
	p := loadProfile(t, "lab", labProfile)
	hp := plan(t, p, h)
	e := &engine{HV: h, Parallelism: 3, PollInterval: 1}
	_, err := e.Apply(ctx, hp.Plan)
	var ae *ApplyError
	if !errors.As(err, &ae) || len(ae.Failed) != 1 || ae.Failed[0].Object != "web-2" {
		t.Fatalf("apply error = %v", err)
	}
	if _, err := h.GetDomain(ctx, "web-2"); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("web-2 not rolled back: %v", err)
	}
	vols, _ := h.ListVolumes(ctx, "default")
	for _, v := range vols {
		if strings.Contains(v.Name, "web-2") {
			t.Errorf("volume %s left after rollback", v.Name)
		}
	}
	if d, err := h.GetDomain(ctx, "web-1"); err != nil || !d.Metadata.Provisioned {
		t.Errorf("web-1 should be provisioned: %v %+v", err, d.Metadata)
	}
	// The next apply converges.
	h.ClearFailures()
	apply(t, plan(t, p, h))
	if hp := plan(t, p, h); hp.Plan.HasChanges() {
		t.Fatalf("not converged: %+v", hp.Plan.Changes)
	}
}

// An apply killed after the domain was defined but before it finished leaves
// an unprovisioned domain: the next plan replaces it, not destructively, and
// converges.
func TestInterruptedProvisioningIsReplaced(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "lab", labProfile)
	hp := plan(t, p, h)
	// Simulate the kill: run only the first steps of web-1 by hand.
	var dv *desiredVM
	for _, v := range hp.desired.VMs {
		if v.Spec.Name == "web-1" {
			dv = v
		}
	}
	e := &engine{HV: h, Parallelism: 1, PollInterval: 1}
	apply(t, &HostPlan{HV: h, Plan: &Plan{Profile: "lab", Changes: filterKinds(hp.Plan.Changes, KindPool, KindNetwork, KindFilter)}})
	spec := dv.Spec
	md := *spec.Metadata
	spec.Metadata = &md
	if _, err := h.DefineDomain(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := e.createSystemVolume(ctx, dv); err != nil {
		t.Fatal(err)
	}
	hp = plan(t, p, h)
	c := changesByName(hp.Plan)["vm/web-1"]
	if c.Action != ActionReplace || c.Destructive || !strings.Contains(c.Reasons[0].String(), "interrupted") {
		t.Fatalf("interrupted VM planned as %+v", c)
	}
	apply(t, hp)
	if hp := plan(t, p, h); hp.Plan.HasChanges() {
		t.Fatalf("not converged: %+v", hp.Plan.Changes)
	}
}

func filterKinds(cs []Change, kinds ...Kind) []Change {
	var out []Change
	for _, c := range cs {
		for _, k := range kinds {
			if c.Kind == k {
				out = append(out, c)
			}
		}
	}
	return out
}

func TestTamperingIsPlannedAsRepair(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "lab", labProfile)
	hp := plan(t, p, h)
	apply(t, hp)

	// Remove the filter reference from web-1 "by hand" and add a forward
	// mode to the network.
	d, _ := h.GetDomain(ctx, "web-1")
	spec := desiredSpec(hp, "web-1")
	spec.Interfaces = append([]virt.InterfaceSpec(nil), spec.Interfaces...)
	spec.Interfaces[0].Filter = ""
	spec.Interfaces[0].FilterParams = nil
	spec.Metadata = d.Metadata
	if _, err := h.DefineDomain(ctx, spec); err != nil {
		t.Fatal(err)
	}
	hp2 := plan(t, p, h)
	c := changesByName(hp2.Plan)["vm/web-1"]
	if c.Action != ActionUpdate || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "no traffic filter") {
		t.Fatalf("tampered VM planned as %+v", c)
	}
	apply(t, hp2)
	if hp3 := plan(t, p, h); hp3.Plan.HasChanges() {
		t.Fatalf("repair did not converge: %+v", hp3.Plan.Changes)
	}
}

// A filter removed from a running VM's live interface (virsh update-device
// --live), or from its definition, is planned as an update without
// restart; apply binds it again on the running interface and the VM keeps
// running.
func TestRemovedFilterIsReboundLive(t *testing.T) {
	for _, where := range []string{"live", "definition and live"} {
		t.Run(where, func(t *testing.T) {
			h := newFakeHost(t)
			ctx := context.Background()
			p := loadProfile(t, "lab", labProfile)
			apply(t, plan(t, p, h))
			d, _ := h.GetDomain(ctx, "web-1")
			if d.State != virt.StateRunning {
				t.Fatalf("web-1 is %s", d.State)
			}
			mac := d.Interfaces[0].MAC
			if where == "live" {
				if err := h.RemoveLiveFilter("web-1", mac); err != nil {
					t.Fatal(err)
				}
			} else if err := h.SetInterfaceFilter(ctx, "web-1", mac, "", nil); err != nil {
				t.Fatal(err)
			}
			hp := plan(t, p, h)
			c := changesByName(hp.Plan)["vm/web-1"]
			if c.Action != ActionUpdate || c.RestartNeeded || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "no traffic filter bound (removed outside legacyvm): apply binds lvm-lab again, live") {
				t.Fatalf("planned as %+v", c)
			}
			apply(t, hp)
			b, _ := h.FilterBindings(ctx)
			found := false
			for _, x := range b {
				found = found || x.Owner == "web-1" && x.Filter == "lvm-lab"
			}
			after, _ := h.GetDomain(ctx, "web-1")
			if !found || after.State != virt.StateRunning || after.UUID != d.UUID {
				t.Fatalf("after apply: bindings %+v, state %s", b, after.State)
			}
			if hp := plan(t, p, h); hp.Plan.HasChanges() {
				t.Fatalf("repair did not converge: %+v", hp.Plan.Changes)
			}
		})
	}
}

func desiredSpec(hp *HostPlan, name string) virt.DomainSpec {
	for _, v := range hp.desired.VMs {
		if v.Spec.Name == name {
			return v.Spec
		}
	}
	panic("no desired VM " + name)
}

func TestReservationsStayWhenVMsAreAdded(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))
	before, _ := h.GetNetwork(ctx, "lvm-lab")
	src := strings.Replace(labProfile, "count  = 2", "count  = 5", 1)
	apply(t, plan(t, loadProfile(t, "lab", src), h))
	after, _ := h.GetNetwork(ctx, "lvm-lab")
	if len(after.DHCPHosts) != 5 {
		t.Fatalf("reservations %+v", after.DHCPHosts)
	}
	ips := map[string]bool{}
	for _, a := range after.DHCPHosts {
		if ips[a.IP.String()] {
			t.Errorf("duplicate address %s", a.IP)
		}
		ips[a.IP.String()] = true
		for _, b := range before.DHCPHosts {
			if a.Name == b.Name && a.IP != b.IP {
				t.Errorf("%s moved from %s to %s", a.Name, b.IP, a.IP)
			}
		}
	}
}

func TestParallelApplyIsBounded(t *testing.T) {
	h := newFakeHost(t)
	src := strings.Replace(labProfile, "count  = 2", "count  = 6", 1)
	p := loadProfile(t, "lab", src)
	hp := plan(t, p, h)
	var mu sync.Mutex
	active, peak := map[string]bool{}, 0
	e := &engine{HV: h, Parallelism: 2, PollInterval: 1, Hook: event.Func(func(ev event.Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Kind != event.KindVM {
			return
		}
		switch {
		case ev.Step == event.StepDefine && ev.Phase == event.Begin:
			active[ev.Object] = true
		case ev.Finished():
			delete(active, ev.Object)
		}
		if len(active) > peak {
			peak = len(active)
		}
	})}
	if _, err := e.Apply(context.Background(), hp.Plan); err != nil {
		t.Fatal(err)
	}
	if peak > 2 || peak < 1 {
		t.Errorf("peak parallel VMs %d, want 1..2", peak)
	}
}

// A secret that cannot be read stops apply before it changes anything.
func TestMissingSecretStopsApplyBeforeAnyChange(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "sec", `
license "l" {
  product_key = env("LVM_TEST_MISSING_KEY")
  edition     = "professional"
  channel     = "retail"
}
network "sec" {
  subnet = "10.81.0.0/24"
  dhcp   = true
}
vm "s" {
  os = "win7-x64"
  disk {
    image = "/images/golden.qcow2"
  }
  windows {
    admin_password = env("LVM_TEST_MISSING_PW")
  }
  licenses = [license.l]
  network  = network.sec
}`)
	hp := plan(t, p, h)
	e := &engine{HV: h, Getenv: func(k string) (string, bool) {
		if k == "LVM_TEST_MISSING_KEY" {
			return "BCDFG-HJKMP-QRTVW-XY234-6789B", true
		}
		return "", false
	}}
	_, err := e.Apply(ctx, hp.Plan)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "LVM_TEST_MISSING_PW") {
		t.Fatalf("apply error = %v, want the unreadable password named before any change", err)
	}
	if strings.Contains(err.Error(), "BCDFG") {
		t.Fatalf("the key leaked into the error: %v", err)
	}
	nets, _ := h.ListNetworks(ctx)
	doms, _ := h.ListDomains(ctx)
	if len(nets) != 0 || len(doms) != 0 {
		t.Errorf("apply changed the host: networks %d, domains %d", len(nets), len(doms))
	}
}

// stop presses the power button again while the guest keeps running, then
// powers it off when the timeout is over.
func TestStopAsksAgainThenForces(t *testing.T) {
	h := fake.New(fake.WithFile(golden, "qcow2", 10<<30), fake.IgnoreACPI())
	ctx := context.Background()
	if _, err := h.EnsurePool(ctx, "default", "/var/lib/libvirt/images"); err != nil {
		t.Fatal(err)
	}
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))
	e := &engine{HV: h, PollInterval: time.Millisecond, ReportInterval: 20 * time.Millisecond}
	res := e.Stop(ctx, []string{"solo"}, 200*time.Millisecond, false, false)
	if res[0].Err != "" {
		t.Fatalf("stop: %s", res[0].Err)
	}
	if n := h.ShutdownRequests("solo"); n < 3 {
		t.Errorf("the power button was pressed %d times, want it pressed again while the guest ran", n)
	}
	if d, _ := h.GetDomain(ctx, "solo"); d.State != virt.StateShutoff {
		t.Errorf("solo is %s after stop, want shutoff (forced)", d.State)
	}
	// --no-force leaves it running and fails.
	if r := e.Start(ctx, []string{"solo"}); r[0].Err != "" {
		t.Fatal(r[0].Err)
	}
	res = e.Stop(ctx, []string{"solo"}, 50*time.Millisecond, false, true)
	if res[0].Err == "" {
		t.Error("stop --no-force succeeded although the guest ignored the power button")
	}
	if d, _ := h.GetDomain(ctx, "solo"); d.State != virt.StateRunning {
		t.Errorf("solo is %s after stop --no-force, want running", d.State)
	}
}

// A VM whose system disk is not qcow2 (changed by hand with virsh: the
// renderer never writes one) cannot take internal snapshots: plan says so,
// located at the vm block. Planning is pure, so the observation is edited.
func TestPlanRefusesSnapshotsOnRawDisk(t *testing.T) {
	h := newFakeHost(t)
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))
	hp := plan(t, p, h)
	d := hp.observed.Domains["web-1"]
	d.Disks = append([]virt.DiskSpec(nil), d.Disks...)
	d.Disks[0].Format = "raw"
	hp.observed.Domains["web-1"] = d
	_, diags := planChanges(p, hp.desired, hp.observed)
	if !diags.HasErrors() || diags[0].Summary != "Disk cannot take snapshots" || diags[0].Subject == nil || diags[0].Subject.Start.Line == 0 {
		t.Fatalf("diags = %v", diags)
	}
	if !strings.Contains(diags[0].Detail, "web-1") || !strings.Contains(diags[0].Detail, "raw") {
		t.Errorf("detail does not name the VM and format: %s", diags[0].Detail)
	}
	// solo has no policy: a raw disk is its owner's business.
	s := hp.observed.Domains["solo"]
	s.Disks = append([]virt.DiskSpec(nil), s.Disks...)
	s.Disks[0].Format = "raw"
	hp.observed.Domains["solo"] = s
	_, diags = planChanges(p, hp.desired, hp.observed)
	if len(diags) != 1 {
		t.Errorf("diags = %v, want only web-1's", diags)
	}
}

// enforceIsolation (the daemon's verify_every pass) binds a filter removed
// from a running VM's interface again, without a profile and without a
// restart, and says what it repaired.
func TestEnforceIsolationRebindsLive(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))
	d, _ := h.GetDomain(ctx, "web-1")
	if err := h.RemoveLiveFilter("web-1", d.Interfaces[0].MAC); err != nil {
		t.Fatal(err)
	}
	res, err := enforceIsolation(ctx, h, VerifyOptions{URI: "test:///fake"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Repaired) != 1 || !strings.HasPrefix(res.Repaired[0], "web-1 ") || !res.Verification.OK || len(res.Unrepaired) != 0 {
		t.Fatalf("enforcement %+v (verification ok %v)", res, res.Verification.OK)
	}
	after, _ := h.GetDomain(ctx, "web-1")
	if after.State != virt.StateRunning {
		t.Fatalf("web-1 is %s", after.State)
	}
	// Nothing to repair: nothing is touched.
	res, err = enforceIsolation(ctx, h, VerifyOptions{URI: "test:///fake"})
	if err != nil || len(res.Repaired) != 0 || !res.Verification.OK {
		t.Fatalf("second pass: %+v, %v", res, err)
	}
}
