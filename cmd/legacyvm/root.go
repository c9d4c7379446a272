package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// Exit codes.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // plan: changes present
)

// exitErr makes a command end with a specific code. Err, when set, has not
// been printed yet.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitErr) Unwrap() error { return e.err }

// silent ends the command with code without printing anything more.
func silent(code int) error { return &exitErr{code: code} }

func exitCode(err error, io *IOStreams) int {
	if err == nil {
		return exitOK
	}
	var ee *exitErr
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(io.ErrOut, "Error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(io.ErrOut, "Error:", err)
	return exitError
}

// Factory carries what commands share: streams, global options and how to
// reach the outside world. Tests replace its fields.
type Factory struct {
	IO *IOStreams
	// Global flags.
	ConnectURI  string
	Output      string // "text" or "json"
	Parallelism int
	// Progress is --progress: auto, plain, json or none.
	Progress string
	// PollInterval overrides how often the engine polls the host (tests
	// on the fake host); 0 is the engine's default.
	PollInterval time.Duration
	// Vars, VarFiles are the -var / -var-file inputs for profile loading.
	Vars     []string
	VarFiles []string
	Getenv   func(string) (string, bool)
	// Connect opens a hypervisor connection (libvirt; tests may swap it).
	Connect orchestrator.Connector
	// HostSystem is the local system doctor inspects.
	HostSystem hostcheck.System
	// Now is the clock (tests fix it).
	Now func() time.Time
	// Listen opens a listening socket (serve; tests swap it so that no
	// socket is opened).
	Listen func(network, addr string) (net.Listener, error)
	// shared is the profile's fingerprint_key, when it names one.
	shared *sharedKey
}

func newFactory(io *IOStreams) *Factory {
	f := &Factory{IO: io, Getenv: os.LookupEnv, Connect: defaultConnect, Now: time.Now, Listen: net.Listen}
	// LEGACYVM_HOST_ROOT points doctor at a copy of /proc and /run (tests).
	if root, ok := os.LookupEnv("LEGACYVM_HOST_ROOT"); ok {
		f.HostSystem.Root = root
	}
	return f
}

// URI returns the libvirt URI: --connect, else LIBVIRT_DEFAULT_URI, else
// qemu:///system.
func (f *Factory) URI() string {
	if f.ConnectURI != "" {
		return f.ConnectURI
	}
	if v, ok := f.Getenv("LIBVIRT_DEFAULT_URI"); ok && v != "" {
		return v
	}
	return profiles.DefaultURI
}

// JSON reports whether -o json was asked for.
func (f *Factory) JSON() bool { return f.Output == "json" }

func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "legacyvm",
		Short: "Keep legacy Windows 7 VMs alive, isolated and restorable",
		Long: `legacyvm provisions Windows 7 virtual machines declared in HCL profiles through
libvirt (QEMU/KVM), fences them onto networks that cannot reach anything they
were not allowed to reach, protects them with snapshot policies and keeps the
product key you supply for each VM secret.

A profile is a directory of *.hcl files (or one file). Start with an example:

  legacyvm validate examples/single-vm
  legacyvm plan examples/single-vm
  legacyvm apply examples/single-vm

Exit status: 0 done; 1 error; 2 plan found changes; 3 partial: a profile
spans several hosts and some did not answer or failed (the summary names
them; the others were done). See docs/hosts.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if f.Output != "text" && f.Output != "json" {
				return fmt.Errorf("-o/--output must be text or json, not %q", f.Output)
			}
			if f.Parallelism < 1 {
				return fmt.Errorf("--parallelism must be at least 1")
			}
			if err := validProgress(f.Progress); err != nil {
				return err
			}
			return checkFlagsApply(cmd)
		},
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	pf := root.PersistentFlags()
	pf.StringVarP(&f.ConnectURI, "connect", "c", "", "libvirt URI (default $LIBVIRT_DEFAULT_URI or qemu:///system)")
	pf.StringVarP(&f.Output, "output", "o", "text", "output format: text or json")
	pf.IntVar(&f.Parallelism, "parallelism", defaultParallelism(), "how many VMs to work on at once")
	pf.StringArrayVar(&f.Vars, "var", nil, "set a profile variable: -var name=value (repeatable)")
	pf.StringArrayVar(&f.VarFiles, "var-file", nil, "read profile variables from an HCL file (repeatable)")
	pf.StringVar(&f.Progress, "progress", "auto", "progress on stderr: auto (JSON lines with -o json; a board redrawn in place on a terminal unless TERM=dumb or NO_COLOR is set; else lines), plain (timestamped lines), json (one event object per line) or none")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("progress", cobra.FixedCompletions(progressModes, cobra.ShellCompDirectiveNoFileComp))

	// Every command is NewCmdX(f, runF): runF, when not nil, replaces
	// the command's run function (tests check the options it parsed).
	root.AddCommand(
		NewCmdValidate(f, nil),
		NewCmdFmt(f, nil),
		NewCmdPlan(f, nil),
		NewCmdApply(f, nil),
		NewCmdDestroy(f, nil),
		NewCmdStatus(f, nil),
		NewCmdStart(f, nil),
		NewCmdStop(f, nil),
		NewCmdConsole(f, nil),
		NewCmdDoctor(f, nil),
		NewCmdVerify(f, nil),
		NewCmdLicenses(f, nil),
		NewCmdSnapshot(f),
		NewCmdReset(f, nil),
		NewCmdDaemon(f, nil),
		NewCmdExec(f, nil), NewCmdCp(f, nil), NewCmdTest(f, nil),
		NewCmdVersion(f, nil),
		NewCmdImage(f),
		NewCmdGenMan(f, nil),
		NewCmdServe(f, nil), NewCmdToken(f),
	)
	annotateCommands(root)
	return root
}

// defaultParallelism is one VM per CPU, at least 2 and at most 8: most of
// the work is waiting on libvirt and QEMU, not computing.
func defaultParallelism() int {
	n := runtime.NumCPU()
	if n < 2 {
		n = 2
	}
	if n > 8 {
		n = 8
	}
	return n
}
