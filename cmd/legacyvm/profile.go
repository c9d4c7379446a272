package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

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
	o.ProbeListen = orchestrator.ProbeListen
	if st, err := orchestrator.ReadDaemonState(f.DaemonStatePath()); err == nil {
		o.OwnListeners = st.Listeners()
	}
	return o
}

// DaemonStatePath is legacyvm daemon's state file: in LEGACYVM_RUN_DIR,
// else /run/legacyvm.
func (f *Factory) DaemonStatePath() string {
	dir := orchestrator.DefaultRunDir
	if v, ok := f.Getenv("LEGACYVM_RUN_DIR"); ok && v != "" {
		dir = v
	}
	return filepath.Join(dir, orchestrator.DaemonStateFile)
}

// engine builds an orchestrator engine on hv that reports progress on
// stderr.
func (f *Factory) engine(hv virt.Hypervisor) *orchestrator.Engine {
	e := &orchestrator.Engine{
		HV:           hv,
		Parallelism:  f.Parallelism,
		Getenv:       f.Getenv,
		Fingerprint:  f.fingerprint,
		PollInterval: f.PollInterval,
	}
	switch f.progressMode() {
	case "none":
	case "json":
		e.Hook = jsonProgress(f.IO.ErrOut)
	default:
		e.Hook = lineProgress(f.IO.ErrOut)
	}
	return e
}

// liveEngine is engine for long work on many VMs: on a terminal (and
// without -o json) progress is a board redrawn in place, one line per
// object; elsewhere the same timestamped lines as engine. done must be
// called before anything else is printed to stderr.
func (f *Factory) liveEngine(hv virt.Hypervisor) (e *orchestrator.Engine, done func()) {
	e = f.engine(hv)
	if f.progressMode() != "board" {
		return e, func() {}
	}
	b := newBoard(f.IO.ErrOut, f.IO.TerminalWidth())
	e.Hook = b
	return e, b.Close
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
