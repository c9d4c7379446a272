package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCmdValidate: placeholder until the profile language lands (issue 2).
func newCmdValidate(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [PATH]",
		Short: "Check a profile for mistakes",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("validate is not implemented yet")
		},
	}
}
