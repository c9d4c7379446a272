package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Global flags that only mean something to some commands: using one where
// it means nothing is an error instead of being silently ignored (issue
// 10: reset --all --var-file /nonexistent exited 0).
const (
	// annotNoProfile marks a command that never loads a profile: --var and
	// --var-file are errors there. Commands that load one only sometimes
	// (reset without --profile, status --all) check with noProfileFlags.
	annotNoProfile = "legacyvm/no-profile"
	// annotProgress marks a command that reports progress (--progress).
	annotProgress = "legacyvm/progress"
	// annotNoJSON marks a command that prints no JSON document: -o json
	// is an error there (docs/json.md documents every other command's).
	annotNoJSON = "legacyvm/no-json"
)

// profileFlagNames are the global flags that feed profile loading.
var profileFlagNames = []string{"var", "var-file"}

// Traits of the built-in commands, by command path. A command added later
// accepts the profile flags (it may load a profile) and rejects
// --progress until it is listed here.
var (
	noProfileCommands = []string{"fmt", "doctor", "daemon", "version", "gen-man"}
	progressCommands  = []string{"apply", "destroy", "start", "stop", "reset",
		"snapshot create", "snapshot revert", "snapshot delete", "snapshot prune", "snapshot run-due"}
	// noJSONCommands print no -o json document (daemon logs JSON lines
	// with --log-json).
	noJSONCommands = []string{"fmt", "daemon", "gen-man", "serve", "token create", "token revoke"}
	// scopedCommands take VM names and have --profile PATH.
	scopedCommands = []string{"start", "stop", "console", "reset",
		"snapshot create", "snapshot list", "snapshot revert", "snapshot delete", "snapshot prune", "snapshot run-due"}
)

// annotateCommands applies the traits above to root's command tree.
func annotateCommands(root *cobra.Command) {
	find := func(path string) *cobra.Command {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c == root {
			panic("annotateCommands: no command " + path)
		}
		return c
	}
	set := func(c *cobra.Command, k string) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[k] = "yes"
	}
	for _, p := range noProfileCommands {
		set(find(p), annotNoProfile)
	}
	for _, p := range progressCommands {
		set(find(p), annotProgress)
	}
	for _, p := range noJSONCommands {
		set(find(p), annotNoJSON)
	}
	for _, p := range scopedCommands {
		if find(p).Flags().Lookup("profile") == nil {
			panic("annotateCommands: scoped command " + p + " has no --profile (addProfileScope)")
		}
	}
}

// checkFlagsApply rejects global flags the command does not honour.
func checkFlagsApply(cmd *cobra.Command) error {
	builtin := cmd.Name() == "help" || cmd.Name() == "completion" || (cmd.HasParent() && cmd.Parent().Name() == "completion")
	if cmd.Annotations[annotNoProfile] != "" || builtin {
		for _, n := range profileFlagNames {
			if fl := cmd.Flags().Lookup(n); fl != nil && fl.Changed {
				return fmt.Errorf("--%s does not apply to %q: it sets profile variables, and this command loads no profile", n, cmd.CommandPath())
			}
		}
	}
	// A scoped command loads a profile only with --profile.
	if fl := cmd.Flags().Lookup("profile"); fl != nil && fl.Value.String() == "" {
		if err := noProfileFlags(cmd, "--profile PATH is given"); err != nil {
			return err
		}
	}
	if cmd.Annotations[annotNoJSON] != "" {
		if fl := cmd.Flags().Lookup("output"); fl != nil && fl.Value.String() == "json" {
			hint := ""
			if cmd.Name() == "daemon" || cmd.Name() == "serve" {
				hint = " (--log-json logs JSON lines)"
			}
			return fmt.Errorf("-o json does not apply to %q: it prints no JSON document%s", cmd.CommandPath(), hint)
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
func noProfileFlags(cmd *cobra.Command, how string) error {
	for _, n := range profileFlagNames {
		if fl := cmd.Flags().Lookup(n); fl != nil && fl.Changed {
			return fmt.Errorf("--%s does not apply here: %q loads no profile unless %s", n, cmd.CommandPath(), how)
		}
	}
	return nil
}

// addProfileScope gives a command that takes VM names a --profile PATH
// flag, stored in path: its VMs are then looked up on the profile's host
// and must belong to that profile.
func addProfileScope(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "profile", "", "only VMs of the profile at this path (directory or .hcl file), on its host")
	_ = cmd.RegisterFlagCompletionFunc("profile", completeProfilePath)
}

// scope is where a command that takes VM names works: the URI and, with
// --profile, the profile name that limits it.
type scope struct {
	URI     string
	Profile string
}

// resolveScope returns the URI and profile name to work on: the profile at
// path (--profile), else --connect's host and every profile.
func (f *Factory) resolveScope(path string) (scope, error) {
	if path == "" {
		return scope{URI: f.URI()}, nil
	}
	p, err := f.loadProfile(path)
	if err != nil {
		return scope{}, err
	}
	return scope{URI: f.planOptions().HostURI(p.Hosts[0]), Profile: p.Name}, nil
}

// connectScope connects to the host of the scope at path (see
// resolveScope).
func (f *Factory) connectScope(ctx context.Context, path string) (virt.Hypervisor, scope, error) {
	sc, err := f.resolveScope(path)
	if err != nil {
		return nil, sc, err
	}
	hv, err := f.Connect(ctx, sc.URI)
	if err != nil {
		return nil, sc, connectError(sc.URI, err)
	}
	return hv, sc, nil
}

// progressModes are the values of --progress.
var progressModes = []string{"auto", "plain", "json", "none"}

// progressMode is what --progress=auto resolves to: "json" (one event
// object per line on stderr) when the output is JSON; "board" only when
// stderr is a terminal that can redraw (TERM is set and not "dumb") and
// NO_COLOR is not set; else "plain".
func (f *Factory) progressMode() string {
	switch f.Progress {
	case "plain", "json", "none":
		return f.Progress
	}
	if f.JSON() {
		return "json"
	}
	if !f.IO.ErrTTY || noColor(f.Getenv) {
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
