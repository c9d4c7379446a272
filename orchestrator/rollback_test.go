package orchestrator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

// answerProfile is seatProfile with answer media (prepare = "specialize").
func answerProfile(name string) string {
	return strings.Replace(seatProfile("office", "KEY_A", "retail", 0, name, 1), `prepare = "none"`, `prepare = "specialize"`, 1)
}

func poolVolumes(t *testing.T, h *fake.Hypervisor) []string {
	t.Helper()
	vols, err := h.ListVolumes(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vols {
		out = append(out, v.Name)
	}
	slices.Sort(out)
	return out
}

// A setup that fails after the answer media (with the product key) were
// uploaded is rolled back. Undo failures are retried, and when deleting
// the media still fails the error says so and the domain stays defined
// (not provisioned, listing its volumes) so that plan, apply and destroy
// find the media. Before, the undo errors were dropped and the domain was
// undefined: the key stayed behind in an untracked volume.
func TestFailedRollbackKeepsTheDomainAndReportsTheAnswerMedia(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	p := loadProfile(t, "lab", answerProfile("acct"))
	answer := answerVolumeName("acct")
	h.FailOn("StartDomain", "acct", errors.New("qemu refused to start"))
	h.FailOn("DeleteVolume", answer, errors.New("input/output error"))

	hp := plan(t, p, h)
	e := &engine{HV: h, Parallelism: 1, PollInterval: 1, Getenv: seatGetenv, undoPause: time.Millisecond}
	res, err := e.Apply(ctx, hp.Plan)
	if err == nil {
		t.Fatal("apply succeeded with a failing start")
	}
	var msg string
	for _, r := range res {
		if r.Object == "acct" {
			msg = r.Err
		}
	}
	for _, want := range []string{"qemu refused to start", "undoing it left work behind", "delete answer media " + answer, "input/output error", "domain acct stays defined"} {
		if !strings.Contains(msg, want) {
			t.Errorf("apply error does not say %q:\n%s", want, msg)
		}
	}
	assertNoKeyIn(t, "apply error", msg, seatKeyA)
	d, err := h.GetDomain(ctx, "acct")
	if err != nil {
		t.Fatalf("the domain was undefined although its answer media could not be deleted: %v", err)
	}
	if d.Metadata.Provisioned || d.State != virt.StateShutoff || !slices.ContainsFunc(d.Metadata.Volumes, func(v virt.VolumeRef) bool { return v.Name == answer }) {
		t.Errorf("kept domain: provisioned %v, state %s, volumes %+v; want not provisioned, shut off, listing %s", d.Metadata.Provisioned, d.State, d.Metadata.Volumes, answer)
	}
	if got := poolVolumes(t, h); !slices.Equal(got, []string{answer}) {
		t.Errorf("pool holds %v, want only the answer media (the system disk's undo worked)", got)
	}

	// The next plan replaces the unfinished VM; destroy deletes all of it.
	h.ClearFailures()
	next := plan(t, p, h)
	if c := changesByName(next.Plan)["vm/acct"]; c.Action != ActionReplace {
		t.Errorf("next plan for acct: %s %v, want replace", c.Action, c.Reasons)
	}
	dps, err := planProfileDestroy(ctx, p, connector(h), Options{DefaultURI: "test:///fake"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(ctx, dps[0].Plan); err != nil {
		t.Fatal(err)
	}
	if got := poolVolumes(t, h); len(got) != 0 {
		t.Errorf("after destroy the pool holds %v", got)
	}
}

// A delete that fails a few times is retried; the rollback then completes
// and only the original failure is reported.
func TestRollbackRetriesUndo(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	p := loadProfile(t, "lab", answerProfile("acct"))
	h.FailOn("StartDomain", "acct", errors.New("qemu refused to start"))
	h.FailTimes("DeleteVolume", answerVolumeName("acct"), 2, virt.ErrBusy)
	e := &engine{HV: h, Parallelism: 1, PollInterval: 1, Getenv: seatGetenv, undoPause: time.Millisecond}
	res, err := e.Apply(ctx, plan(t, p, h).Plan)
	i := slices.IndexFunc(res, func(r Result) bool { return r.Object == "acct" })
	if err == nil || i < 0 || !strings.Contains(res[i].Err, "qemu refused to start") || strings.Contains(res[i].Err, "left work behind") {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if _, err := h.GetDomain(ctx, "acct"); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("domain after a complete rollback: %v", err)
	}
	if got := poolVolumes(t, h); len(got) != 0 {
		t.Errorf("pool after a complete rollback holds %v", got)
	}
}

// Answer media no VM owns (a rollback before this fix, a domain undefined
// by hand) are reported by plan and verify; apply deletes those of the VMs
// it creates (they would collide with the new media), destroy those of the
// profile's VMs; others are reported with the command that deletes them.
func TestOrphanAnswerMediaArePlannedAndVerified(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	for _, name := range []string{answerVolumeName("acct"), answerVolumeName("stranger")} {
		if _, err := h.UploadVolume(ctx, virt.VolumeSpec{Pool: "default", Name: name, Format: "raw", CapacityBytes: 4, Mode: 0o600}, strings.NewReader("ISO!"), 4); err != nil {
			t.Fatal(err)
		}
	}
	p := loadProfile(t, "lab", seatProfile("office", "KEY_A", "retail", 0, "acct", 1))

	hp := plan(t, p, h)
	c, ok := changesByName(hp.Plan)["volume/"+answerVolumeName("acct")]
	if !ok || c.Kind != KindVolume || c.Action != ActionDelete {
		t.Fatalf("plan has no delete of acct's orphan answer media: %+v", hp.Plan.Changes)
	}
	if _, ok := changesByName(hp.Plan)["volume/"+answerVolumeName("stranger")]; ok {
		t.Error("plan deletes answer media of a VM the profile does not declare")
	}
	if !slices.ContainsFunc(hp.Plan.Notes, func(n string) bool {
		return strings.Contains(n, answerVolumeName("stranger")) && strings.Contains(n, "virsh vol-delete --pool default "+answerVolumeName("stranger"))
	}) {
		t.Errorf("plan notes do not report stranger's answer media: %q", hp.Plan.Notes)
	}

	ver, err := verifyHost(ctx, h, VerifyOptions{URI: "test:///fake"})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range ver.HostChecks {
		if f.Check == "answer-media" && f.Severity == hostcheck.SeverityWarn {
			found = append(found, f.Message)
		}
	}
	if len(found) != 2 || !ver.Warnings() {
		t.Errorf("verify reports %q, want both orphans as warnings", found)
	}

	ea := &engine{HV: h, Parallelism: 1, PollInterval: 1, Getenv: seatGetenv}
	if res, err := ea.Apply(ctx, hp.Plan); err != nil {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if got := poolVolumes(t, h); !slices.Equal(got, []string{systemVolumeName("acct"), answerVolumeName("stranger")}) {
		t.Errorf("after apply the pool holds %v", got)
	}

	// destroy deletes the profile's orphans too.
	if _, err := h.UploadVolume(ctx, virt.VolumeSpec{Pool: "default", Name: answerVolumeName("acct"), Format: "raw", CapacityBytes: 4, Mode: 0o600}, strings.NewReader("ISO!"), 4); err != nil {
		t.Fatal(err)
	}
	dps, err := planProfileDestroy(ctx, p, connector(h), Options{DefaultURI: "test:///fake"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{HV: h, Parallelism: 1, PollInterval: 1}
	if _, err := e.Apply(ctx, dps[0].Plan); err != nil {
		t.Fatal(err)
	}
	if got := poolVolumes(t, h); !slices.Equal(got, []string{answerVolumeName("stranger")}) {
		t.Errorf("after destroy the pool holds %v, want only stranger's media", got)
	}
}
