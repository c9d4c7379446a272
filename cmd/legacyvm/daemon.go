package main

import (
	"context"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
)

func newCmdDaemon(f *Factory) *cobra.Command {
	var (
		tick    time.Duration
		logJSON bool
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run snapshot schedules and revert-on-shutdown",
		Long: `Daemon runs every managed VM's snapshot schedule (one tick a minute: retention
first, then the snapshot that is due; one VM at a time per VM, retried when
libvirt reports the VM busy) and listens to libvirt's lifecycle events: a VM
whose policy says on_shutdown = "revert" is put back to its baseline (and
started again) after its guest shuts itself down.

It keeps no state: policies and schedules are read from libvirt at every tick.
It reconnects when libvirtd restarts, logs structured lines to stderr and
stops cleanly on SIGTERM or Ctrl-C.

Under systemd (/etc/systemd/system/legacyvm.service):

  [Unit]
  Description=legacyvm snapshot schedules
  After=libvirtd.service
  Wants=libvirtd.service

  [Service]
  ExecStart=/usr/local/bin/legacyvm daemon --log-json
  Restart=on-failure

  [Install]
  WantedBy=multi-user.target`,
		Example: `  legacyvm daemon
  legacyvm daemon --connect qemu+ssh://root@lab1/system?no_tty=1 --log-json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
			defer stop()
			var h slog.Handler = slog.NewTextHandler(f.IO.ErrOut, nil)
			if logJSON {
				h = slog.NewJSONHandler(f.IO.ErrOut, nil)
			}
			uri := f.URI()
			log := slog.New(h).With("uri", uri)
			d := &orchestrator.Daemon{
				Connect:     func(ctx context.Context) (virt.Hypervisor, error) { return f.Connect(ctx, uri) },
				Tick:        tick,
				Log:         log,
				Parallelism: f.Parallelism,
				LockVM: func(ctx context.Context, vm string) (func(), error) {
					l, err := orchestrator.AcquireVMLock(ctx, uri, vm, "daemon", 0, nil)
					if err != nil {
						return nil, err
					}
					return l.Release, nil
				},
			}
			if err := orchestrator.CheckLockDir(); err != nil {
				return err
			}
			log.Info("daemon starting", "tick", tick)
			return d.Run(ctx)
		},
	}
	cmd.Flags().DurationVar(&tick, "tick", time.Minute, "scheduler period")
	cmd.Flags().BoolVar(&logJSON, "log-json", false, "log JSON lines instead of text")
	return cmd
}
