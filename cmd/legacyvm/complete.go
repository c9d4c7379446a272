package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

// completeProfilePath completes directories and .hcl files.
func completeProfilePath(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return []string{"hcl"}, cobra.ShellCompDirectiveFilterFileExt
}

// completeVMNames completes the names of the VMs legacyvm manages on the
// host (of the --profile given, if any), never file names. Names already
// on the command line are left out.
func completeVMNames(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return managedNames(f, cmd, args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeVMThenSnapshot completes a VM name first, then the names of
// that VM's snapshots (snapshot revert VM NAME, snapshot delete VM NAME).
func completeVMThenSnapshot(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return managedNames(f, cmd, nil, toComplete), cobra.ShellCompDirectiveNoFileComp
		case 1:
			return snapshotNames(f, cmd, args[0], toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFirstVM completes a VM name as the first argument only.
func completeFirstVM(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return managedNames(f, cmd, nil, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completionEngine connects for completion; nil when that fails (a
// completion prints nothing rather than an error).
func completionEngine(f *Factory, cmd *cobra.Command) (*orchestrator.Session, func()) {
	path := ""
	if fl := cmd.Flags().Lookup("profile"); fl != nil {
		path = fl.Value.String()
	}
	hv, sc, err := f.connectScope(cmd.Context(), path)
	if err != nil {
		cobra.CompDebugln("legacyvm completion: "+err.Error(), true)
		return nil, func() {}
	}
	e := f.engine(hv)
	e.Hook = nil
	e.Profile = sc.Profile
	return e, func() { _ = hv.Close() }
}

func managedNames(f *Factory, cmd *cobra.Command, args []string, toComplete string) []string {
	e, done := completionEngine(f, cmd)
	defer done()
	if e == nil {
		return nil
	}
	doms, err := e.Managed(cmd.Context(), nil)
	if err != nil {
		return nil
	}
	used := map[string]bool{}
	for _, a := range args {
		used[a] = true
	}
	var out []string
	for _, d := range doms {
		if !used[d.Name] && strings.HasPrefix(d.Name, toComplete) {
			out = append(out, d.Name+"\t"+d.Metadata.Profile+" ("+string(d.State)+")")
		}
	}
	return out
}

func snapshotNames(f *Factory, cmd *cobra.Command, vm, toComplete string) []string {
	e, done := completionEngine(f, cmd)
	defer done()
	if e == nil {
		return nil
	}
	list, err := e.ListSnapshots(cmd.Context(), []string{vm})
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range list {
		for _, s := range v.Snapshots {
			if strings.HasPrefix(s.Name, toComplete) {
				out = append(out, s.Name+"\t"+string(s.Kind))
			}
		}
	}
	return out
}
