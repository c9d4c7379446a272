package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// profileLocks are the locks of a profile on each of its hosts.
type profileLocks []*lock.Lock

// Release drops every lock.
func (ls profileLocks) Release() {
	for _, l := range ls {
		l.Release()
	}
}

// showPlans prints the plans (to stderr when stdout carries JSON) and
// reports whether any has changes.
func (f *Factory) showPlans(hps []*orchestrator.HostPlan) bool {
	out := f.IO.Out
	if f.JSON() {
		out = f.IO.ErrOut
	}
	changes := false
	for _, hp := range hps {
		writePlanText(out, hp.Plan)
		changes = changes || hp.Plan.HasChanges()
	}
	return changes
}

// executePlans runs each host's plan, prints notes and a summary line per
// host (verb names what happened, e.g. "Applied"), writes the JSON result
// when asked, and turns failed objects into one error line each. A host
// whose plan fails does not stop the others; sk are hosts skipped before
// (unreachable at plan time). When some hosts were done and others failed
// or were skipped, the command ends with exitPartial and a summary that
// names them.
func (f *Factory) executePlans(ctx context.Context, s *orchestrator.Session, p *profiles.Profile, hps []*orchestrator.HostPlan, verb string, sk []skippedHost) error {
	var (
		all    []orchestrator.Result
		failed error
		done   int
	)
	for _, hp := range hps {
		start := time.Now()
		eng, finish := f.live(s)
		res, err := eng.Apply(ctx, hp)
		finish()
		all = append(all, res...)
		for _, r := range res {
			notes := append([]string(nil), r.Notes...)
			if h := hintText(r.Hint, r.Object); h != "" {
				if len(notes) == 0 {
					notes = []string{h}
				} else {
					notes[len(notes)-1] += ": " + h
				}
			}
			for _, n := range notes {
				f.IO.Status("%s: %s", r.Object, n)
			}
		}
		if err != nil {
			var ae *orchestrator.ApplyError
			if errors.As(err, &ae) {
				for _, r := range ae.Failed {
					fmt.Fprintf(f.IO.ErrOut, "Error: %s %s on %s: %s\n", r.Kind, r.Object, hp.Host.Name, r.Err)
				}
			} else {
				fmt.Fprintf(f.IO.ErrOut, "Error: host %s (%s): %s\n", hp.Host.Name, hp.URI, err)
			}
			var names []string
			for _, c := range hp.Plan.Changes {
				if c.Kind == orchestrator.KindVM && c.Action != orchestrator.ActionNoop {
					names = append(names, c.Name)
				}
			}
			sk = append(sk, skippedHost{Host: hp.Host.Name, URI: hp.URI, Error: err.Error(), VMs: names})
			failed = err
			continue
		}
		done++
		f.IO.Status("%s profile %s on %s in %s.", verb, p.Name, hp.URI, time.Since(start).Round(100*time.Millisecond))
	}
	if f.JSON() {
		if err := writeApplyJSON(f, p.Name, all, sk); err != nil {
			return err
		}
	}
	if failed == nil && len(sk) == 0 {
		return nil
	}
	if done > 0 || (failed == nil && len(sk) > 0) {
		return f.partialSummary(strings.ToLower(verb), done, sk)
	}
	return silent(exitError)
}
