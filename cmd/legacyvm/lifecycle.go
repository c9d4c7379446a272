package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

func newCmdStart(f *Factory) *cobra.Command {
	var lockWait time.Duration
	cmd := &cobra.Command{
		Use:     "start VM...",
		Short:   "Start managed VMs",
		Example: `  legacyvm start lab-1 lab-2`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return lifecycleRun(cmd, f, args, "start", lockWait, func(e *orchestrator.Engine) []orchestrator.Result {
				return e.Start(cmd.Context(), args)
			})
		},
	}
	addLockWaitFlag(cmd, &lockWait)
	return cmd
}

func newCmdStop(f *Factory) *cobra.Command {
	var (
		timeout  time.Duration
		force    bool
		noForce  bool
		lockWait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stop VM...",
		Short: "Shut managed VMs down (gracefully, then by force)",
		Long: `Stop presses the virtual power button of each VM (ACPI shutdown) and waits up
to --timeout for the guest to power off; a guest still running then is powered
off at once, unless --no-force. --force skips the polite request.`,
		Example: `  legacyvm stop lab-1
  legacyvm stop --timeout 5m ops-1
  legacyvm stop --force lab-1 lab-2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return lifecycleRun(cmd, f, args, "stop", lockWait, func(e *orchestrator.Engine) []orchestrator.Result {
				return e.Stop(cmd.Context(), args, timeout, force, noForce)
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the guest to shut down")
	cmd.Flags().BoolVar(&force, "force", false, "power off at once")
	cmd.Flags().BoolVar(&noForce, "no-force", false, "never power off: fail if the guest does not shut down in time")
	addLockWaitFlag(cmd, &lockWait)
	return cmd
}

func lifecycleRun(cmd *cobra.Command, f *Factory, names []string, purpose string, lockWait time.Duration, run func(*orchestrator.Engine) []orchestrator.Result) error {
	uri := f.URI()
	locks, err := f.lockVMs(cmd.Context(), uri, names, purpose, lockWait)
	if err != nil {
		return err
	}
	defer locks.Release()
	hv, err := f.Connect(cmd.Context(), uri)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", uri, err)
	}
	defer hv.Close()
	res := run(f.engine(hv))
	if f.JSON() {
		enc := json.NewEncoder(f.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
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

func newCmdConsole(f *Factory) *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "console VM",
		Short: "Open the VM's screen (or print its VNC address)",
		Long: `Console opens the VM's graphical console with virt-viewer or remote-viewer when
one is installed, else prints the VNC address. VNC listens on 127.0.0.1 of the
libvirt host only: for a remote host, tunnel it (ssh -L 5900:127.0.0.1:5900 HOST).`,
		Example: `  legacyvm console lab-1
  legacyvm console --print lab-1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			uri := f.URI()
			hv, err := f.Connect(ctx, uri)
			if err != nil {
				return fmt.Errorf("connect to %s: %w", uri, err)
			}
			defer hv.Close()
			d, err := hv.GetDomain(ctx, args[0])
			if err != nil {
				return err
			}
			if d.Metadata == nil {
				return fmt.Errorf("domain %q: %w", args[0], orchestrator.ErrNotManaged)
			}
			if d.VNC == "" {
				return fmt.Errorf("%s has no active display (state %s); start it first: legacyvm start %s", d.Name, d.State, d.Name)
			}
			if f.JSON() {
				return json.NewEncoder(f.IO.Out).Encode(map[string]string{"vm": d.Name, "vnc": d.VNC})
			}
			if !printOnly {
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
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "only print the VNC address")
	return cmd
}
