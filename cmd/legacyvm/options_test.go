package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// Issue 9: every command is NewCmdX(f, runF): flags and arguments are
// parsed into its options, and runF (when given) runs instead of the
// command's run function, so a test sees exactly what the command would
// work with, without a host.
func TestCommandsParseIntoOptions(t *testing.T) {
	f := newFactory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	var got any
	capture := func(build func() *cobra.Command) *cobra.Command {
		root := &cobra.Command{Use: "legacyvm", SilenceErrors: true, SilenceUsage: true}
		root.PersistentFlags().StringVarP(&f.Output, "output", "o", "text", "")
		root.AddCommand(build())
		return root
	}
	for _, tc := range []struct {
		args  []string
		build func() *cobra.Command
		want  any
	}{
		{[]string{"plan", "--check-keys", "--image-update", "w7pro", "examples/lab"},
			func() *cobra.Command {
				return NewCmdPlan(f, func(o *PlanOptions) error { got = *o; return nil })
			},
			PlanOptions{Factory: f, Path: "examples/lab", CheckKeys: true, ImageUpdates: []string{"w7pro"}}},
		{[]string{"stop", "--force", "--timeout", "5m", "--profile", "examples/lab", "acct-1", "acct-2"},
			func() *cobra.Command {
				return NewCmdStop(f, func(o *StopOptions) error { got = *o; return nil })
			},
			StopOptions{Factory: f, Names: []string{"acct-1", "acct-2"}, Profile: "examples/lab", Timeout: 5 * time.Minute, Force: true, LockWait: defaultVMLockWait}},
		{[]string{"reset", "--to", "clean", "--start", "acct-1"},
			func() *cobra.Command {
				return NewCmdReset(f, func(o *ResetOptions) error { got = *o; return nil })
			},
			ResetOptions{Factory: f, VMs: []string{"acct-1"}, To: "clean", Start: true, LockWait: defaultVMLockWait}},
		{[]string{"status", "--all"},
			func() *cobra.Command {
				return NewCmdStatus(f, func(o *StatusOptions) error { got = *o; return nil })
			},
			StatusOptions{Factory: f, All: true}},
		{[]string{"licenses", "examples/lab"},
			func() *cobra.Command {
				return NewCmdLicenses(f, func(o *LicensesOptions) error { got = *o; return nil })
			},
			LicensesOptions{Factory: f, Path: "examples/lab"}},
	} {
		got = nil
		root := capture(tc.build)
		root.SetArgs(tc.args)
		if err := root.Execute(); err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
	}

	// snapshot's --lock-wait is its own persistent flag, set before or
	// after the subcommand.
	for _, args := range [][]string{
		{"snapshot", "--lock-wait", "7s", "create", "acct-1", "before", "--description", "a note"},
		{"snapshot", "create", "acct-1", "before", "--lock-wait", "7s", "--description", "a note"},
	} {
		got = nil
		root := &cobra.Command{Use: "legacyvm", SilenceErrors: true, SilenceUsage: true}
		snap := NewCmdSnapshot(f)
		for _, c := range snap.Commands() {
			if c.Name() == "create" {
				snap.RemoveCommand(c)
			}
		}
		snap.AddCommand(NewCmdSnapshotCreate(f, func(o *SnapshotCreateOptions) error { got = *o; return nil }))
		root.AddCommand(snap)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		want := SnapshotCreateOptions{Factory: f, VM: "acct-1", Name: "before", Description: "a note", LockWait: 7 * time.Second}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\n got %+v\nwant %+v", args, got, want)
		}
	}
}
