package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

// An obviously fake key that shares no group with any other test key (the
// leak scans look for every group).
const onceKey = "G7K4M-W9T3Q-P8D6R-J2V7X-H4B9Y"

// onceAdminPassword is the fake administrator password the test's
// password command prints.
const onceAdminPassword = "not-a-real-password-7Q3Z"

// counterScript writes a secret command that appends a line to a counter
// file each time it runs and prints secret; it returns the script and the
// counter.
func counterScript(t *testing.T, name, secret string) (script, counter string) {
	t.Helper()
	dir := t.TempDir()
	counter = filepath.Join(dir, name+".count")
	script = filepath.Join(dir, name+".sh")
	body := fmt.Sprintf("#!/bin/sh\necho run >> %q\necho %q\n", counter, secret)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script, counter
}

func runs(t *testing.T, counter string) int {
	t.Helper()
	b, err := os.ReadFile(counter)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

// onceProfile has two VMs of one licence (count = 2) prepared by
// specialize, so each one's setup needs the product key and the
// administrator password, both from command().
func onceProfile(keyScript, pwScript string) string {
	return fmt.Sprintf(`
license "office" {
  product_key = command([%q])
  edition     = "professional"
  channel     = "mak"
  seats       = 5
}
vm "acct" {
  count  = 2
  os     = "win7-x64"
  memory = "1GiB"
  disk {
    image   = "/images/golden.qcow2"
    prepare = "specialize"
  }
  windows {
    admin_password = command([%q])
  }
  licenses = [license.office]
}
`, keyScript, pwScript)
}

// finishSetups plays the guest's part in the specialize pass: every domain
// that runs with answer media attached powers itself off, as Windows does
// when setup ends. It stops when ctx ends.
func finishSetups(ctx context.Context, h *fake.Hypervisor) {
	for ctx.Err() == nil {
		doms, _ := h.ListDomains(ctx)
		for _, d := range doms {
			if d.State != virt.StateRunning {
				continue
			}
			for _, disk := range d.Disks {
				if disk.Device == virt.DeviceCDROM && disk.Target == "sdb" && disk.Path != "" {
					_ = h.GuestPowerOff(d.Name)
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A product key (and an administrator password) from command() is read
// once per command: once by plan --check-keys, once by apply (planning's
// seat check, apply's check that every secret is there, and the answer
// media of both VMs share what was read), where it used to be read by
// each of them for each VM. Nothing read appears in the plan, its JSON,
// the results or the metadata.
func TestSecretCommandRunsOncePerCommand(t *testing.T) {
	ctx := context.Background()
	keyScript, keyRuns := counterScript(t, "key", onceKey)
	pwScript, pwRuns := counterScript(t, "password", onceAdminPassword)
	h := newFakeHost(t)
	p := loadProfile(t, "lab", onceProfile(keyScript, pwScript))
	fp := testFingerprinter(t)
	// The sessions the CLI opens: planning reads keys (ReadKeys) with the
	// session's Getenv and Fingerprint.
	session := func() *Session {
		return Open(p, SessionOptions{Connect: connector(h), Plan: Options{DefaultURI: "test:///fake", ReadKeys: true},
			Parallelism: 2, PollInterval: time.Millisecond, Fingerprint: fp})
	}

	// legacyvm plan --check-keys.
	s1 := session()
	_, diags, err := s1.Plan(ctx)
	s1.Close()
	if err != nil || diags.HasErrors() {
		t.Fatalf("plan --check-keys: %v %s", err, diagText(diags))
	}
	if got := runs(t, keyRuns); got != 1 {
		t.Errorf("plan --check-keys ran the key command %d times, want 1", got)
	}
	if got := runs(t, pwRuns); got != 0 {
		t.Errorf("plan --check-keys ran the password command %d times, want 0 (plan needs no password)", got)
	}

	// legacyvm apply: plan with keys, then apply that plan.
	s2 := session()
	defer s2.Close()
	hps, diags, err := s2.Plan(ctx)
	if err != nil || diags.HasErrors() {
		t.Fatalf("apply's plan: %v %s", err, diagText(diags))
	}
	setupCtx, stop := context.WithCancel(ctx)
	defer stop()
	go finishSetups(setupCtx, h)
	res, err := s2.Apply(ctx, hps[0])
	stop()
	if err != nil {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if got := runs(t, keyRuns); got != 2 {
		t.Errorf("apply ran the key command %d times, want 1 (2 in all with the plan before)", got-1)
	}
	if got := runs(t, pwRuns); got != 1 {
		t.Errorf("apply ran the password command %d times, want 1", got)
	}
	for _, name := range []string{"acct-1", "acct-2"} {
		d := mustDomain(t, h, name)
		if !d.Metadata.Provisioned || d.Metadata.License == nil || d.Metadata.License.LastGroup != "H4B9Y" || d.Metadata.License.Fingerprint == "" {
			t.Errorf("%s: provisioned %v, licence %+v; want provisioned with the key's identity", name, d.Metadata.Provisioned, d.Metadata.License)
		}
	}

	// An apply that plans nothing reads nothing.
	s3 := session()
	defer s3.Close()
	hps, _, err = s3.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hps[0].Plan.HasChanges() || runs(t, keyRuns) != 2 || runs(t, pwRuns) != 1 {
		t.Errorf("second apply: changes %v, key runs %d, password runs %d; want none, 2, 1", hps[0].Plan.HasChanges(), runs(t, keyRuns), runs(t, pwRuns))
	}

	// Nothing read shows in what the commands print or store.
	out := fmt.Sprintf("%v %+v %#v %+v", hps[0].Plan, *hps[0].Plan, res, hps[0].Plan.Changes)
	js, _ := json.Marshal(hps[0].Plan)
	for _, d := range []string{"acct-1", "acct-2"} {
		out += fmt.Sprintf("%+v", *mustDomain(t, h, d).Metadata)
	}
	assertNoKeyIn(t, "plan, results and metadata", out+string(js), onceKey)
	if strings.Contains(out+string(js), onceAdminPassword) {
		t.Errorf("the administrator password shows in the plan, results or metadata")
	}
}

// Without a plan that read them (a plan made without keys), Apply reads
// each secret once itself: the pre-check and the VMs' setups share it.
func TestApplyReadsSecretsOnceWithoutPlannedKeys(t *testing.T) {
	ctx := context.Background()
	keyScript, keyRuns := counterScript(t, "key", onceKey)
	pwScript, pwRuns := counterScript(t, "password", onceAdminPassword)
	h := newFakeHost(t)
	hp := plan(t, loadProfile(t, "lab", onceProfile(keyScript, pwScript)), h)
	if runs(t, keyRuns) != 0 {
		t.Fatal("plan without keys read the key")
	}
	setupCtx, stop := context.WithCancel(ctx)
	defer stop()
	go finishSetups(setupCtx, h)
	e := &engine{HV: h, Parallelism: 2, PollInterval: time.Millisecond}
	if res, err := e.Apply(ctx, hp.Plan); err != nil {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if k, p := runs(t, keyRuns), runs(t, pwRuns); k != 1 || p != 1 {
		t.Errorf("apply ran the key command %d times and the password command %d times, want 1 and 1", k, p)
	}
}
