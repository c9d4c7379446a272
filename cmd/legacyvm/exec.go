package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/guestagent"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// exitTimeout is exec's exit code when --timeout killed the guest process
// (as timeout(1)).
const exitTimeout = 124

// ExecOptions are the inputs of legacyvm exec.
type ExecOptions struct {
	IO           *IOStreams
	Connect      orchestrator.Connector
	URI          string
	JSON         bool
	VM           string
	Argv         []string
	Env          []string
	Cwd          string
	Timeout      time.Duration
	MaxOutput    string
	AgentTimeout time.Duration
}

func NewCmdExec(f *Factory, runF func(*ExecOptions) error) *cobra.Command {
	o := &ExecOptions{}
	cmd := &cobra.Command{
		Use:   "exec VM -- COMMAND [ARGS...]",
		Short: "Run a command in a VM through the guest agent (no network needed)",
		Long: `Exec runs a program inside a running VM through the QEMU guest agent, which
talks over a virtio-serial channel, not the network: the VM stays sealed. The VM
needs guest_agent = true in its profile and the agent installed in the guest
(docs/guest-agent.md). The program's stdout and stderr are streamed as they come;
legacyvm exits with the program's exit code.

--timeout kills the guest process when it expires (exit code 124). --max-output
bounds stdout+stderr together: a guest printing more is killed, so a runaway
guest cannot fill the host. --env adds environment variables, --cwd sets the
working directory (both through a wrapper: sh on Linux guests, cmd.exe on
Windows).`,
		Example: `  legacyvm exec acct-1 -- cmd /c ver
  legacyvm exec acct-1 --timeout 10m -- C:\stage\run-tests.bat
  legacyvm exec acct-2 --cwd 'C:\stage' --env LOGLEVEL=debug -- setup.exe /quiet
  legacyvm exec -o json acct-1 -- ipconfig /all`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return errors.New("usage: legacyvm exec VM -- COMMAND [ARGS...]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.IO, o.Connect, o.URI, o.JSON = f.IO, f.Connect, f.URI(), f.JSON()
			o.VM, o.Argv = args[0], args[1:]
			if runF != nil {
				return runF(o)
			}
			return execRun(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.Timeout, "timeout", 0, "kill the guest process after this long (0 = no limit)")
	fl.StringArrayVar(&o.Env, "env", nil, "add NAME=VALUE to the program's environment (repeatable)")
	fl.StringVar(&o.Cwd, "cwd", "", "working directory in the guest")
	fl.StringVar(&o.MaxOutput, "max-output", "64MiB", "kill the program when stdout+stderr exceed this size")
	fl.DurationVar(&o.AgentTimeout, "agent-timeout", guestagent.DefaultTimeout, "how long to wait for each guest agent reply")
	return cmd
}

// agentSession connects to the VM's agent: it checks that the domain is
// legacyvm's, runs and has the channel, and detects the guest OS.
func agentSession(ctx context.Context, connect orchestrator.Connector, uri, vm string, timeout time.Duration) (virt.Hypervisor, *guestagent.Client, guestagent.Flavor, error) {
	hv, err := connect(ctx, uri)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", uri, err)
	}
	fail := func(err error) (virt.Hypervisor, *guestagent.Client, guestagent.Flavor, error) {
		hv.Close()
		return nil, nil, nil, err
	}
	d, err := hv.GetDomain(ctx, vm)
	if err != nil {
		return fail(err)
	}
	if d.Metadata == nil {
		return fail(fmt.Errorf("domain %q: %w", vm, orchestrator.ErrNotManaged))
	}
	if !d.GuestAgent {
		return fail(fmt.Errorf("%s has no guest agent channel: set guest_agent = true in its vm block and run legacyvm apply", vm))
	}
	if d.State != virt.StateRunning {
		return fail(fmt.Errorf("%s is %s: start it first (legacyvm start %s)", vm, d.State, vm))
	}
	c := guestagent.New(hv, vm)
	if timeout > 0 {
		c.Timeout = timeout
	}
	fl, err := guestagent.DetectFlavor(ctx, c)
	if err != nil {
		return fail(fmt.Errorf("%s: %w (is the guest agent installed and running in the guest?)", vm, err))
	}
	return hv, c, fl, nil
}

func execRun(ctx context.Context, o *ExecOptions) error {
	max, err := profiles.ParseSize(o.MaxOutput)
	if err != nil || max == 0 {
		return fmt.Errorf("--max-output %q: want a size such as 64MiB", o.MaxOutput)
	}
	hv, c, fl, err := agentSession(ctx, o.Connect, o.URI, o.VM, o.AgentTimeout)
	if err != nil {
		return err
	}
	defer hv.Close()
	ro := guestagent.RunOptions{Argv: o.Argv, Env: o.Env, Cwd: o.Cwd, Timeout: o.Timeout, MaxOutput: int64(max),
		Stdout: o.IO.Out, Stderr: o.IO.ErrOut}
	var out, errb bytes.Buffer
	if o.JSON {
		ro.Stdout, ro.Stderr = &out, &errb
	}
	code, err := c.Run(ctx, fl, ro)
	if o.JSON {
		r := execDoc{docHeader: v1, VM: o.VM, Command: o.Argv, ExitCode: code, Stdout: out.String(), Stderr: errb.String()}
		if err != nil {
			r.Error = err.Error()
		}
		enc := json.NewEncoder(o.IO.Out)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(r); eerr != nil {
			return eerr
		}
	}
	switch {
	case errors.Is(err, guestagent.ErrTimeout):
		return &exitErr{code: exitTimeout, err: err}
	case err != nil:
		return err
	case code != 0:
		// Process exit codes are 8 bits; a Windows code whose low byte is
		// 0 must still read as a failure.
		if code&0xff == 0 {
			return silent(exitError)
		}
		return silent(code & 0xff)
	}
	return nil
}
