package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/snapmeta"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
)

func NewCmdSnapshot(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Create, list, revert, delete and prune snapshots",
		Long: `Snapshots are libvirt internal snapshots (inside each VM's qcow2 disk). Three
kinds exist: the baseline (taken after provisioning, protected), scheduled
ones (auto-<policy>-<UTC time>, removed by retention) and manual ones (kept
until you delete them). Everything legacyvm needs to know about them is
stored in libvirt, so any machine pointed at the host sees the same.`,
	}
	cmd.PersistentFlags().Duration("lock-wait", defaultVMLockWait, "how long to wait for another command working on the same VM")
	cmd.AddCommand(NewCmdSnapshotCreate(f, nil), NewCmdSnapshotList(f, nil), NewCmdSnapshotRevert(f, nil),
		NewCmdSnapshotDelete(f, nil), NewCmdSnapshotPrune(f, nil), NewCmdSnapshotRunDue(f, nil))
	return cmd
}

// snapshotLockWait is the snapshot command's --lock-wait (a persistent
// flag of "snapshot", set before or after the subcommand).
func snapshotLockWait(cmd *cobra.Command) time.Duration {
	d, err := cmd.Flags().GetDuration("lock-wait")
	if err != nil {
		panic("snapshot subcommand without --lock-wait: " + err.Error())
	}
	return d
}

// withEngine connects to the host of the scope (--profile's path, else
// --connect's) and runs fn with an engine on it.
func withEngine(ctx context.Context, f *Factory, profilePath string, fn func(e *orchestrator.Session) error) error {
	return connectEngine(ctx, f, profilePath, false, fn)
}

// withVMEngine is withEngine holding the lock of one VM.
func withVMEngine(ctx context.Context, f *Factory, profilePath, vm, purpose string, lockWait time.Duration, fn func(e *orchestrator.Session) error) error {
	sc, err := f.resolveScope(profilePath)
	if err != nil {
		return err
	}
	locks, err := f.lockVMs(ctx, sc.URI, []string{vm}, purpose, lockWait)
	if err != nil {
		return err
	}
	defer locks.Release()
	return withEngine(ctx, f, profilePath, fn)
}

// connectEngine connects and runs fn; live selects the redrawn progress
// board on a terminal (work on many VMs at once).
// With --profile, the engine works on that profile's VMs only.
func connectEngine(ctx context.Context, f *Factory, profilePath string, live bool, fn func(e *orchestrator.Session) error) error {
	hv, sc, err := f.connectScope(ctx, profilePath)
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

// SnapshotCreateOptions are the inputs of `legacyvm snapshot create`.
type SnapshotCreateOptions struct {
	Factory *Factory
	VM      string
	// Name is the snapshot's name ("" = manual-<UTC time>).
	Name        string
	Memory      bool
	Description string
	Profile     string
	LockWait    time.Duration
}

func NewCmdSnapshotCreate(f *Factory, runF func(*SnapshotCreateOptions) error) *cobra.Command {
	opts := &SnapshotCreateOptions{Factory: f}
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
			opts.VM, opts.Name = args[0], ""
			if len(args) == 2 {
				opts.Name = args[1]
			}
			opts.LockWait = snapshotLockWait(cmd)
			if runF != nil {
				return runF(opts)
			}
			return snapshotCreateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Memory, "memory", false, "include memory (always the case for a running VM)")
	cmd.Flags().StringVar(&opts.Description, "description", "", "a note stored with the snapshot")
	addProfileScope(cmd, &opts.Profile)
	return cmd
}

func snapshotCreateRun(ctx context.Context, opts *SnapshotCreateOptions) error {
	f := opts.Factory
	return withVMEngine(ctx, f, opts.Profile, opts.VM, "snapshot create", opts.LockWait, func(e *orchestrator.Session) error {
		s, err := e.CreateSnapshot(ctx, opts.VM, opts.Name, opts.Memory, opts.Description)
		if err != nil {
			return err
		}
		if f.JSON() {
			return writeJSON(f, snapshotCreateDoc{docHeader: v1, VM: opts.VM, Snapshot: snapshotToJSON(s)})
		}
		fmt.Fprintf(f.IO.Out, "Created snapshot %s of %s (%s).\n", s.Name, opts.VM, snapshotContent(s.Snapshot))
		return nil
	})
}

func snapshotContent(s virt.Snapshot) string {
	if s.Memory {
		return "disk and memory, VM " + string(s.State)
	}
	return "disk, VM " + string(s.State)
}

// SnapshotListOptions are the inputs of `legacyvm snapshot list`.
type SnapshotListOptions struct {
	Factory *Factory
	// VMs are the VMs to list (none: every managed VM in scope).
	VMs     []string
	Profile string
}

func NewCmdSnapshotList(f *Factory, runF func(*SnapshotListOptions) error) *cobra.Command {
	opts := &SnapshotListOptions{Factory: f}
	cmd := &cobra.Command{
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
			opts.VMs = args
			if runF != nil {
				return runF(opts)
			}
			return snapshotListRun(cmd.Context(), opts)
		},
	}
	addProfileScope(cmd, &opts.Profile)
	return cmd
}

func snapshotListRun(ctx context.Context, opts *SnapshotListOptions) error {
	f, args, profilePath := opts.Factory, opts.VMs, opts.Profile
	var (
		list  []orchestrator.VMSnapshots
		sk    []skippedHost
		hosts int
	)
	if profilePath == "" {
		err := withEngine(ctx, f, profilePath, func(e *orchestrator.Session) error {
			var err error
			list, err = e.ListSnapshots(ctx, args)
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
		sk, err = f.onEachHost(ctx, targets, profile, func(t profileTarget, hv virt.Hypervisor, vms []string) error {
			var here []string
			for _, vm := range vms {
				if len(args) == 0 || slices.Contains(args, vm) {
					here = append(here, vm)
				}
			}
			if len(here) == 0 {
				return nil
			}
			l, err := f.engine(hv).ListSnapshots(ctx, here)
			list = append(list, l...)
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := writeSnapshotList(f, list, sk); err != nil {
		return err
	}
	if f.reportSkipped(sk) {
		return f.partialSummary("snapshots listed", hosts-len(sk), sk)
	}
	return nil
}

func writeSnapshotList(f *Factory, list []orchestrator.VMSnapshots, sk []skippedHost) error {
	if f.JSON() {
		return writeJSON(f, snapshotListToJSON(list, sk))
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
			if s.Policy != "" && s.Kind != snapmeta.Manual {
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

// SnapshotRevertOptions are the inputs of `legacyvm snapshot revert`.
type SnapshotRevertOptions struct {
	Factory  *Factory
	VM       string
	Snapshot string
	Profile  string
	LockWait time.Duration
}

func NewCmdSnapshotRevert(f *Factory, runF func(*SnapshotRevertOptions) error) *cobra.Command {
	opts := &SnapshotRevertOptions{Factory: f}
	cmd := &cobra.Command{
		Use:               "revert VM NAME",
		ValidArgsFunction: completeVMThenSnapshot(f),
		Short:             "Revert a VM to a snapshot",
		Long: `Revert puts VM back to snapshot NAME: disk content, and memory when the snapshot
has it (the VM then runs from where it was). Changes made since are lost.
legacyvm checks that the VM reached the state the snapshot recorded.`,
		Example: `  legacyvm snapshot revert acct-1 before-update`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.VM, opts.Snapshot = args[0], args[1]
			opts.LockWait = snapshotLockWait(cmd)
			if runF != nil {
				return runF(opts)
			}
			return snapshotRevertRun(cmd.Context(), opts)
		},
	}
	addProfileScope(cmd, &opts.Profile)
	return cmd
}

func snapshotRevertRun(ctx context.Context, opts *SnapshotRevertOptions) error {
	f := opts.Factory
	return withVMEngine(ctx, f, opts.Profile, opts.VM, "snapshot revert", opts.LockWait, func(e *orchestrator.Session) error {
		start := time.Now()
		st, err := e.RevertSnapshot(ctx, opts.VM, opts.Snapshot)
		if err != nil {
			return err
		}
		if f.JSON() {
			return writeJSON(f, snapshotRevertDoc{docHeader: v1, VM: opts.VM, Snapshot: opts.Snapshot, State: string(st), Took: time.Since(start)})
		}
		fmt.Fprintf(f.IO.Out, "Reverted %s to %s in %s; it is %s.\n", opts.VM, opts.Snapshot, time.Since(start).Round(time.Millisecond), st)
		return nil
	})
}

// SnapshotDeleteOptions are the inputs of `legacyvm snapshot delete`.
type SnapshotDeleteOptions struct {
	Factory  *Factory
	VM       string
	Snapshot string
	// Force allows deleting the baseline.
	Force    bool
	Profile  string
	LockWait time.Duration
}

func NewCmdSnapshotDelete(f *Factory, runF func(*SnapshotDeleteOptions) error) *cobra.Command {
	opts := &SnapshotDeleteOptions{Factory: f}
	cmd := &cobra.Command{
		Use:               "delete VM NAME",
		ValidArgsFunction: completeVMThenSnapshot(f),
		Short:             "Delete a snapshot (refuses the baseline without --force)",
		Example: `  legacyvm snapshot delete acct-1 before-update
  legacyvm snapshot delete --force acct-1 clean`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.VM, opts.Snapshot = args[0], args[1]
			opts.LockWait = snapshotLockWait(cmd)
			if runF != nil {
				return runF(opts)
			}
			return snapshotDeleteRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "allow deleting the baseline")
	addProfileScope(cmd, &opts.Profile)
	return cmd
}

func snapshotDeleteRun(ctx context.Context, opts *SnapshotDeleteOptions) error {
	f := opts.Factory
	return withVMEngine(ctx, f, opts.Profile, opts.VM, "snapshot delete", opts.LockWait, func(e *orchestrator.Session) error {
		if err := e.DeleteSnapshot(ctx, opts.VM, opts.Snapshot, opts.Force); err != nil {
			return err
		}
		if f.JSON() {
			return writeJSON(f, snapshotDeleteDoc{docHeader: v1, VM: opts.VM, Snapshot: opts.Snapshot})
		}
		fmt.Fprintf(f.IO.Out, "Deleted snapshot %s of %s.\n", opts.Snapshot, opts.VM)
		return nil
	})
}

// SnapshotTickOptions are the inputs of `legacyvm snapshot prune` and
// `legacyvm snapshot run-due`.
type SnapshotTickOptions struct {
	Factory *Factory
	// VMs are the VMs to serve (none: every managed VM in scope).
	VMs    []string
	DryRun bool
	// Now is run-due's --now ("" = the clock).
	Now      string
	Profile  string
	LockWait time.Duration
}

func NewCmdSnapshotPrune(f *Factory, runF func(*SnapshotTickOptions) error) *cobra.Command {
	opts := &SnapshotTickOptions{Factory: f}
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
			opts.VMs = args
			opts.LockWait = snapshotLockWait(cmd)
			if runF != nil {
				return runF(opts)
			}
			return snapshotPruneRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "only show what would be deleted")
	addProfileScope(cmd, &opts.Profile)
	return cmd
}

func snapshotPruneRun(ctx context.Context, opts *SnapshotTickOptions) error {
	f := opts.Factory
	return withEngine(ctx, f, opts.Profile, func(e *orchestrator.Session) error {
		return tickCommand(ctx, f, opts.Profile, e, opts.VMs, f.Now().UTC(), opts.DryRun, true, opts.LockWait)
	})
}

func NewCmdSnapshotRunDue(f *Factory, runF func(*SnapshotTickOptions) error) *cobra.Command {
	opts := &SnapshotTickOptions{Factory: f}
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
			opts.VMs = args
			opts.LockWait = snapshotLockWait(cmd)
			if runF != nil {
				return runF(opts)
			}
			return snapshotRunDueRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Now, "now", "", "pretend the time is this (RFC 3339)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "only show what would be done")
	addProfileScope(cmd, &opts.Profile)
	return cmd
}

func snapshotRunDueRun(ctx context.Context, opts *SnapshotTickOptions) error {
	f := opts.Factory
	now := f.Now().UTC()
	if opts.Now != "" {
		t, err := time.Parse(time.RFC3339, opts.Now)
		if err != nil {
			return fmt.Errorf("--now: %w (use RFC 3339, e.g. 2026-12-01T03:00:00Z)", err)
		}
		now = t.UTC()
	}
	return withEngine(ctx, f, opts.Profile, func(e *orchestrator.Session) error {
		return tickCommand(ctx, f, opts.Profile, e, opts.VMs, now.Truncate(time.Minute), opts.DryRun, false, opts.LockWait)
	})
}

// tickCommand runs (or simulates) a scheduler tick; pruneOnly skips
// creation.
func tickCommand(ctx context.Context, f *Factory, profilePath string, e *orchestrator.Session, vms []string, now time.Time, dryRun, pruneOnly bool, lockWait time.Duration) error {
	var res []orchestrator.TickResult
	var err error
	if !dryRun {
		purpose := "snapshot run-due"
		if pruneOnly {
			purpose = "snapshot prune"
		}
		var locks profileLocks
		vms, locks, err = f.lockNamedOrAll(ctx, profilePath, e, vms, purpose, lockWait)
		if err != nil {
			return err
		}
		defer locks.Release()
	}
	switch {
	case !dryRun && len(vms) == 0:
		// No managed VM (none locked): nothing to do.
	case pruneOnly:
		res, err = e.Prune(ctx, vms, now, dryRun)
	default:
		res, err = e.RunDue(ctx, vms, now, dryRun)
	}
	if err != nil {
		return err
	}
	if f.JSON() {
		if err := writeJSON(f, tickToJSON(now, dryRun, res)); err != nil {
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

// ResetOptions are the inputs of `legacyvm reset`.
type ResetOptions struct {
	Factory *Factory
	VMs     []string
	// All is every managed VM on the host, of every profile.
	All bool
	Yes bool
	// To is the snapshot to revert to ("" = the baseline).
	To       string
	Start    bool
	Profile  string
	LockWait time.Duration
}

func NewCmdReset(f *Factory, runF func(*ResetOptions) error) *cobra.Command {
	opts := &ResetOptions{Factory: f}
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
			all, yes, scoped := opts.All, opts.Yes, opts.Profile != ""
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
			opts.VMs = args
			if runF != nil {
				return runF(opts)
			}
			return resetRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "reset every managed VM on the host, of every profile (asks first)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "with --all: do not ask for confirmation")
	cmd.Flags().StringVar(&opts.To, "to", "", "revert to this snapshot instead of the baseline")
	cmd.Flags().BoolVar(&opts.Start, "start", false, "start VMs that the snapshot left shut off")
	addProfileScope(cmd, &opts.Profile)
	addLockWaitFlag(cmd, &opts.LockWait)
	return cmd
}

func resetRun(ctx context.Context, opts *ResetOptions) error {
	f, args, all, yes, to, startVMs, lockWait := opts.Factory, opts.VMs, opts.All, opts.Yes, opts.To, opts.Start, opts.LockWait
	var res []orchestrator.ResetResult
	start := time.Now()
	resetOn := func(e *orchestrator.Session, uri string, names []string) error {
		names, locks, err := f.lockNamedOrAllOn(ctx, uri, e, names, "reset", lockWait)
		if err != nil {
			return err
		}
		defer locks.Release()
		if len(names) == 0 {
			return nil // no managed VM
		}
		r, err := e.Reset(ctx, names, to)
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
			for _, sr := range e.Start(ctx, off) {
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
	if profilePath := opts.Profile; profilePath == "" {
		err = connectEngine(ctx, f, profilePath, true, func(e *orchestrator.Session) error {
			names := args
			if all {
				doms, err := e.Managed(ctx, nil)
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
		sk, hosts, err = resetAcrossHosts(ctx, f, profilePath, len(args) == 0, args, resetOn)
	}
	if err != nil {
		return err
	}
	// The progress board is closed: results may be printed.
	if f.JSON() {
		if err := writeJSON(f, resetToJSON(time.Since(start), res, sk)); err != nil {
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
}

// resetAcrossHosts runs reset on every host of the profile at path: the
// named VMs (or, with all, every VM of the profile) that each host holds.
// A name found on no answering host is an error.
func resetAcrossHosts(ctx context.Context, f *Factory, path string, all bool, names []string, reset func(e *orchestrator.Session, uri string, names []string) error) ([]skippedHost, int, error) {
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
