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
		Use:   "daemon [PATH...]",
		Short: "Run snapshot schedules and revert-on-shutdown",
		Long: `Daemon runs every managed VM's snapshot schedule (one tick a minute: retention
first, then the snapshot that is due; one VM at a time per VM, retried when
libvirt reports the VM busy) and listens to libvirt's lifecycle events: a VM
whose policy says on_shutdown = "revert" is put back to its baseline (and
started again) after its guest shuts itself down.

It keeps no state: policies and schedules are read from libvirt at every tick.
It reconnects when libvirtd restarts, logs structured lines to stderr and
stops cleanly on SIGTERM or Ctrl-C.

One daemon serves several hosts: give profile PATHs (every host block's
uri) or --connect; each host has its own connection with keepalive and its
own reconnect backoff. A host that goes away is logged once with
health=unhealthy (lost the connection, or cannot connect) and retried while
the others go on being served; "host healthy again" (health=healthy) when it
is back.

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
  legacyvm daemon --connect qemu+ssh://root@lab1/system?no_tty=1 --log-json
  legacyvm daemon examples/lab examples/ops-daily --log-json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
			defer stop()
			var h slog.Handler = slog.NewTextHandler(f.IO.ErrOut, nil)
			if logJSON {
				h = slog.NewJSONHandler(f.IO.ErrOut, nil)
			}
			if err := orchestrator.CheckLockDir(); err != nil {
				return err
			}
			uris, err := daemonURIs(f, args)
			if err != nil {
				return err
			}
			var ds []*orchestrator.Daemon
			for _, uri := range uris {
				log := slog.New(h).With("uri", uri)
				ds = append(ds, &orchestrator.Daemon{
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
				})
				log.Info("daemon starting", "tick", tick)
			}
			return orchestrator.RunDaemons(ctx, ds)
		},
	}
	cmd.Flags().DurationVar(&tick, "tick", time.Minute, "scheduler period")
	cmd.Flags().BoolVar(&logJSON, "log-json", false, "log JSON lines instead of text")
	return cmd
}

// daemonURIs are the hosts the daemon serves: every host of the profiles
// given (in order, without repeats), else --connect's URI.
func daemonURIs(f *Factory, paths []string) ([]string, error) {
	if len(paths) == 0 {
		return []string{f.URI()}, nil
	}
	seen := map[string]bool{}
	var uris []string
	for _, path := range paths {
		p, err := f.loadProfile(path)
		if err != nil {
			return nil, err
		}
		for _, h := range p.Hosts {
			u := orchestrator.HostURI(h, f.planOptions())
			if !seen[u] {
				seen[u] = true
				uris = append(uris, u)
			}
		}
	}
	return uris, nil
}
