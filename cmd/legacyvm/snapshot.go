package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
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
	sc, err := f.resolveScope(cmd)
	if err != nil {
		return err
	}
	locks, err := f.lockVMs(cmd.Context(), sc.URI, []string{vm}, purpose, lockWait)
	if err != nil {
		return err
	}
	defer locks.Release()
	return withEngine(cmd, f, fn)
}

// connectEngine connects and runs fn; live selects the redrawn progress
// board on a terminal (work on many VMs at once).
// With --profile, the engine works on that profile's VMs only.
func connectEngine(cmd *cobra.Command, f *Factory, live bool, fn func(e *orchestrator.Engine) error) error {
	hv, sc, err := f.connectScope(cmd)
	if err != nil {
		return err
	}
	defer hv.Close()
	if !live {
		e := f.engine(hv)
		e.Profile = sc.Profile
		return fn(e)
	}
	e, done := f.liveEngine(hv)
	e.Profile = sc.Profile
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
		Use:               "create VM [NAME]",
		ValidArgsFunction: completeFirstVM(f),
		Short:             "Take a manual snapshot",
		Long: `Create takes a manual snapshot of VM, named NAME (default manual-<UTC time>).
Manual snapshots are never pruned. A running VM's snapshot always includes
its memory (libvirt 9.0 cannot take internal disk-only snapshots of a running
VM), so reverting resumes it exactly where it was.`,
		Example: `  legacyvm snapshot create acct-1 before-erp-update --description "before the ERP update"
  legacyvm snapshot create --profile examples/lab acct-1`,
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
		Use:               "list [VM...]",
		ValidArgsFunction: completeVMNames(f),
		Short:             "List snapshots as a tree, with their kind",
		Long: `List shows each VM's snapshots as a tree with their kind (baseline,
scheduled, manual). With --profile PATH it lists that profile's VMs on every
host the profile uses; a host that does not answer is reported and skipped
(exit status 3, partial).`,
		Example: `  legacyvm snapshot list
  legacyvm snapshot list acct-1 -o json
  legacyvm snapshot list --profile examples/lab`,
		RunE: func(cmd *cobra.Command, args []string) error {
			profilePath := cmd.Flags().Lookup("profile").Value.String()
			var (
				list  []orchestrator.VMSnapshots
				sk    []skippedHost
				hosts int
			)
			if profilePath == "" {
				err := withEngine(cmd, f, func(e *orchestrator.Engine) error {
					var err error
					list, err = e.ListSnapshots(cmd.Context(), args)
					return err
				})
				if err != nil {
					return err
				}
			} else {
				targets, profile, err := f.profileTargets(profilePath)
				if err != nil {
					return err
				}
				hosts = len(targets)
				sk, err = f.onEachHost(cmd.Context(), targets, profile, func(t profileTarget, hv virt.Hypervisor, vms []string) error {
					var here []string
					for _, vm := range vms {
						if len(args) == 0 || slices.Contains(args, vm) {
							here = append(here, vm)
						}
					}
					if len(here) == 0 {
						return nil
					}
					l, err := f.engine(hv).ListSnapshots(cmd.Context(), here)
					list = append(list, l...)
					return err
				})
				if err != nil {
					return err
				}
			}
			if err := writeSnapshotList(f, list); err != nil {
				return err
			}
			if f.reportSkipped(sk) {
				return f.partialSummary("snapshots listed", hosts-len(sk), sk)
			}
			return nil
		},
	}
}

func writeSnapshotList(f *Factory, list []orchestrator.VMSnapshots) error {
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
}

func newCmdSnapshotRevert(f *Factory, lockWait *time.Duration) *cobra.Command {
	return &cobra.Command{
		Use:               "revert VM NAME",
		ValidArgsFunction: completeVMThenSnapshot(f),
		Short:             "Revert a VM to a snapshot",
		Long: `Revert puts VM back to snapshot NAME: disk content, and memory when the snapshot
has it (the VM then runs from where it was). Changes made since are lost.
legacyvm checks that the VM reached the state the snapshot recorded.`,
		Example: `  legacyvm snapshot revert acct-1 before-update`,
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
		Use:               "delete VM NAME",
		ValidArgsFunction: completeVMThenSnapshot(f),
		Short:             "Delete a snapshot (refuses the baseline without --force)",
		Example: `  legacyvm snapshot delete acct-1 before-update
  legacyvm snapshot delete --force acct-1 clean`,
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
		Use:               "prune [VM...]",
		ValidArgsFunction: completeVMNames(f),
		Short:             "Apply retention: delete expired and surplus scheduled snapshots",
		Long: `Prune applies each VM's snapshot policy: scheduled snapshots past max_age, and
those beyond the newest keep, are deleted. The baseline and manual snapshots
are never touched. --dry-run only lists what would go.`,
		Example: `  legacyvm snapshot prune --dry-run
  legacyvm snapshot prune ops`,
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
		Use:               "run-due [VM...]",
		ValidArgsFunction: completeVMNames(f),
		Short:             "Do one scheduler tick (for cron instead of the daemon)",
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
		vms, locks, err = f.lockNamedOrAll(cmd, e, vms, purpose, lockWait)
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

// confirmResetAll names the profiles and VMs reset --all touches and asks
// on the terminal; without one (or without --yes) it refuses.
func confirmResetAll(f *Factory, doms []virt.Domain, yes bool) error {
	byProfile := map[string][]string{}
	var profiles []string
	for _, d := range doms {
		p := d.Metadata.Profile
		if _, ok := byProfile[p]; !ok {
			profiles = append(profiles, p)
		}
		byProfile[p] = append(byProfile[p], d.Name)
	}
	sort.Strings(profiles)
	fmt.Fprintf(f.IO.ErrOut, "reset --all reverts %d VM(s) of %d profile(s) on this host to their baselines; everything done in them since is lost:\n", len(doms), len(profiles))
	for _, p := range profiles {
		fmt.Fprintf(f.IO.ErrOut, "  profile %s: %s\n", p, strings.Join(byProfile[p], ", "))
	}
	if yes {
		return nil
	}
	if !f.IO.InTTY || !f.IO.ErrTTY {
		return errors.New("reset --all needs confirmation: run it on a terminal, or add --yes (or limit it with --profile PATH)")
	}
	fmt.Fprintf(f.IO.ErrOut, "Type \"yes\" to reset them: ")
	line, _ := bufio.NewReader(f.IO.In).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errors.New("cancelled: nothing was reset")
	}
	return nil
}

func newCmdReset(f *Factory) *cobra.Command {
	var (
		all      bool
		yes      bool
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
snapshot was taken shut off are started afterwards (a clean boot).

--profile PATH limits reset to that profile's VMs, on every host the profile
uses (each VM is reset on the host that holds it; a host that does not answer
is reported and skipped, exit status 3, partial): without VM names it resets
all of them, and a named VM of another profile is an error.
--all resets every VM legacyvm manages on the --connect host, whatever its
profile: it names the profiles it touches and asks for confirmation, or
takes --yes (without a terminal it refuses unless --yes is given).`,
		Example: `  legacyvm reset --profile examples/quickstart demo
  legacyvm reset --profile examples/lab
  legacyvm reset --start demo
  legacyvm reset --all --yes
  legacyvm reset acct-1 acct-2 --to clean -o json`,
		ValidArgsFunction: completeVMNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			scoped := cmd.Flags().Lookup("profile").Value.String() != ""
			switch {
			case all && len(args) > 0:
				return fmt.Errorf("name the VMs to reset, or use --all (not both)")
			case all && scoped:
				return fmt.Errorf("--all is every profile's VMs on the host; --profile limits to one profile: use one of them")
			case !all && !scoped && len(args) == 0:
				return fmt.Errorf("name the VMs to reset, or give --profile PATH (all VMs of that profile), or --all (every VM on the host)")
			case yes && !all:
				return fmt.Errorf("--yes only confirms --all")
			}
			var res []orchestrator.ResetResult
			start := time.Now()
			resetOn := func(e *orchestrator.Engine, uri string, names []string) error {
				names, locks, err := f.lockNamedOrAllOn(cmd.Context(), uri, e, names, "reset", lockWait)
				if err != nil {
					return err
				}
				defer locks.Release()
				if len(names) == 0 {
					return nil // no managed VM
				}
				r, err := e.Reset(cmd.Context(), names, to)
				if err != nil {
					return err
				}
				if startVMs {
					var off []string
					for _, x := range r {
						if x.Err == "" && x.State == virt.StateShutoff {
							off = append(off, x.VM)
						}
					}
					for _, sr := range e.Start(cmd.Context(), off) {
						for i := range r {
							if r[i].VM == sr.Object {
								if sr.Err != "" {
									r[i].Err = "reverted, but start failed: " + sr.Err
								} else {
									r[i].State = virt.StateRunning
								}
							}
						}
					}
				}
				res = append(res, r...)
				return nil
			}
			var (
				sk    []skippedHost
				hosts int
				err   error
			)
			if profilePath := cmd.Flags().Lookup("profile").Value.String(); profilePath == "" {
				if err := f.noProfileFlags(cmd, "--profile PATH is given"); err != nil {
					return err
				}
				err = connectEngine(cmd, f, true, func(e *orchestrator.Engine) error {
					names := args
					if all {
						doms, err := e.Managed(cmd.Context(), nil)
						if err != nil {
							return err
						}
						if len(doms) == 0 {
							return fmt.Errorf("no VM to reset: legacyvm manages none here")
						}
						if err := confirmResetAll(f, doms, yes); err != nil {
							return err
						}
						for _, d := range doms {
							names = append(names, d.Name)
						}
					}
					return resetOn(e, f.URI(), names)
				})
			} else {
				// No names: every VM of the profile, on each of its hosts.
				sk, hosts, err = resetAcrossHosts(cmd.Context(), f, profilePath, len(args) == 0, args, resetOn)
			}
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
			f.reportSkipped(sk)
			if failed > 0 {
				return silent(exitError)
			}
			if len(sk) > 0 {
				return f.partialSummary("reset", hosts, sk)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "reset every managed VM on the host, of every profile (asks first)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "with --all: do not ask for confirmation")
	cmd.Flags().StringVar(&to, "to", "", "revert to this snapshot instead of the baseline")
	cmd.Flags().BoolVar(&startVMs, "start", false, "start VMs that the snapshot left shut off")
	addLockWaitFlag(cmd, &lockWait)
	return cmd
}

// resetAcrossHosts runs reset on every host of the profile at path: the
// named VMs (or, with all, every VM of the profile) that each host holds.
// A name found on no answering host is an error.
func resetAcrossHosts(ctx context.Context, f *Factory, path string, all bool, names []string, reset func(e *orchestrator.Engine, uri string, names []string) error) ([]skippedHost, int, error) {
	targets, profile, err := f.profileTargets(path)
	if err != nil {
		return nil, 0, err
	}
	found := map[string]bool{}
	var other error // a named VM that another profile manages
	sk, err := f.onEachHost(ctx, targets, profile, func(t profileTarget, hv virt.Hypervisor, vms []string) error {
		var here []string
		for _, vm := range vms {
			if all || slices.Contains(names, vm) {
				here = append(here, vm)
				found[vm] = true
			}
		}
		for _, n := range names {
			if slices.Contains(vms, n) || other != nil {
				continue
			}
			e := f.engine(hv)
			e.Profile = profile
			if _, err := e.Managed(ctx, []string{n}); errors.Is(err, orchestrator.ErrOtherProfile) {
				other = err
			}
		}
		if len(here) == 0 {
			return nil
		}
		e, done := f.liveEngine(hv)
		defer done()
		return reset(e, t.uri, here)
	})
	if err != nil {
		return nil, 0, err
	}
	var missing []string
	for _, n := range names {
		if !found[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 && other != nil {
		return sk, 0, other
	}
	if len(missing) > 0 && len(sk) == 0 {
		return sk, 0, fmt.Errorf("no host of profile %s holds %s", profile, strings.Join(missing, ", "))
	}
	return sk, len(targets) - len(sk), nil
}
