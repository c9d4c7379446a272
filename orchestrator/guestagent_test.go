package orchestrator

import (
	"context"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
)

// guest_agent = true adds the channel; turning it on or off later is an
// in-place update (restart needed for a running VM), and a second plan
// after apply has nothing to do.
func TestPlanGuestAgentChannel(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))
	d, err := h.GetDomain(ctx, "solo")
	if err != nil {
		t.Fatal(err)
	}
	if d.GuestAgent {
		t.Fatalf("solo has the guest agent channel without guest_agent (default false)")
	}
	on := strings.Replace(labProfile, `memory = "2GiB"`, "memory = \"2GiB\"\n  guest_agent = true", 1)
	hp := plan(t, loadProfile(t, "lab", on), h)
	c := changesByName(hp.Plan)["vm/solo"]
	if c.Action != ActionUpdate || !c.RestartNeeded || c.Destructive || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "guest agent channel added") {
		t.Fatalf("guest_agent = true planned as %+v", c)
	}
	apply(t, hp)
	if d, _ = h.GetDomain(ctx, "solo"); !d.GuestAgent {
		t.Fatalf("after apply solo has no guest agent channel")
	}
	if c := changesByName(plan(t, loadProfile(t, "lab", on), h).Plan)["vm/solo"]; c.Action != ActionNoop {
		t.Errorf("second plan: %+v, want no-op", c)
	}
	hp = plan(t, loadProfile(t, "lab", labProfile), h)
	if c := changesByName(hp.Plan)["vm/solo"]; c.Action != ActionUpdate || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "guest agent channel removed") {
		t.Fatalf("guest_agent removed planned as %+v", c)
	}
}

// status shows whether the agent answers; verify (with Agent) warns about
// a declared agent that is silent.
func TestStatusAndVerifyReportTheAgent(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	on := strings.Replace(labProfile, `memory = "2GiB"`, "memory = \"2GiB\"\n  guest_agent = true", 1)
	p := loadProfile(t, "lab", on)
	apply(t, plan(t, p, h))
	agentOf := func() map[string]string {
		st, err := hostStatus(ctx, h, "lab")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range st {
			m[s.Name] = s.Agent
		}
		return m
	}
	if got := agentOf(); got["solo"] != agentAnswers || got["web-1"] != "" {
		t.Fatalf("status agents = %v, want solo answers and web-1 without a channel", got)
	}
	check := func() CheckResult {
		v, err := verifyHost(ctx, h, VerifyOptions{URI: remoteURI, Profile: p, Agent: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, vm := range v.VMs {
			for _, c := range vm.Checks {
				if vm.Name == "solo" && c.Check == checkGuestAgent {
					return c
				}
			}
		}
		t.Fatalf("verify has no guest-agent check for solo: %+v", v.VMs)
		return CheckResult{}
	}
	if c := check(); c.Status != CheckPass {
		t.Errorf("guest-agent check of an answering agent: %+v", c)
	}
	if err := h.SetAgentSilent("solo", true); err != nil {
		t.Fatal(err)
	}
	if got := agentOf(); got["solo"] != agentSilent {
		t.Errorf("status of a silent agent = %q", got["solo"])
	}
	if c := check(); c.Status != CheckWarn || !strings.Contains(c.Reason, "does not answer") {
		t.Errorf("guest-agent check of a silent agent: %+v", c)
	}
}

func TestDoctorReportsSilentAgents(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	on := strings.Replace(labProfile, `memory = "2GiB"`, "memory = \"2GiB\"\n  guest_agent = true", 1)
	apply(t, plan(t, loadProfile(t, "lab", on), h))
	find := func() *hostcheck.Finding {
		for _, f := range doctor(ctx, remoteURI, h, nil, hostcheck.System{}, "") {
			if f.Check == "guest agents" {
				return &f
			}
		}
		return nil
	}
	if f := find(); f == nil || f.Severity != hostcheck.SeverityOK {
		t.Fatalf("doctor with an answering agent: %+v", f)
	}
	if err := h.SetAgentSilent("solo", true); err != nil {
		t.Fatal(err)
	}
	if f := find(); f == nil || f.Severity != hostcheck.SeverityWarn || !strings.Contains(f.Message, "solo") {
		t.Errorf("doctor with a silent agent: %+v", f)
	}
}
