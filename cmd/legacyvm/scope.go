package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// Global flags that only mean something to some commands. A command says
// which of them it honours with an annotation; using one elsewhere is an
// error instead of being silently ignored (issue 10: reset --all
// --var-file /nonexistent exited 0).
const (
	// annotProfile: "always" (the command loads a profile), or "scoped"
	// (it loads one only when given: --profile, a PATH argument; the
	// command checks the flags itself with noProfileFlags otherwise).
	annotProfile = "legacyvm/profile"
	// annotProgress: "yes" when the command reports progress (--progress).
	annotProgress = "legacyvm/progress"
)

// profileFlagNames are the global flags that feed profile loading.
var profileFlagNames = []string{"var", "var-file"}

// loadsProfile marks cmd as honouring the profile flags; how is "always"
// or "scoped".
func loadsProfile(cmd *cobra.Command, how string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotProfile] = how
	return cmd
}

// reportsProgress marks cmd as honouring --progress.
func reportsProgress(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotProgress] = "yes"
	return cmd
}

// checkFlagsApply rejects global flags the command does not honour.
func checkFlagsApply(cmd *cobra.Command) error {
	if cmd.Annotations[annotProfile] == "" {
		for _, n := range profileFlagNames {
			if fl := cmd.Flags().Lookup(n); fl != nil && fl.Changed {
				return fmt.Errorf("--%s does not apply to %q: it sets profile variables, and this command loads no profile", n, cmd.CommandPath())
			}
		}
	}
	if cmd.Annotations[annotProgress] == "" {
		if fl := cmd.Flags().Lookup("progress"); fl != nil && fl.Changed {
			return fmt.Errorf("--progress does not apply to %q: it reports no progress", cmd.CommandPath())
		}
	}
	return nil
}

// noProfileFlags is for the branch of a "scoped" command that loads no
// profile: profile flags are an error there, naming how to give one.
func (f *Factory) noProfileFlags(cmd *cobra.Command, how string) error {
	for _, n := range profileFlagNames {
		if fl := cmd.Flags().Lookup(n); fl != nil && fl.Changed {
			return fmt.Errorf("--%s does not apply here: %q loads no profile unless %s", n, cmd.CommandPath(), how)
		}
	}
	return nil
}

// addProfileScope gives a command that takes VM names a --profile PATH
// flag: its VMs are then looked up on the profile's host and must belong to
// that profile.
func addProfileScope(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().String("profile", "", "only VMs of the profile at this path (directory or .hcl file), on its host")
	_ = cmd.RegisterFlagCompletionFunc("profile", completeProfilePath)
	return loadsProfile(cmd, "scoped")
}

// scope is where a command that takes VM names works: the URI and, with
// --profile, the profile name that limits it.
type scope struct {
	URI     string
	Profile string
}

// resolveScope reads --profile (when the command has it) and returns the
// URI and profile name to work on.
func (f *Factory) resolveScope(cmd *cobra.Command) (scope, error) {
	path := ""
	if fl := cmd.Flags().Lookup("profile"); fl != nil {
		path = fl.Value.String()
	}
	if path == "" {
		return scope{URI: f.URI()}, f.noProfileFlags(cmd, "--profile PATH is given")
	}
	p, err := f.loadProfile(path)
	if err != nil {
		return scope{}, err
	}
	return scope{URI: orchestrator.HostURI(p.Hosts[0], f.planOptions()), Profile: p.Name}, nil
}

// connectScope connects to the scope's host.
func (f *Factory) connectScope(cmd *cobra.Command) (virt.Hypervisor, scope, error) {
	sc, err := f.resolveScope(cmd)
	if err != nil {
		return nil, sc, err
	}
	hv, err := f.Connect(cmd.Context(), sc.URI)
	if err != nil {
		return nil, sc, connectError(sc.URI, err)
	}
	return hv, sc, nil
}

// progressModes are the values of --progress.
var progressModes = []string{"auto", "plain", "none"}

// progressMode is what --progress=auto resolves to: "board" only when
// stderr is a terminal that can redraw (TERM is set and not "dumb"),
// NO_COLOR is not set and the output is not JSON; else "plain".
func (f *Factory) progressMode() string {
	switch f.Progress {
	case "plain", "none":
		return f.Progress
	}
	if !f.IO.ErrTTY || f.JSON() || noColor(f.Getenv) {
		return "plain"
	}
	return "board"
}

func validProgress(v string) error {
	for _, m := range progressModes {
		if v == m {
			return nil
		}
	}
	return fmt.Errorf("--progress must be one of %s, not %q", strings.Join(progressModes, ", "), v)
}

// connectError wraps a failed connection (the adapter's error already says
// what to do about the usual causes).
func connectError(uri string, err error) error {
	return fmt.Errorf("connect to %s: %w", uri, err)
}
