package orchestrator

import (
	"context"
	"strings"
	"testing"
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
	if c.Action != ActionUpdate || !c.RestartNeeded || c.Destructive || !strings.Contains(strings.Join(c.Reasons, ";"), "guest agent channel added") {
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
	if c := changesByName(hp.Plan)["vm/solo"]; c.Action != ActionUpdate || !strings.Contains(strings.Join(c.Reasons, ";"), "guest agent channel removed") {
		t.Fatalf("guest_agent removed planned as %+v", c)
	}
}
