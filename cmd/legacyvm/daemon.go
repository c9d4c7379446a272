package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/internal/relay"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// DaemonOptions are the inputs of `legacyvm daemon`.
type DaemonOptions struct {
	Factory       *Factory
	Paths         []string
	Tick          time.Duration
	VerifyEvery   time.Duration
	LogJSON       bool
	MetricsListen string
}

func NewCmdDaemon(f *Factory, runF func(*DaemonOptions) error) *cobra.Command {
	opts := &DaemonOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "daemon [PATH...]",
		Short: "Run snapshot schedules and revert-on-shutdown",
		Long: `Daemon runs every managed VM's snapshot schedule (one tick a minute: retention
first, then the snapshot that is due; one VM at a time per VM, retried when
libvirt reports the VM busy) and listens to libvirt's lifecycle events: a VM
whose policy says on_shutdown = "revert" is put back to its baseline (and
started again) after its guest shuts itself down.

Every --verify-every (default 5m) it runs verify on every managed VM and
repairs, live and without a restart, a traffic filter someone removed from a
VM's definition or running interface; what it cannot repair is logged as an
error.

It keeps no state: policies and schedules are read from libvirt at every tick.
It reconnects when libvirtd restarts, logs structured lines to stderr and
stops cleanly on SIGTERM or Ctrl-C.

One daemon serves several hosts: give profile PATHs (every host block's
uri) or --connect; each host has its own connection with keepalive and its
own reconnect backoff. A host that goes away is logged once with
health=unhealthy (lost the connection, or cannot connect) and retried while
the others go on being served; "host healthy again" (health=healthy) when it
is back.

Under systemd (make install puts this unit in /usr/local/lib/systemd/system/legacyvm.service):

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
  legacyvm daemon --verify-every 1m
  legacyvm daemon --metrics-listen 127.0.0.1:9464
  legacyvm daemon --connect qemu+ssh://root@lab1/system?no_tty=1 --log-json
  legacyvm daemon examples/lab examples/ops-daily --log-json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			if runF != nil {
				return runF(opts)
			}
			return daemonRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Tick, "tick", time.Minute, "scheduler period")
	cmd.Flags().DurationVar(&opts.VerifyEvery, "verify-every", orchestrator.DefaultVerifyEvery, "how often isolation is verified and a removed traffic filter bound again, live")
	cmd.Flags().StringVar(&opts.MetricsListen, "metrics-listen", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9464; off when empty)")
	cmd.Flags().BoolVar(&opts.LogJSON, "log-json", false, "log JSON lines instead of text")
	return cmd
}

func daemonRun(ctx context.Context, opts *DaemonOptions) error {
	f := opts.Factory
	tick, verifyEvery, logJSON, metricsListen, args := opts.Tick, opts.VerifyEvery, opts.LogJSON, opts.MetricsListen, opts.Paths
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	var h slog.Handler = slog.NewTextHandler(f.IO.ErrOut, nil)
	if logJSON {
		h = slog.NewJSONHandler(f.IO.ErrOut, nil)
	}
	if err := lock.CheckDir(); err != nil {
		return err
	}
	uris, err := daemonURIs(f, args)
	if err != nil {
		return err
	}
	// The door relay, the state file and the metrics belong to one
	// daemon: the first local host's (doors listen on its bridges,
	// which only a local host has), else the first host's.
	primary := 0
	for i, uri := range uris {
		if hostcheck.IsLocal(uri) {
			primary = i
			break
		}
	}
	var ds []*orchestrator.Daemon
	for i, uri := range uris {
		log := slog.New(h).With("uri", uri)
		d := &orchestrator.Daemon{
			Connect:     func(ctx context.Context) (virt.Hypervisor, error) { return f.Connect(ctx, uri) },
			Tick:        tick,
			Log:         log,
			Parallelism: f.Parallelism,
			LockVM: func(ctx context.Context, vm string) (func(), error) {
				l, err := lock.AcquireVM(ctx, uri, vm, "daemon", 0, nil)
				if err != nil {
					return nil, err
				}
				return l.Release, nil
			},
			VerifyEvery: verifyEvery,
			URI:         uri,
			System:      f.HostSystem,
		}
		if i == primary && hostcheck.IsLocal(uri) {
			d.Relay = relay.New(log)
		}
		if i == primary {
			d.StatePath = f.DaemonStatePath()
		}
		ds = append(ds, d)
		log.Info("daemon starting", "tick", tick, "verify_every", verifyEvery, "state", d.StatePath, "relay", d.Relay != nil)
	}
	if metricsListen != "" {
		stopMetrics, err := serveMetrics(ctx, f.Listen, metricsListen, ds[primary], slog.New(h).With("uri", uris[primary]))
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	return orchestrator.RunDaemons(ctx, ds)
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
			u := f.planOptions().HostURI(h)
			if !seen[u] {
				seen[u] = true
				uris = append(uris, u)
			}
		}
	}
	return uris, nil
}

// serveMetrics serves d's Prometheus metrics at http://addr/metrics until
// the returned stop is called.
func serveMetrics(ctx context.Context, listen func(network, addr string) (net.Listener, error), addr string, d *orchestrator.Daemon, log *slog.Logger) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(d.Metrics()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}, nil
}
