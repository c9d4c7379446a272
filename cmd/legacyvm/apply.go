package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

// ApplyOptions are the inputs of `legacyvm apply`.
type ApplyOptions struct {
	Factory     *Factory
	Path        string
	AutoApprove bool
	LockWait    time.Duration
	// ImageUpdates names images whose newest version every VM should use.
	ImageUpdates []string
}

func NewCmdApply(f *Factory, runF func(*ApplyOptions) error) *cobra.Command {
	opts := &ApplyOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "apply [PATH]",
		Short: "Create or update the VMs, networks and filters a profile declares",
		Long: `Apply makes the host match the profile at PATH (default "."): it plans, shows
the plan, and executes it: networks and traffic filters first, then the VMs in
parallel (--parallelism at once), each one rolled back if one of its steps
fails. New VMs get their disk (a linked clone of the golden image unless
clone = "full"), answer media when setup needs it (the product key is read
now, from where the profile says, and never stored), their baseline snapshot,
and are started. Before anything changes, each key read is matched by its
fingerprint with every VM on the host: a key without a free seat (a retail
key another VM already uses, a MAK with no activation left) stops apply with
a diagnostic at the vm's licenses attribute.

Changes that lose data (replacing or deleting a VM's disk or snapshots) need a
"yes" at the prompt, or --auto-approve. Running apply again plans nothing.
Two applies of the same profile on the same host never run at once: the
second waits for the first (--lock-wait) or fails.`,
		Example: `  legacyvm apply examples/lab
  ACCT_WIN7_MAK=$(pass win7/acct-mak) legacyvm apply --auto-approve examples/lab
  legacyvm apply --parallelism 2 -o json examples/lab
  legacyvm apply --image-update w7pro examples/golden-image`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = pathArg(args)
			if runF != nil {
				return runF(opts)
			}
			return applyRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.AutoApprove, "auto-approve", false, "do not ask before destructive changes")
	cmd.Flags().DurationVar(&opts.LockWait, "lock-wait", 5*time.Minute, "how long to wait for another command working on the same profile or one of its VMs")
	cmd.Flags().StringArrayVar(&opts.ImageUpdates, "image-update", nil, "move the VMs of image block NAME to its newest version (replaces VMs on older ones; repeatable)")
	return cmd
}

func applyRun(ctx context.Context, opts *ApplyOptions) error {
	f := opts.Factory
	p, err := f.loadProfile(opts.Path)
	if err != nil {
		return err
	}
	locks, err := f.lockProfile(ctx, p, "apply", opts.LockWait)
	if err != nil {
		return err
	}
	defer locks.Release()

	// Planning reads the keys of the VMs it creates (apply needs them
	// anyway) so that a key without a free seat is refused before anything
	// changes.
	po := f.planOptions()
	po.ReadKeys = true
	po.ImageUpdates = opts.ImageUpdates
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
	planned := plannedHosts(hps)
	orphanLocks, err := s.LockPlanned(ctx, planned, "apply", opts.LockWait, f.lockWaiting)
	if err != nil {
		return err
	}
	defer orphanLocks.Release()
	changes := f.showPlans(planned)
	f.reportSkipped(sk)
	if !changes {
		f.verifyAfterApply(ctx, p, opts.Path)
		if f.JSON() {
			if err := writeApplyJSON(f, p.Name, nil, sk); err != nil {
				return err
			}
		}
		if len(sk) > 0 {
			return f.partialSummary("nothing to apply", len(planned), sk)
		}
		return nil
	}
	if err := confirmDestructive(f, planned, opts.AutoApprove); err != nil {
		return err
	}
	err = f.executePlans(ctx, s, p, planned, "Applied", sk)
	f.verifyAfterApply(ctx, p, opts.Path)
	return err
}

func writeApplyJSON(f *Factory, profile string, rs []orchestrator.Result, sk []skippedHost) error {
	return writeJSON(f, applyToJSON(profile, rs, sk))
}

// confirmDestructive asks before changes that lose data. Without a terminal
// the answer must come from --auto-approve.
func confirmDestructive(f *Factory, hps []*orchestrator.HostPlan, autoApprove bool) error {
	var names []string
	for _, hp := range hps {
		for _, c := range hp.Plan.Destructive() {
			names = append(names, fmt.Sprintf("%s %s (%s)", c.Kind, c.Name, strings.Join(c.Details, "; ")))
		}
	}
	if len(names) == 0 || autoApprove {
		return nil
	}
	if !f.IO.InTTY {
		return fmt.Errorf("the plan deletes data (%s); run again with --auto-approve to confirm", strings.Join(names, ", "))
	}
	fmt.Fprintf(f.IO.ErrOut, "\nThese changes delete disks or snapshots:\n")
	for _, n := range names {
		fmt.Fprintf(f.IO.ErrOut, "  - %s\n", n)
	}
	fmt.Fprint(f.IO.ErrOut, "Type \"yes\" to continue: ")
	line, _ := bufio.NewReader(f.IO.In).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errors.New("cancelled: nothing was changed")
	}
	return nil
}
