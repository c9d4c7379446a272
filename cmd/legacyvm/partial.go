package main

import (
	"fmt"
	"strings"

	"github.com/legacyvm/legacyvm/orchestrator"
)

// exitPartial: a command that spans several hosts did its work on some of
// them and skipped or failed others (the summary names them). plan, apply,
// destroy, reset, status, verify and licenses use it.
const exitPartial = 3

// skippedHost is a host a command could not work on, for summaries and
// JSON output (skippedJSON).
type skippedHost struct {
	Host  string
	URI   string
	Error string
	// VMs are the profile's VMs left as they are.
	VMs []string
}

// plannedHosts returns the host plans whose host was reached and planned.
func plannedHosts(hps []*orchestrator.HostPlan) []*orchestrator.HostPlan {
	var out []*orchestrator.HostPlan
	for _, hp := range hps {
		if hp.Planned() {
			out = append(out, hp)
		}
	}
	return out
}

// skippedHosts lists the host plans that failed.
func skippedHosts(hps []*orchestrator.HostPlan) []skippedHost {
	var out []skippedHost
	for _, hp := range hps {
		if hp.Err == nil {
			continue
		}
		out = append(out, skippedHost{Host: hp.Host.Name, URI: hp.URI, Error: hp.Err.Error(), VMs: hp.Skipped})
	}
	return out
}

// reportSkipped prints one line per host that could not be worked on, with
// the VMs left out because of it, and reports whether there was any.
func (f *Factory) reportSkipped(sk []skippedHost) bool {
	for _, s := range sk {
		vms := "no VMs of the profile"
		if len(s.VMs) > 0 {
			vms = "VMs " + strings.Join(s.VMs, ", ")
		}
		fmt.Fprintf(f.IO.ErrOut, "Skipped host %s (%s): %s; %s left as they are.\n", s.Host, s.URI, s.Error, vms)
	}
	return len(sk) > 0
}

// partialSummary is the last line of a command that skipped hosts: exit
// status 3 when done hosts were worked on, 1 when none was.
func (f *Factory) partialSummary(verb string, done int, sk []skippedHost) error {
	var names []string
	for _, s := range sk {
		names = append(names, s.Host)
	}
	if done == 0 {
		fmt.Fprintf(f.IO.ErrOut, "Error: no host could be worked on (skipped %s).\n", strings.Join(names, ", "))
		return silent(exitError)
	}
	fmt.Fprintf(f.IO.ErrOut, "Partial: %s on %d host(s); skipped %s (exit status %d).\n", verb, done, strings.Join(names, ", "), exitPartial)
	return silent(exitPartial)
}
