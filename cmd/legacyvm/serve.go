package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/web"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// defaultWebDir holds the web console's token store and audit log.
const defaultWebDir = "/var/lib/legacyvm/web"

// webDirEnv overrides defaultWebDir.
const webDirEnv = "LEGACYVM_WEB_DIR"

// ServeOptions are the inputs of legacyvm serve.
type ServeOptions struct {
	IO      *IOStreams
	Connect orchestrator.Connector
	URI     string
	// Addr is the address to listen on (--listen).
	Addr    string
	TLSCert string
	TLSKey  string
	WebDir  string
	LogJSON bool
	// Paths are the profiles served: admins may plan, apply and destroy
	// them through the API (viewers may plan).
	Paths []string
	// Factory loads the profiles and makes their engine settings (with
	// Paths).
	Factory *Factory
	// Listen opens the listening socket (nil: net.Listen).
	Listen func(network, addr string) (net.Listener, error)
	// Ready, when set, receives the address the server listens on once
	// it does (tests).
	Ready func(addr string)
}

// NewCmdServe makes `legacyvm serve`; runF replaces serveRun in tests.
func NewCmdServe(f *Factory, runF func(*ServeOptions) error) *cobra.Command {
	o := &ServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve [PATH...]",
		Short: "Serve the web console and its JSON API",
		Long: `Serve runs the web console: a page that shows every VM legacyvm manages on the
host (state, address, licence label, snapshots, a screenshot refreshed every few
seconds), resets it in one click, reverts it to a snapshot, takes snapshots,
starts and stops it, and shows its desktop in the browser (noVNC over a
websocket that legacyvm relays to the VM's display). The same binary serves a
versioned JSON API under /api/v1 (described at /api/v1/openapi.json) and the
engine's progress as server-sent events (/api/v1/events). See docs/web.md.

Who may do what is decided by tokens (legacyvm token create): viewer sees,
tester may also reset, revert, snapshot, start, stop, use the console and run
commands in guests (exec), admin may also apply and destroy the served
profiles. The page logs in with a token; API clients send Authorization:
Bearer TOKEN. Every action goes to the audit log (<web-dir>/audit.log, JSON
lines).

By default it listens on 127.0.0.1:8470 only. Give --tls-cert and --tls-key to
serve HTTPS; listening on another address without TLS sends tokens and the
console in clear text, and serve says so loudly:

  legacyvm serve --listen 0.0.0.0:8443 --tls-cert /etc/legacyvm/web.crt --tls-key /etc/legacyvm/web.key

Give profile paths to serve them: anyone may then plan them, and an admin
apply and destroy them from the page or the API (POST
/api/v1/profiles/NAME/apply), with the
same locks as legacyvm apply and destroy; the request is the confirmation (the
page asks first). Their product keys are read when an apply needs them, from
where each profile says, with the server's environment.

The console relays the VM's display through libvirt's display socket (local
connections); run serve on the libvirt host.`,
		Example: `  legacyvm token create --role tester --name alice
  legacyvm serve
  legacyvm serve --listen 127.0.0.1:8471 --web-dir web
  ACCT_WIN7_MAK=$(pass win7/acct-mak) legacyvm serve examples/lab examples/quickstart`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.IO, o.Connect, o.URI, o.Factory, o.Paths, o.Listen = f.IO, f.Connect, f.URI(), f, args, f.Listen
			if o.WebDir == "" {
				o.WebDir = webDir(f)
			}
			if runF != nil {
				return runF(o)
			}
			return serveRun(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Addr, "listen", "127.0.0.1:8470", "address to listen on")
	fl.StringVar(&o.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	fl.StringVar(&o.TLSKey, "tls-key", "", "the certificate's private key (PEM)")
	addWebDirFlag(cmd, &o.WebDir)
	fl.BoolVar(&o.LogJSON, "log-json", false, "log JSON lines instead of text")
	return cmd
}

func addWebDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "web-dir", "", "directory of the token store and audit log (default $"+webDirEnv+" or "+defaultWebDir+")")
}

func webDir(f *Factory) string {
	if d, ok := f.Getenv(webDirEnv); ok && d != "" {
		return d
	}
	return defaultWebDir
}

// loopbackOnly reports whether addr listens on loopback only.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveProfiles loads the profiles given on the command line (nil when
// none is). Two profiles with one name are refused: the API names them.
func serveProfiles(o *ServeOptions) (*web.EngineProfiles, error) {
	if len(o.Paths) == 0 {
		return nil, nil
	}
	f := o.Factory
	ep := &web.EngineProfiles{LockWait: 5 * time.Minute}
	seen := map[string]string{}
	for _, path := range o.Paths {
		p, err := f.loadProfile(path)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[p.Name]; ok {
			return nil, fmt.Errorf("%s and %s are both profile %q: serve each profile once", prev, path, p.Name)
		}
		seen[p.Name] = path
		ep.Profiles = append(ep.Profiles, p)
	}
	so := f.sessionOptions()
	so.Hook = nil // each action's hook (the page's event stream)
	so.Plan = f.planOptions()
	ep.Session = so
	return ep, nil
}

func serveRun(ctx context.Context, o *ServeOptions) error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("give both --tls-cert and --tls-key, or neither")
	}
	var h slog.Handler = slog.NewTextHandler(o.IO.ErrOut, nil)
	if o.LogJSON {
		h = slog.NewJSONHandler(o.IO.ErrOut, nil)
	}
	log := slog.New(h)
	var tlsConf *tls.Config
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if tlsConf == nil && !loopbackOnly(o.Addr) {
		log.Warn("WARNING: serving without TLS on a non-loopback address: tokens, session cookies and the VM consoles cross the network in clear text; give --tls-cert and --tls-key", "listen", o.Addr)
	}
	if err := os.MkdirAll(o.WebDir, 0o700); err != nil {
		return fmt.Errorf("web directory: %w", err)
	}
	audit, err := web.OpenAuditLog(filepath.Join(o.WebDir, "audit.log"))
	if err != nil {
		return err
	}
	defer audit.Close()
	served, err := serveProfiles(o)
	if err != nil {
		return err
	}
	hv, err := o.Connect(ctx, o.URI)
	if err != nil {
		return err
	}
	defer hv.Close()
	if !web.ConsoleAssetsBuilt() {
		log.Warn("this binary was built without the console assets (make web): the page works, the in-browser console does not")
	}
	opts := web.Options{
		Backend: &web.EngineBackend{HV: hv, URI: o.URI, Local: hostcheck.IsLocal(o.URI), LockWait: time.Minute},
		Tokens:  web.NewTokenStore(filepath.Join(o.WebDir, "tokens.json")),
		Audit:   audit,
		Log:     log,
		Secure:  tlsConf != nil,
	}
	if served != nil {
		opts.Profiles = served
	}
	srv := web.New(opts)
	defer srv.Close()
	listen := o.Listen
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConf,
		ErrorLog: slog.NewLogLogger(h, slog.LevelWarn)}
	scheme := "http"
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https"
	}
	log.Info("serving the web console", "url", fmt.Sprintf("%s://%s/", scheme, ln.Addr()), "uri", o.URI, "web_dir", o.WebDir)
	if served != nil {
		log.Info("serving profiles", "profiles", strings.Join(served.Names(), ","))
	}
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Close()
	_ = hs.Shutdown(sctx)
	return nil
}
