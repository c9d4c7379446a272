package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// agentPingTimeout bounds the guest-ping of status and verify.
const agentPingTimeout = 5 * time.Second

// Agent states reported by status.
const (
	agentAnswers = "answers"
	agentSilent  = "silent"
	agentOff     = "off" // the domain is not running
)

// agentState pings the guest agent of d: "" when d has no agent channel.
func agentState(ctx context.Context, hv virt.Hypervisor, d virt.Domain) (string, error) {
	if !d.GuestAgent {
		return "", nil
	}
	if d.State != virt.StateRunning {
		return agentOff, nil
	}
	_, err := hv.AgentCommand(ctx, d.Name, []byte(`{"execute":"guest-ping"}`), agentPingTimeout)
	switch {
	case err == nil:
		return agentAnswers, nil
	case errors.Is(err, virt.ErrAgentUnavailable), errors.Is(err, virt.ErrAgentCommand), errors.Is(err, virt.ErrBusy),
		errors.Is(err, virt.ErrInvalidState):
		return agentSilent, nil
	}
	return "", err
}

// checkAgent is verify's guest-agent check.
func (vr *verifier) checkAgent(ctx context.Context, d virt.Domain, add func(check string, st CheckStatus, fix, format string, a ...any)) {
	dv := vr.desiredVMs[d.Name]
	if !d.GuestAgent {
		if dv != nil && dv.Spec.GuestAgent {
			add(checkGuestAgent, CheckWarn, "applying the profile adds it", "the profile declares guest_agent = true but the domain has no guest agent channel")
		}
		return
	}
	st, err := agentState(ctx, vr.hv, d)
	switch {
	case err != nil:
		add(checkGuestAgent, CheckSkip, "", "cannot ask the guest agent: %v", err)
	case st == agentOff:
		add(checkGuestAgent, CheckSkip, "", "the VM is not running")
	case st == agentAnswers:
		add(checkGuestAgent, CheckPass, "", "the guest agent answers")
	default:
		add(checkGuestAgent, CheckWarn, "install and start the QEMU guest agent (and the virtio-serial driver) in the guest: docs/guest-agent.md",
			"the guest agent channel is declared but the agent does not answer")
	}
}

// agentFinding is doctor's "guest agents" finding: whether the running
// managed VMs with the guest agent channel answer (ok false when there is
// none).
func agentFinding(ctx context.Context, hv virt.Hypervisor) (hostcheck.Finding, bool) {
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return hostcheck.Finding{Check: "guest agents", Severity: hostcheck.SeverityWarn, Message: fmt.Sprintf("cannot list domains: %v", err)}, true
	}
	var answer, silent []string
	for _, d := range doms {
		if d.Metadata == nil || !d.GuestAgent || d.State != virt.StateRunning {
			continue
		}
		st, err := agentState(ctx, hv, d)
		if err != nil || st == agentSilent {
			silent = append(silent, d.Name)
		} else {
			answer = append(answer, d.Name)
		}
	}
	switch {
	case len(silent) > 0:
		return hostcheck.Finding{Check: "guest agents", Severity: hostcheck.SeverityWarn,
			Message: fmt.Sprintf("guest agent declared but silent in %s (exec, cp and test will fail there)", strings.Join(silent, ", ")),
			Fix:     "install and start the QEMU guest agent and the virtio-serial driver in those guests (docs/guest-agent.md), or wait until they have booted"}, true
	case len(answer) > 0:
		return hostcheck.Finding{Check: "guest agents", Severity: hostcheck.SeverityOK, Message: fmt.Sprintf("the guest agent answers in %d running VM(s)", len(answer))}, true
	}
	return hostcheck.Finding{}, false
}
