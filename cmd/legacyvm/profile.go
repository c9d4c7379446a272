package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/license"
	"github.com/legacyvm/legacyvm/internal/virt"
	lvlibvirt "github.com/legacyvm/legacyvm/internal/virt/libvirt"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// pathArg is the profile path argument, "." when absent.
func pathArg(args []string) string {
	if len(args) == 0 {
		return "."
	}
	return args[0]
}

// loadProfile loads and validates a profile, printing its diagnostics
// (warnings too). Errors end the command with exit status 1.
func (f *Factory) loadProfile(path string) (*profiles.Profile, error) {
	p, diags := profiles.Load(path, profiles.LoadOptions{Vars: f.Vars, VarFiles: f.VarFiles, Getenv: f.Getenv})
	var sources map[string]*hcl.File
	if p != nil {
		sources = p.Sources
	}
	if len(diags) > 0 {
		if err := writeDiagnostics(f.IO, sources, diags); err != nil {
			return nil, err
		}
	}
	if diags.HasErrors() {
		return nil, silent(exitError)
	}
	f.useProfileFingerprintKey(p.FingerprintKey)
	return p, nil
}

// planOptions are the orchestrator settings that come from flags and the
// environment.
func (f *Factory) planOptions() orchestrator.Options {
	o := orchestrator.Options{DefaultURI: f.URI()}
	if v, ok := f.Getenv("LEGACYVM_SERIAL_LOG_DIR"); ok {
		o.SerialLogDir = v
	}
	// Doors: their listen ports must be free here, except those the
	// daemon's relay already holds.
	o.ProbeListen = hostcheck.ProbeListen
	if st, err := daemonstate.Read(f.DaemonStatePath()); err == nil {
		o.OwnListeners = st.Listeners()
	}
	return o
}

// DaemonStatePath is legacyvm daemon's state file: in LEGACYVM_RUN_DIR,
// else /run/legacyvm.
func (f *Factory) DaemonStatePath() string {
	dir := daemonstate.DefaultRunDir
	if v, ok := f.Getenv("LEGACYVM_RUN_DIR"); ok && v != "" {
		dir = v
	}
	return filepath.Join(dir, daemonstate.File)
}

// sessionOptions are the engine settings of a command: its parallelism,
// environment, fingerprints, poll interval and a hook that reports
// progress on stderr (--progress: plain lines, JSON lines or nothing).
func (f *Factory) sessionOptions() orchestrator.SessionOptions {
	o := orchestrator.SessionOptions{
		Connect:      f.Connect,
		Parallelism:  f.Parallelism,
		Getenv:       f.Getenv,
		Fingerprint:  f.fingerprint,
		PollInterval: f.PollInterval,
	}
	switch f.progressMode() {
	case "none":
	case "json":
		o.Hook = jsonProgress(f.IO.ErrOut)
	default:
		o.Hook = lineProgress(f.IO.ErrOut)
	}
	return o
}

// session opens an orchestrator session on profile p with the planning
// options po; the caller closes it.
func (f *Factory) session(p *profiles.Profile, po orchestrator.Options) *orchestrator.Session {
	o := f.sessionOptions()
	o.Plan = po
	return orchestrator.Open(p, o)
}

// engine opens an orchestrator session on the connected host hv that
// reports progress on stderr.
func (f *Factory) engine(hv virt.Hypervisor) *orchestrator.Session {
	return orchestrator.OnHost(hv, "", f.sessionOptions())
}

// live is s for long work on many VMs: on a terminal (and without -o
// json) progress is a board redrawn in place, one line per object;
// elsewhere the same timestamped lines as engine. done must be called
// before anything else is printed to stderr.
func (f *Factory) live(s *orchestrator.Session) (_ *orchestrator.Session, done func()) {
	if f.progressMode() != "board" {
		return s, func() {}
	}
	b := newBoard(f.IO.ErrOut, f.IO.TerminalWidth())
	return s.WithHook(b), b.Close
}

// liveEngine is engine with live's progress.
func (f *Factory) liveEngine(hv virt.Hypervisor) (*orchestrator.Session, func()) {
	return f.live(f.engine(hv))
}

// fingerprint computes the keyed fingerprint of a product key with the
// host secret, and the secret's id: the profile's shared secret
// (fingerprint_key) when it names one, else the user's own secret file,
// created on first use but not while held (VMs recording fingerprints) is
// not empty.
func (f *Factory) fingerprint(k license.Key, held []license.FingerprintHolder) (string, string, error) {
	if fp, err := f.sharedFingerprinter(); fp != nil || err != nil {
		if err != nil {
			return "", "", err
		}
		return fp.Fingerprint(k), fp.SecretID(), nil
	}
	path, err := license.DefaultFingerprintPath()
	if err != nil {
		return "", "", err
	}
	fp, err := license.OpenFingerprinter(path, held)
	if err != nil {
		return "", "", err
	}
	return fp.Fingerprint(k), fp.SecretID(), nil
}

func defaultConnect(ctx context.Context, uri string) (virt.Hypervisor, error) {
	hv, err := lvlibvirt.Connect(ctx, uri)
	if err != nil {
		// A nil *Hypervisor in the interface would not compare equal to
		// nil: callers that go on without a connection (doctor) test hv.
		return nil, err
	}
	return hv, nil
}

// printDiagnostics prints diagnostics from planning (located in the
// profile's sources).
func (f *Factory) printDiagnostics(sources map[string]*hcl.File, diags hcl.Diagnostics) {
	if err := writeDiagnostics(f.IO, sources, diags); err != nil {
		fmt.Fprintln(f.IO.ErrOut, diags.Error())
	}
}
