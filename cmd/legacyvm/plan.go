package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

// PlanOptions are the inputs of `legacyvm plan`.
type PlanOptions struct {
	Factory *Factory
	Path    string
	// CheckKeys reads the product keys apply would read, to check seats
	// by key across profiles now.
	CheckKeys bool
	// ImageUpdates names images whose newest version every VM should use.
	ImageUpdates []string
}

func NewCmdPlan(f *Factory, runF func(*PlanOptions) error) *cobra.Command {
	opts := &PlanOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "plan [PATH]",
		Short: "Show what apply would change on the host",
		Long: `Plan compares the profile at PATH (a directory of *.hcl files or one file;
default ".") with what the host holds and prints the changes apply would make:
create, update in place, replace (with the reason) or delete. It changes
nothing.

Licence seats are counted across the profile and every VM already on the
host. Plan reads no secrets, so without the key a licence is matched with
other VMs by the fingerprint its own VMs recorded, else by its name: reuse of
the same key by another profile is found by apply (which reads the keys
before it changes anything and refuses a key without a free seat), or now
with --check-keys, which reads the keys apply would read.

Exit status: 0 no changes, 2 changes present, 1 error, 3 partial (a host of
the profile did not answer: it is named and skipped).`,
		Example: `  legacyvm plan examples/lab
  legacyvm plan -o json examples/lab | jq '.hosts[].changes[] | select(.action != "no-op")'
  legacyvm plan --connect qemu+ssh://root@lab1/system examples/ops-daily
  legacyvm plan --image-update w7pro examples/golden-image`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = pathArg(args)
			if runF != nil {
				return runF(opts)
			}
			return planRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.CheckKeys, "check-keys", false, "read the product keys of VMs to be created and check their seats across profiles")
	cmd.Flags().StringArrayVar(&opts.ImageUpdates, "image-update", nil, "move the VMs of image block NAME to its newest version (replaces VMs on older ones; repeatable)")
	return cmd
}

func planRun(ctx context.Context, opts *PlanOptions) error {
	f := opts.Factory
	p, err := f.loadProfile(opts.Path)
	if err != nil {
		return err
	}
	po := f.planOptions()
	po.ImageUpdates = opts.ImageUpdates
	if opts.CheckKeys {
		po.ReadKeys = true
	}
	s := f.session(p, po)
	defer s.Close()
	hps, diags, err := s.Plan(ctx)
	if len(diags) > 0 {
		f.printDiagnostics(p.Sources, diags)
	}
	if err != nil {
		return err
	}
	if diags.HasErrors() {
		return silent(exitError)
	}
	sk := skippedHosts(hps)
	hps = plannedHosts(hps)
	for _, hp := range hps {
		hp.Plan.Notes = append(hp.Plan.Notes, hp.ScheduleNotes(p.Name, f.Now())...)
	}
	if f.JSON() {
		if err := writeJSON(f, planToJSON(p.Name, hps, sk)); err != nil {
			return err
		}
	} else {
		for _, hp := range hps {
			writePlanText(f.IO.Out, hp.Plan)
		}
	}
	if f.reportSkipped(sk) {
		return f.partialSummary("planned", len(hps), sk)
	}
	for _, hp := range hps {
		if hp.Plan.HasChanges() {
			return silent(exitChanges)
		}
	}
	return nil
}

var actionSymbols = map[orchestrator.Action]string{
	orchestrator.ActionCreate:  "+",
	orchestrator.ActionUpdate:  "~",
	orchestrator.ActionReplace: "-/+",
	orchestrator.ActionDelete:  "-",
	orchestrator.ActionNoop:    " ",
}

// writePlanText prints a plan the way a reviewer reads it: one line per
// object that changes, its reasons and details indented below.
func writePlanText(w io.Writer, p *orchestrator.Plan) {
	fmt.Fprintf(w, "Profile %s on %s (accelerator %s):\n", p.Profile, p.Host, p.Accel)
	if !p.HasChanges() {
		fmt.Fprintln(w, "  No changes. The host matches the profile.")
		for _, n := range p.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		return
	}
	for _, c := range p.Changes {
		if c.Action == orchestrator.ActionNoop {
			continue
		}
		line := fmt.Sprintf("  %-3s %-8s %-24s %s", actionSymbols[c.Action], c.Kind, c.Name, c.Action)
		if c.Action == orchestrator.ActionUpdate {
			line += " in place"
		}
		if c.Destructive {
			line += "  [DESTRUCTIVE]"
		}
		if c.RestartNeeded {
			line += "  (restart needed)"
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		for _, r := range c.Reasons {
			fmt.Fprintf(w, "        because: %s\n", r)
		}
		for _, d := range c.Details {
			fmt.Fprintf(w, "        %s\n", d)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	counts := p.Counts()
	fmt.Fprintf(w, "Plan: %d to create, %d to update in place, %d to replace, %d to delete.\n",
		counts[orchestrator.ActionCreate], counts[orchestrator.ActionUpdate], counts[orchestrator.ActionReplace], counts[orchestrator.ActionDelete])
}
