package orchestrator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

// tickHost is a fake host with one provisioned VM "vm-1" under policy p,
// its baseline, and the scheduled snapshots taken at autos.
func tickHost(t *testing.T, p *virt.PolicyRef, created time.Time, autos ...time.Time) *fake.Hypervisor {
	t.Helper()
	ctx := context.Background()
	h := fake.New(fake.WithFile("/img/g.qcow2", "qcow2", 1<<30))
	if _, err := h.EnsurePool(ctx, "default", "/pool"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateVolume(ctx, virt.VolumeSpec{Pool: "default", Name: "vm-1.qcow2", Format: "qcow2", CapacityBytes: 1 << 30, BackingPath: "/img/g.qcow2", BackingFormat: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	_, err := h.DefineDomain(ctx, virt.DomainSpec{Name: "vm-1", UUID: "6a0b8e4e-1f6a-4c1e-9f55-0d6a3c2b1a77", Accel: virt.AccelTCG, Arch: "x86_64", Machine: "pc", VCPUs: 1, MemoryBytes: 1 << 30,
		Disks:    []virt.DiskSpec{{Device: virt.DeviceDisk, Bus: "sata", Target: "sda", Path: "/pool/vm-1.qcow2", Format: "qcow2"}},
		Metadata: &virt.Metadata{Profile: "sim", VM: "vm", Instance: "vm-1", Created: created, Provisioned: true, Policy: p}})
	if err != nil {
		t.Fatal(err)
	}
	base := snapmeta.Description{Kind: snapmeta.Baseline, Policy: p.Name}
	if _, err := h.CreateSnapshot(ctx, "vm-1", virt.SnapshotSpec{Name: p.Baseline, Description: base.String()}); err != nil {
		t.Fatal(err)
	}
	for _, at := range autos {
		d := snapmeta.Description{Kind: snapmeta.Auto, Policy: p.Name}
		if _, err := h.CreateSnapshot(ctx, "vm-1", virt.SnapshotSpec{Name: autoSnapshotName(p.Name, at), Description: d.String()}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func snapNames(t *testing.T, h *fake.Hypervisor, vm string) []string {
	t.Helper()
	snaps, err := h.ListSnapshots(context.Background(), vm)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range snaps {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

// A scheduled snapshot that cannot be taken (disk full) must not cost the
// restore point retention would have made room for: with keep = 1 the tick
// used to prune the only scheduled snapshot first and then fail to create
// its successor.
func TestTickFailedCreateKeepsTheOnlyScheduledSnapshot(t *testing.T) {
	ctx := context.Background()
	at := func(h int) time.Time { return time.Date(2026, 5, 1, h, 0, 0, 0, time.UTC) }
	p := &virt.PolicyRef{Name: "hourly", Baseline: "clean", Schedule: "0 * * * *", Keep: 1}
	h := tickHost(t, p, at(0).Add(-time.Minute), at(1))
	before := snapNames(t, h, "vm-1")

	h.FailOn("CreateSnapshot", "vm-1", errors.New("no space left on device"))
	e := &engine{HV: h, Parallelism: 1}
	res, err := e.RunDue(ctx, nil, at(2), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Err == "" || res[0].Created != "" || len(res[0].Pruned) != 0 {
		t.Fatalf("tick with a failing create = %+v, want an error, nothing created, nothing pruned", res)
	}
	if !strings.Contains(res[0].Err, "no space left on device") {
		t.Errorf("error %q does not say why the create failed", res[0].Err)
	}
	if got := snapNames(t, h, "vm-1"); !slices.Equal(got, before) {
		t.Fatalf("after a failed create the VM has %v, want %v (the only scheduled snapshot kept)", got, before)
	}

	// Once the create works again, the tick takes the new one and only
	// then prunes the old one.
	h.ClearFailures()
	res, err = e.RunDue(ctx, nil, at(2), false)
	if err != nil {
		t.Fatal(err)
	}
	want := TickResult{VM: "vm-1", Policy: "hourly", Created: autoSnapshotName("hourly", at(2)), Pruned: []string{autoSnapshotName("hourly", at(1))}}
	if len(res) != 1 || res[0].Err != "" || res[0].Created != want.Created || !slices.Equal(res[0].Pruned, want.Pruned) {
		t.Fatalf("tick = %+v, want %+v", res, want)
	}
	if got, w := snapNames(t, h, "vm-1"), []string{autoSnapshotName("hourly", at(2)), "clean"}; !slices.Equal(got, w) {
		t.Fatalf("snapshots = %v, want %v", got, w)
	}
}

// Expiry follows the policy the VM has now, not the expiry written into the
// snapshot's description when it was taken.
func TestExpiryFollowsTheCurrentPolicy(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	taken := now.Add(-40 * day)
	recorded := func(maxAge time.Duration) *time.Time {
		if maxAge == 0 {
			return nil
		}
		e := taken.Add(maxAge)
		return &e
	}
	for _, c := range []struct {
		name       string
		takenUnder time.Duration // max_age when the snapshot was taken (0: none)
		now        string        // max_age now ("": removed)
		pruned     bool
	}{
		{"max_age removed", 30 * day, "", false},
		{"max_age lengthened past its age", 30 * day, (60 * day).String(), false},
		{"max_age shortened below its age", 60 * day, (20 * day).String(), true},
		{"max_age added", 0, (30 * day).String(), true},
		{"max_age unchanged and expired", 30 * day, (30 * day).String(), true},
		{"max_age unchanged, not yet expired", 50 * day, (50 * day).String(), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &virt.PolicyRef{Name: "daily", Baseline: "clean", Keep: 10, MaxAge: c.now}
			desc := snapmeta.Description{Kind: snapmeta.Auto, Policy: "daily", Expires: recorded(c.takenUnder)}
			name := autoSnapshotName("daily", taken)
			snaps := []virt.Snapshot{
				{Name: "clean", Created: taken.Add(-day)},
				{Name: name, Parent: "clean", Description: desc.String(), Created: taken},
			}
			d := virt.Domain{Name: "vm-1", Metadata: &virt.Metadata{Profile: "sim", Policy: p, Provisioned: true, Created: taken.Add(-2 * day)}}
			tp, err := planTick(d, snaps, now)
			if err != nil {
				t.Fatal(err)
			}
			got := len(tp.Prune) == 1 && tp.Prune[0].Name == name
			if got != c.pruned || len(tp.Prune) > 1 {
				t.Fatalf("prune = %v, want pruned %v", tp.Prune, c.pruned)
			}
			// Listings show the expiry retention follows.
			infos := withPolicyExpiry(classifyAll(snaps, "clean"), p)
			var exp *time.Time
			for _, s := range infos {
				if s.Name == name {
					exp = s.Expires
				}
			}
			switch {
			case c.now == "" && exp != nil:
				t.Errorf("listed expiry %v, want none (the policy has no max_age)", exp)
			case c.now != "":
				age, _ := time.ParseDuration(c.now)
				if exp == nil || !exp.Equal(taken.Add(age)) {
					t.Errorf("listed expiry %v, want %v", exp, taken.Add(age))
				}
			}
		})
	}
}

// The same through run-due on a host: a snapshot taken under max_age =
// "30d" survives 40 days once max_age is removed from the policy.
func TestRunDueAfterMaxAgeRemoved(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	under := &virt.PolicyRef{Name: "daily", Baseline: "clean", Keep: 5, MaxAge: (30 * day).String()}
	h := tickHost(t, under, t0.Add(-day))
	e := &engine{HV: h, Parallelism: 1}
	exp := t0.Add(30 * day)
	desc := snapmeta.Description{Kind: snapmeta.Auto, Policy: "daily", Expires: &exp}
	if _, err := h.CreateSnapshot(ctx, "vm-1", virt.SnapshotSpec{Name: autoSnapshotName("daily", t0), Description: desc.String()}); err != nil {
		t.Fatal(err)
	}
	// apply records the changed policy in the domain's metadata.
	now := &virt.PolicyRef{Name: "daily", Baseline: "clean", Keep: 5}
	dom, err := h.GetDomain(ctx, "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	md := *dom.Metadata
	md.Policy = now
	if err := h.SetMetadata(ctx, "vm-1", &md); err != nil {
		t.Fatal(err)
	}
	res, err := e.Prune(ctx, nil, t0.Add(40*day), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Err != "" || len(res[0].Pruned) != 0 {
		t.Fatalf("prune 40 days later without max_age = %+v, want nothing pruned", res)
	}
}
