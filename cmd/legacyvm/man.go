package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newCmdGenMan writes the man pages of the whole command tree (hidden:
// make man and make install use it).
func newCmdGenMan(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write man pages (section 1) for every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return genMan(cmd.Root(), args[0])
		},
	}
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
