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
	uri := orchestrator.HostURI(p.Hosts[0], f.planOptions())
	lock, err := orchestrator.AcquireLock(ctx, p.Name, uri, "destroy", opts.LockWait, func(holder string) {
		f.IO.Status("waiting for the lock on profile %s (%s)...", p.Name, holder)
	})
	if err != nil {
		return err
	}
	defer lock.Release()
	hps, err := orchestrator.PlanDestroy(ctx, p, f.Connect, f.planOptions(), opts.Only)
	if err != nil {
		return err
	}
	defer orchestrator.CloseAll(hps)
	planOut := f.IO.Out
	if f.JSON() {
		planOut = f.IO.ErrOut
	}
	any := false
	for _, hp := range hps {
		writePlanText(planOut, hp.Plan)
		any = any || hp.Plan.HasChanges()
	}
	if !any {
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
	var all []orchestrator.Result
	var failed error
	for _, hp := range hps {
		res, err := f.engine(hp.HV).Apply(ctx, hp.Plan)
		all = append(all, res...)
		if err != nil {
			failed = err
		}
	}
	if f.JSON() {
		if err := writeApplyJSON(f, p.Name, all); err != nil {
			return err
		}
	}
	if failed != nil {
		return failed
	}
	f.IO.Status("Destroyed what profile %s owned.", p.Name)
	return nil
}
