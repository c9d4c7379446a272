package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
)

func newCmdSnapshot(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Create, list, revert, delete and prune snapshots",
		Long: `Snapshots are libvirt internal snapshots (inside each VM's qcow2 disk). Three
kinds exist: the baseline (taken after provisioning, protected), scheduled
ones (auto-<policy>-<UTC time>, removed by retention) and manual ones (kept
until you delete them). Everything legacyvm needs to know about them is
stored in libvirt, so any machine pointed at the host sees the same.`,
	}
	lockWait := new(time.Duration)
	cmd.PersistentFlags().DurationVar(lockWait, "lock-wait", defaultVMLockWait, "how long to wait for another command working on the same VM")
	cmd.AddCommand(newCmdSnapshotCreate(f, lockWait), newCmdSnapshotList(f), newCmdSnapshotRevert(f, lockWait),
		newCmdSnapshotDelete(f, lockWait), newCmdSnapshotPrune(f, lockWait), newCmdSnapshotRunDue(f, lockWait))
	return cmd
}

// withEngine connects to the host and runs fn with an engine on it.
func withEngine(cmd *cobra.Command, f *Factory, fn func(e *orchestrator.Engine) error) error {
	return connectEngine(cmd, f, false, fn)
}

// withVMEngine is withEngine holding the lock of one VM.
func withVMEngine(cmd *cobra.Command, f *Factory, vm, purpose string, lockWait time.Duration, fn func(e *orchestrator.Engine) error) error {
	locks, err := f.lockVMs(cmd.Context(), f.URI(), []string{vm}, purpose, lockWait)
	if err != nil {
		return err
	}
	defer locks.Release()
	return withEngine(cmd, f, fn)
}

// connectEngine connects and runs fn; live selects the redrawn progress
// board on a terminal (work on many VMs at once).
func connectEngine(cmd *cobra.Command, f *Factory, live bool, fn func(e *orchestrator.Engine) error) error {
	uri := f.URI()
	hv, err := f.Connect(cmd.Context(), uri)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", uri, err)
	}
	defer hv.Close()
	if !live {
		return fn(f.engine(hv))
	}
	e, done := f.liveEngine(hv)
	defer done()
	return fn(e)
}

func writeJSON(f *Factory, v any) error {
	enc := json.NewEncoder(f.IO.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newCmdSnapshotCreate(f *Factory, lockWait *time.Duration) *cobra.Command {
	var (
		memory bool
		desc   string
	)
	cmd := &cobra.Command{
		Use:   "create VM [NAME]",
		Short: "Take a manual snapshot",
		Long: `Create takes a manual snapshot of VM, named NAME (default manual-<UTC time>).
Manual snapshots are never pruned. A running VM's snapshot always includes
its memory (libvirt 9.0 cannot take internal disk-only snapshots of a running
VM), so reverting resumes it exactly where it was.`,
		Example: `  legacyvm snapshot create lab-1 before-update --description "before the ERP update"
  legacyvm snapshot create lab-1`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			return withVMEngine(cmd, f, args[0], "snapshot create", *lockWait, func(e *orchestrator.Engine) error {
				s, err := e.CreateSnapshot(cmd.Context(), args[0], name, memory, desc)
				if err != nil {
					return err
				}
				if f.JSON() {
					return writeJSON(f, s)
				}
				fmt.Fprintf(f.IO.Out, "Created snapshot %s of %s (%s).\n", s.Name, args[0], snapshotContent(s.Snapshot))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&memory, "memory", false, "include memory (always the case for a running VM)")
	cmd.Flags().StringVar(&desc, "description", "", "a note stored with the snapshot")
	return cmd
}

func snapshotContent(s virt.Snapshot) string {
	if s.Memory {
		return "disk and memory, VM " + string(s.State)
	}
	return "disk, VM " + string(s.State)
}

func newCmdSnapshotList(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "list [VM...]",
		Short: "List snapshots as a tree, with their kind",
		Example: `  legacyvm snapshot list
  legacyvm snapshot list lab-1 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(cmd, f, func(e *orchestrator.Engine) error {
				list, err := e.ListSnapshots(cmd.Context(), args)
				if err != nil {
					return err
				}
				if f.JSON() {
					if list == nil {
						list = []orchestrator.VMSnapshots{}
					}
					return writeJSON(f, list)
				}
				tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VM\tSNAPSHOT\tKIND\tCREATED (UTC)\tCONTENT\tEXPIRES")
				for _, vm := range list {
					depth := map[string]int{}
					for _, s := range vm.Snapshots {
						d := 0
						if s.Parent != "" {
							d = depth[s.Parent] + 1
						}
						depth[s.Name] = d
						name := strings.Repeat("  ", d) + s.Name
						if s.Current {
							name += " *"
						}
						exp := "-"
						if s.Expires != nil {
							exp = s.Expires.UTC().Format("2006-01-02 15:04")
						}
						kind := string(s.Kind)
						if s.Policy != "" && s.Kind != orchestrator.SnapshotManual {
							kind += " (" + s.Policy + ")"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", vm.VM, name, kind, s.Created.UTC().Format("2006-01-02 15:04:05"), snapshotContent(s.Snapshot), exp)
					}
					if len(vm.Snapshots) == 0 {
						fmt.Fprintf(tw, "%s\t(none)\t\t\t\t\n", vm.VM)
					}
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(f.IO.ErrOut, "* = current snapshot")
				return nil
			})
		},
	}
}

func newCmdSnapshotRevert(f *Factory, lockWait *time.Duration) *cobra.Command {
	return &cobra.Command{
		Use:   "revert VM NAME",
		Short: "Revert a VM to a snapshot",
		Long: `Revert puts VM back to snapshot NAME: disk content, and memory when the snapshot
has it (the VM then runs from where it was). Changes made since are lost.
legacyvm checks that the VM reached the state the snapshot recorded.`,
		Example: `  legacyvm snapshot revert lab-1 before-update`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withVMEngine(cmd, f, args[0], "snapshot revert", *lockWait, func(e *orchestrator.Engine) error {
				start := time.Now()
				st, err := e.RevertSnapshot(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				if f.JSON() {
					return writeJSON(f, map[string]any{"vm": args[0], "snapshot": args[1], "state": st, "took_ns": time.Since(start)})
				}
				fmt.Fprintf(f.IO.Out, "Reverted %s to %s in %s; it is %s.\n", args[0], args[1], time.Since(start).Round(time.Millisecond), st)
				return nil
			})
		},
	}
}

func newCmdSnapshotDelete(f *Factory, lockWait *time.Duration) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete VM NAME",
		Short: "Delete a snapshot (refuses the baseline without --force)",
		Example: `  legacyvm snapshot delete lab-1 before-update
  legacyvm snapshot delete --force lab-1 clean`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withVMEngine(cmd, f, args[0], "snapshot delete", *lockWait, func(e *orchestrator.Engine) error {
				if err := e.DeleteSnapshot(cmd.Context(), args[0], args[1], force); err != nil {
					return err
				}
				if f.JSON() {
					return writeJSON(f, map[string]string{"vm": args[0], "deleted": args[1]})
				}
				fmt.Fprintf(f.IO.Out, "Deleted snapshot %s of %s.\n", args[1], args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "allow deleting the baseline")
	return cmd
}

func newCmdSnapshotPrune(f *Factory, lockWait *time.Duration) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune [VM...]",
		Short: "Apply retention: delete expired and surplus scheduled snapshots",
		Long: `Prune applies each VM's snapshot policy: scheduled snapshots past max_age, and
those beyond the newest keep, are deleted. The baseline and manual snapshots
are never touched. --dry-run only lists what would go.`,
		Example: `  legacyvm snapshot prune --dry-run
  legacyvm snapshot prune ops-1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(cmd, f, func(e *orchestrator.Engine) error {
				return tickCommand(cmd, f, e, args, time.Now().UTC(), dryRun, true, *lockWait)
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would be deleted")
	return cmd
}

func newCmdSnapshotRunDue(f *Factory, lockWait *time.Duration) *cobra.Command {
	var (
		nowFlag string
		dryRun  bool
	)
	cmd := &cobra.Command{
		Use:   "run-due [VM...]",
		Short: "Do one scheduler tick (for cron instead of the daemon)",
		Long: `Run-due does what one tick of "legacyvm daemon" does: for every managed VM with
a scheduled policy (or the VMs named), retention first, then the snapshot that
is due. A snapshot is due when a scheduled time has passed since the policy's
newest scheduled snapshot (missed times are caught up once). Run it every
minute from cron. It exits 1 and names every VM it could not serve.`,
		Example: `  # crontab: * * * * * root legacyvm snapshot run-due
  legacyvm snapshot run-due --dry-run
  legacyvm snapshot run-due --now 2026-12-01T03:00:00Z`,
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now().UTC()
			if nowFlag != "" {
				t, err := time.Parse(time.RFC3339, nowFlag)
				if err != nil {
					return fmt.Errorf("--now: %w (use RFC 3339, e.g. 2026-12-01T03:00:00Z)", err)
				}
				now = t.UTC()
			}
			return withEngine(cmd, f, func(e *orchestrator.Engine) error {
				return tickCommand(cmd, f, e, args, now.Truncate(time.Minute), dryRun, false, *lockWait)
			})
		},
	}
	cmd.Flags().StringVar(&nowFlag, "now", "", "pretend the time is this (RFC 3339)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would be done")
	return cmd
}

// tickCommand runs (or simulates) a scheduler tick; pruneOnly skips
// creation.
func tickCommand(cmd *cobra.Command, f *Factory, e *orchestrator.Engine, vms []string, now time.Time, dryRun, pruneOnly bool, lockWait time.Duration) error {
	var res []orchestrator.TickResult
	var err error
	if !dryRun {
		purpose := "snapshot run-due"
		if pruneOnly {
			purpose = "snapshot prune"
		}
		var locks profileLocks
		vms, locks, err = f.lockNamedOrAll(cmd.Context(), e, vms, purpose, lockWait)
		if err != nil {
			return err
		}
		defer locks.Release()
	}
	switch {
	case !dryRun && len(vms) == 0:
		// No managed VM (none locked): nothing to do.
	case pruneOnly:
		res, err = e.Prune(cmd.Context(), vms, now, dryRun)
	default:
		res, err = e.RunDue(cmd.Context(), vms, now, dryRun)
	}
	if err != nil {
		return err
	}
	if f.JSON() {
		if res == nil {
			res = []orchestrator.TickResult{}
		}
		if err := writeJSON(f, map[string]any{"now": now, "dry_run": dryRun, "vms": res}); err != nil {
			return err
		}
	}
	failed := 0
	verbCreate, verbPrune := "created", "pruned"
	if dryRun {
		verbCreate, verbPrune = "would create", "would prune"
	}
	for _, r := range res {
		if r.Err != "" {
			failed++
			fmt.Fprintf(f.IO.ErrOut, "Error: %s: %s\n", r.VM, r.Err)
			continue
		}
		if f.JSON() {
			continue
		}
		if r.Created != "" {
			fmt.Fprintf(f.IO.Out, "%s: %s %s\n", r.VM, verbCreate, r.Created)
		}
		for _, p := range r.Pruned {
			fmt.Fprintf(f.IO.Out, "%s: %s %s\n", r.VM, verbPrune, p)
		}
	}
	if failed > 0 {
		return silent(exitError)
	}
	return nil
}

func newCmdReset(f *Factory) *cobra.Command {
	var (
		all      bool
		to       string
		startVMs bool
		lockWait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reset [VM...|--all]",
		Short: "Revert VMs to their clean baseline, in parallel",
		Long: `Reset reverts each VM to its baseline snapshot (or to --to NAME) at the same
time (--parallelism at once), leaves it in the state the snapshot recorded
(running for a memory baseline) and prints how long each took. Everything
done since the snapshot is lost: that is the point. With --start, VMs whose
snapshot was taken shut off are started afterwards (a clean boot).`,
		Example: `  legacyvm reset lab-1
  legacyvm reset --all
  legacyvm reset lab-1 lab-2 --to before-update -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return fmt.Errorf("name the VMs to reset, or use --all (not both)")
			}
			var res []orchestrator.ResetResult
			start := time.Now()
			err := connectEngine(cmd, f, true, func(e *orchestrator.Engine) error {
				names, locks, err := f.lockNamedOrAll(cmd.Context(), e, args, "reset", lockWait)
				if err != nil {
					return err
				}
				defer locks.Release()
				if len(names) == 0 {
					return nil // --all with no managed VM
				}
				if res, err = e.Reset(cmd.Context(), names, to); err != nil {
					return err
				}
				if startVMs {
					var off []string
					for _, r := range res {
						if r.Err == "" && r.State == virt.StateShutoff {
							off = append(off, r.VM)
						}
					}
					for _, sr := range e.Start(cmd.Context(), off) {
						for i := range res {
							if res[i].VM == sr.Object {
								if sr.Err != "" {
									res[i].Err = "reverted, but start failed: " + sr.Err
								} else {
									res[i].State = virt.StateRunning
								}
							}
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			// The progress board is closed: results may be printed.
			if f.JSON() {
				if res == nil {
					res = []orchestrator.ResetResult{}
				}
				if err := writeJSON(f, map[string]any{"took_ns": time.Since(start), "vms": res}); err != nil {
					return err
				}
			}
			failed := 0
			for _, r := range res {
				if r.Err != "" {
					failed++
					fmt.Fprintf(f.IO.ErrOut, "Error: %s: %s\n", r.VM, r.Err)
				} else if !f.JSON() {
					fmt.Fprintf(f.IO.Out, "%s: reverted to %s in %s (%s)\n", r.VM, r.Snapshot, r.Took.Round(time.Millisecond), r.State)
				}
			}
			if !f.JSON() {
				fmt.Fprintf(f.IO.Out, "Reset %d VM(s) in %s.\n", len(res)-failed, time.Since(start).Round(time.Millisecond))
			}
			if failed > 0 {
				return silent(exitError)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "reset every managed VM on the host")
	cmd.Flags().StringVar(&to, "to", "", "revert to this snapshot instead of the baseline")
	cmd.Flags().BoolVar(&startVMs, "start", false, "start VMs that the snapshot left shut off")
	addLockWaitFlag(cmd, &lockWait)
	return cmd
}
