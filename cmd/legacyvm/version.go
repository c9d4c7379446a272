package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// VersionOptions are the inputs of `legacyvm version`.
type VersionOptions struct {
	Factory *Factory
}

func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{Factory: f}
	return &cobra.Command{
		Use:   "version",
		Short: "Print legacyvm's version",
		Example: `  legacyvm version
  legacyvm version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return versionRun(cmd.Context(), opts)
		},
	}
}

func versionRun(ctx context.Context, opts *VersionOptions) error {
	f := opts.Factory
	info := map[string]string{"version": version, "go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info["commit"] = s.Value
			}
		}
	}
	if f.JSON() {
		return writeJSON(f, versionDoc{docHeader: v1, Version: info["version"], Go: info["go"], Commit: info["commit"]})
	}
	fmt.Fprintf(f.IO.Out, "legacyvm %s (%s)\n", info["version"], info["go"])
	return nil
}
