package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newCmdGenMan writes the man pages of the whole command tree (hidden:
// make man and make install use it).
// GenManOptions are the inputs of `legacyvm gen-man`.
type GenManOptions struct {
	Factory *Factory
	// Root is the command tree to document.
	Root *cobra.Command
	Dir  string
}

func NewCmdGenMan(f *Factory, runF func(*GenManOptions) error) *cobra.Command {
	opts := &GenManOptions{Factory: f}
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write man pages (section 1) for every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Root, opts.Dir = cmd.Root(), args[0]
			if runF != nil {
				return runF(opts)
			}
			return genManRun(cmd.Context(), opts)
		},
	}
}

func genManRun(ctx context.Context, opts *GenManOptions) error {
	return genMan(opts.Root, opts.Dir)
}

// genMan renders one page per command (legacyvm.1, legacyvm-apply.1, ...)
// with cobra's generator. The date is fixed by SOURCE_DATE_EPOCH when set
// (reproducible builds).
func genMan(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	root.DisableAutoGenTag = true
	hdr := &doc.GenManHeader{Title: "LEGACYVM", Section: "1", Source: "legacyvm", Manual: "legacyvm manual"}
	if err := doc.GenManTree(root, hdr, dir); err != nil {
		return fmt.Errorf("man pages in %s: %w", dir, err)
	}
	return nil
}
