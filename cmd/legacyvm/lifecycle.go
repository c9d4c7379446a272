package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

// StartOptions are the inputs of `legacyvm start`.
type StartOptions struct {
	Factory *Factory
	Names   []string
	// Profile is --profile: only that profile's VMs, on its host.
	Profile  string
	LockWait time.Duration
}

func NewCmdStart(f *Factory, runF func(*StartOptions) error) *cobra.Command {
	opts := &StartOptions{Factory: f}
	cmd := &cobra.Command{
		Use:               "start VM...",
		ValidArgsFunction: completeVMNames(f),
		Short:             "Start managed VMs",
		Example: `  legacyvm start acct-1 acct-2
  legacyvm start --profile examples/quickstart demo`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			if runF != nil {
				return runF(opts)
			}
			return startRun(cmd.Context(), opts)
		},
	}
	addProfileScope(cmd, &opts.Profile)
	addLockWaitFlag(cmd, &opts.LockWait)
	return cmd
}

func startRun(ctx context.Context, opts *StartOptions) error {
	return lifecycleRun(ctx, opts.Factory, opts.Profile, opts.Names, "start", opts.LockWait, func(e *orchestrator.Session) []orchestrator.Result {
		return e.Start(ctx, opts.Names)
	})
}

// StopOptions are the inputs of `legacyvm stop`.
type StopOptions struct {
	Factory  *Factory
	Names    []string
	Profile  string
	Timeout  time.Duration
	Force    bool
	NoForce  bool
	LockWait time.Duration
}

func NewCmdStop(f *Factory, runF func(*StopOptions) error) *cobra.Command {
	opts := &StopOptions{Factory: f}
	cmd := &cobra.Command{
		Use:               "stop VM...",
		ValidArgsFunction: completeVMNames(f),
		Short:             "Shut managed VMs down (gracefully, then by force)",
		Long: `Stop presses the virtual power button of each VM (ACPI shutdown) and waits up
to --timeout for the guest to power off; a guest still running then is powered
off at once, unless --no-force. --force skips the polite request.`,
		Example: `  legacyvm stop acct-1
  legacyvm stop --timeout 5m --profile examples/ops-daily ops
  legacyvm stop --force acct-1 acct-2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			if runF != nil {
				return runF(opts)
			}
			return stopRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 2*time.Minute, "how long to wait for the guest to shut down")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "power off at once")
	cmd.Flags().BoolVar(&opts.NoForce, "no-force", false, "never power off: fail if the guest does not shut down in time")
	addProfileScope(cmd, &opts.Profile)
	addLockWaitFlag(cmd, &opts.LockWait)
	return cmd
}

func stopRun(ctx context.Context, opts *StopOptions) error {
	return lifecycleRun(ctx, opts.Factory, opts.Profile, opts.Names, "stop", opts.LockWait, func(e *orchestrator.Session) []orchestrator.Result {
		return e.Stop(ctx, opts.Names, opts.Timeout, opts.Force, opts.NoForce)
	})
}

func lifecycleRun(ctx context.Context, f *Factory, profilePath string, names []string, purpose string, lockWait time.Duration, run func(*orchestrator.Session) []orchestrator.Result) error {
	hv, sc, err := f.connectScope(ctx, profilePath)
	if err != nil {
		return err
	}
	defer hv.Close()
	locks, err := f.lockVMs(ctx, sc.URI, names, purpose, lockWait)
	if err != nil {
		return err
	}
	defer locks.Release()
	e := f.engine(hv)
	e.Profile = sc.Profile
	res := run(e)
	if f.JSON() {
		if err := writeJSON(f, lifecycleToJSON(purpose, res)); err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range res {
		if r.Err != "" {
			failed++
			fmt.Fprintf(f.IO.ErrOut, "Error: %s: %s\n", r.Object, r.Err)
		}
	}
	if failed > 0 {
		return silent(exitError)
	}
	return nil
}

// ConsoleOptions are the inputs of `legacyvm console`.
type ConsoleOptions struct {
	Factory   *Factory
	VM        string
	Profile   string
	PrintOnly bool
}

func NewCmdConsole(f *Factory, runF func(*ConsoleOptions) error) *cobra.Command {
	opts := &ConsoleOptions{Factory: f}
	cmd := &cobra.Command{
		Use:               "console VM",
		ValidArgsFunction: completeFirstVM(f),
		Short:             "Open the VM's screen (or print its VNC address)",
		Long: `Console opens the VM's graphical console with virt-viewer or remote-viewer when
one is installed, else prints the VNC address. VNC listens on 127.0.0.1 of the
libvirt host only: for a remote host, tunnel it (ssh -L 5900:127.0.0.1:5900 HOST).`,
		Example: `  legacyvm console acct-1
  legacyvm console --print --profile examples/lab acct-1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.VM = args[0]
			if runF != nil {
				return runF(opts)
			}
			return consoleRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.PrintOnly, "print", false, "only print the VNC address")
	addProfileScope(cmd, &opts.Profile)
	return cmd
}

func consoleRun(ctx context.Context, opts *ConsoleOptions) error {
	f := opts.Factory
	hv, sc, err := f.connectScope(ctx, opts.Profile)
	if err != nil {
		return err
	}
	defer hv.Close()
	uri := sc.URI
	e := f.engine(hv)
	e.Profile = sc.Profile
	ds, err := e.Managed(ctx, []string{opts.VM})
	if err != nil {
		return err
	}
	d := ds[0]
	if d.VNC == "" {
		return fmt.Errorf("%s has no active display (state %s); start it first: legacyvm start %s", d.Name, d.State, d.Name)
	}
	if f.JSON() {
		return writeJSON(f, consoleDoc{docHeader: v1, VM: d.Name, VNC: d.VNC})
	}
	if !opts.PrintOnly {
		for _, viewer := range []string{"virt-viewer", "remote-viewer"} {
			if path, err := exec.LookPath(viewer); err == nil {
				c := exec.CommandContext(ctx, path, "--connect", uri, d.Name)
				if viewer == "remote-viewer" {
					c = exec.CommandContext(ctx, path, "vnc://"+d.VNC)
				}
				c.Stdout, c.Stderr = f.IO.ErrOut, f.IO.ErrOut
				return c.Run()
			}
		}
	}
	fmt.Fprintf(f.IO.Out, "vnc://%s\n", d.VNC)
	return nil
}
