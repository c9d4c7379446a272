package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCmdFmt: placeholder until the profile language lands (issue 2).
func newCmdFmt(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "fmt [PATH]",
		Short: "Rewrite profiles in canonical style",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("fmt is not implemented yet")
		},
	}
}
