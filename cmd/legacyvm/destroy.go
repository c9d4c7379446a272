package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// DestroyOptions are the inputs of `legacyvm destroy`.
type DestroyOptions struct {
	Factory     *Factory
	Path        string
	Only        []string
	AutoApprove bool
	LockWait    time.Duration
}

func NewCmdDestroy(f *Factory, runF func(*DestroyOptions) error) *cobra.Command {
	opts := &DestroyOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "destroy [PATH]",
		Short: "Delete everything a profile created on the host",
		Long: `Destroy removes what the profile at PATH (default ".") owns on its hosts: its
VMs with their disks, answer media and snapshots, and its networks with their
traffic filters. Objects are recognised by legacyvm's metadata naming the
profile: anything else, even with a similar name, is left alone.

Destroy lists what it will delete (with the number of snapshots each disk
holds) and asks for "yes", unless --auto-approve. With --only it deletes just
those VMs and keeps the networks.`,
		Example: `  legacyvm destroy examples/lab
  legacyvm destroy --only acct-2 examples/lab
  legacyvm destroy --auto-approve examples/quickstart`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = pathArg(args)
			if runF != nil {
				return runF(opts)
			}
			return destroyRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVar(&opts.Only, "only", nil, "destroy only these VM instances (comma-separated or repeated)")
	cmd.Flags().BoolVar(&opts.AutoApprove, "auto-approve", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&opts.LockWait, "lock-wait", 5*time.Minute, "how long to wait for another command working on the same profile or one of its VMs")
	return cmd
}

func destroyRun(ctx context.Context, opts *DestroyOptions) error {
	f := opts.Factory
	p, err := f.loadProfile(opts.Path)
	if err != nil {
		return err
	}
	locks, err := f.lockProfile(ctx, p, "destroy", opts.LockWait)
	if err != nil {
		return err
	}
	defer locks.Release()
	s := f.session(p, f.planOptions())
	defer s.Close()
	hps, err := s.PlanDestroy(ctx, opts.Only)
	if err != nil {
		return err
	}
	sk := skippedHosts(hps)
	hps = plannedHosts(hps)
	orphanLocks, err := s.LockPlanned(ctx, hps, "destroy", opts.LockWait, f.lockWaiting)
	if err != nil {
		return err
	}
	defer orphanLocks.Release()
	changes := f.showPlans(hps)
	f.reportSkipped(sk)
	if !changes {
		if f.JSON() {
			if err := writeApplyJSON(f, p.Name, nil, sk); err != nil {
				return err
			}
		}
		if len(sk) > 0 {
			return f.partialSummary("nothing to destroy", len(hps), sk)
		}
		return nil
	}
	if !opts.AutoApprove {
		if !f.IO.InTTY {
			return errors.New("destroy deletes disks and snapshots; run again with --auto-approve to confirm")
		}
		fmt.Fprintf(f.IO.ErrOut, "Type \"yes\" to delete the objects above: ")
		line, _ := bufio.NewReader(f.IO.In).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("cancelled: nothing was deleted")
		}
	}
	return f.executePlans(ctx, s, p, hps, "Destroyed", sk)
}
