package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

// DestroyOptions are the inputs of `legacyvm destroy`.
type DestroyOptions struct {
	Path        string
	Only        []string
	AutoApprove bool
	LockWait    time.Duration
}

func newCmdDestroy(f *Factory) *cobra.Command {
	opts := &DestroyOptions{}
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
  legacyvm destroy --only lab-2 examples/lab
  legacyvm destroy --auto-approve ./ci-profile`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = pathArg(args)
			return destroyRun(cmd, f, opts)
		},
	}
	cmd.Flags().StringSliceVar(&opts.Only, "only", nil, "destroy only these VM instances (comma-separated or repeated)")
	cmd.Flags().BoolVar(&opts.AutoApprove, "auto-approve", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&opts.LockWait, "lock-wait", 5*time.Minute, "how long to wait for another command working on the same profile")
	return cmd
}

func destroyRun(cmd *cobra.Command, f *Factory, opts *DestroyOptions) error {
	ctx := cmd.Context()
	p, err := f.loadProfile(opts.Path)
	if err != nil {
		return err
	}
	lock, err := f.lockProfile(ctx, p, "destroy", opts.LockWait)
	if err != nil {
		return err
	}
	defer lock.Release()
	vmLocks, err := f.lockProfileVMs(ctx, p, "destroy", opts.LockWait)
	if err != nil {
		return err
	}
	defer vmLocks.Release()
	hps, err := orchestrator.PlanDestroy(ctx, p, f.Connect, f.planOptions(), opts.Only)
	if err != nil {
		return err
	}
	defer orchestrator.CloseAll(hps)
	orphanLocks, err := f.lockPlannedVMs(ctx, p, hps, "destroy", opts.LockWait)
	if err != nil {
		return err
	}
	defer orphanLocks.Release()
	if !f.showPlans(hps) {
		if f.JSON() {
			return writeApplyJSON(f, p.Name, nil)
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
	return f.executePlans(ctx, p, hps, "Destroyed")
}
