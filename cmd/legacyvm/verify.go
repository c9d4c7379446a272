package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// VerifyOptions are the inputs of `legacyvm verify`.
type VerifyOptions struct {
	Factory *Factory
	Path    string
	All     bool
	Strict  bool
}

func NewCmdVerify(f *Factory, runF func(*VerifyOptions) error) *cobra.Command {
	opts := &VerifyOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "verify [PATH]",
		Short: "Prove that the VMs are isolated: networks, traffic filters, bridges, host settings",
		Long: `Verify checks, from the outside, that every VM of the profile at PATH (default
".") is isolated, or every VM legacyvm manages on the host with --all:

  network           the NIC is on an active legacyvm network
  no-forward        the network has no <forward> element, defined or running
  no-ipv6           the network has no IPv6
  dns               DNS is on exactly when the profile says
  port-isolation    guests are isolated from each other exactly when the
                    profile says (guest_to_guest = false)
  filter-reference  the VM's definition references its network's traffic
                    filter with the VM's address
  filter-binding    the running NIC has that filter bound
  filter-rules      the filters hold the rules the profile renders to
  no-uplink         nothing but VM NICs is enslaved to the bridge

for a VM with doors (publish, egress; run verify on the libvirt host, where
the bridges are):

  doors             legacyvm daemon's relay listens for each door with the
                    declared from (a warning when the daemon is not running)
  bridge-listeners  nothing but the relay's egress ports and libvirt's DHCP
                    and DNS listens on the bridge address
  no-forwarding     the kernel does not forward packets from the bridge

and, when the libvirt host is this machine, the host conditions that weaken
isolation (the same as legacyvm doctor: ebtables and iptables present,
bridge-nf-call-iptables, rp_filter, firewalld's libvirt zone, a FORWARD policy
of ACCEPT left behind by Docker). Without a profile (--all) the checks that
compare with what a profile declares are skipped.

Every failure names the check, says why and how to repair it (usually
legacyvm apply, which also runs verify at its end). Verify boots nothing and
makes a few libvirt calls: it is cheap enough to run from monitoring.
Exit status 1 when a check fails (with --strict, also on warnings).`,
		Example: `  legacyvm verify examples/lab
  legacyvm verify --all -o json
  legacyvm verify --strict examples/lab || alert "acct VMs are not isolated"`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.All && len(args) > 0 {
				return fmt.Errorf("give a profile PATH or --all, not both")
			}
			if opts.All {
				if err := noProfileFlags(cmd, "a PATH is given instead of --all"); err != nil {
					return err
				}
			}
			opts.Path = pathArg(args)
			if runF != nil {
				return runF(opts)
			}
			return verifyRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "verify every VM legacyvm manages on the host (--connect), of every profile")
	cmd.Flags().BoolVar(&opts.Strict, "strict", false, "exit 1 on warnings too")
	return cmd
}

func verifyRun(ctx context.Context, opts *VerifyOptions) error {
	f := opts.Factory
	var vs []*orchestrator.Verification
	if opts.All {
		uri := f.URI()
		hv, err := f.Connect(ctx, uri)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", uri, err)
		}
		defer hv.Close()
		vs, err = orchestrator.OnHost(hv, uri, f.sessionOptions()).Verify(ctx, orchestrator.VerifyOptions{System: f.HostSystem, DaemonState: f.daemonState, Agent: true})
		if err != nil {
			return err
		}
	} else {
		p, err := f.loadProfile(opts.Path)
		if err != nil {
			return err
		}
		vs, err = f.verifyProfile(ctx, p, opts.Path, true)
		if err != nil {
			return err
		}
	}
	ok, warn := true, false
	var sk []skippedHost
	for _, v := range vs {
		if v.Error != "" {
			sk = append(sk, skippedHost{Host: v.HostName, URI: v.Host, Error: v.Error})
			continue
		}
		ok = ok && v.OK
		warn = warn || v.Warnings()
	}
	if f.JSON() {
		if err := writeJSON(f, verifyToJSON(ok, vs)); err != nil {
			return err
		}
	} else {
		writeVerifyText(f.IO.Out, vs, false, opts.Path)
	}
	if !ok || opts.Strict && warn {
		f.reportSkipped(sk)
		return silent(exitError)
	}
	if f.reportSkipped(sk) {
		return f.partialSummary("verified", len(vs)-len(sk), sk)
	}
	return nil
}

// verifyProfile runs verify on every host of p; path is how the user named
// the profile (for the fixes it suggests).
func (f *Factory) verifyProfile(ctx context.Context, p *profiles.Profile, path string, agent bool) ([]*orchestrator.Verification, error) {
	s := f.session(p, f.planOptions())
	defer s.Close()
	return s.Verify(ctx, orchestrator.VerifyOptions{
		System:      f.HostSystem,
		DaemonState: f.daemonState,
		Agent:       agent,
	})
}

// daemonState reads legacyvm daemon's state file (doors checks).
func (f *Factory) daemonState() (*daemonstate.State, error) {
	return daemonstate.Read(f.DaemonStatePath())
}

// verifyHintText words a check's hint; path is the profile's path.
func verifyHintText(h event.Hint, path string) string {
	switch h {
	case event.HintApply:
		if path == "" {
			path = "PROFILE"
		}
		return "legacyvm apply " + path
	case event.HintVerifyOnHost:
		return "run legacyvm verify (or doctor) on the libvirt host"
	}
	return hintText(h, "")
}

var checkMarks = map[orchestrator.CheckStatus]string{
	orchestrator.CheckPass: "pass", orchestrator.CheckFail: "FAIL", orchestrator.CheckWarn: "WARN", orchestrator.CheckSkip: "skip",
}

var findingMarks = map[hostcheck.Severity]string{
	hostcheck.SeverityOK: "pass", hostcheck.SeverityInfo: "info", hostcheck.SeverityWarn: "WARN", hostcheck.SeverityFail: "FAIL",
}

// writeVerifyText prints verifications; problemsOnly leaves out what
// passed (apply's summary). path is how the user named the profile ("":
// none), for the command a fix's hint names.
func writeVerifyText(w io.Writer, vs []*orchestrator.Verification, problemsOnly bool, path string) {
	line := func(mark, check, msg, fix string, hint event.Hint) {
		fmt.Fprintf(w, "  %s  %-17s %s\n", mark, check, msg)
		if h := verifyHintText(hint, path); h != "" && fix == "" {
			fix = h
		} else if h != "" {
			fix += " (" + h + ")"
		}
		if fix != "" {
			fmt.Fprintf(w, "        %-17s fix: %s\n", "", fix)
		}
	}
	nVMs, nFailed, nWarn, nHostFail := 0, 0, 0, 0
	for _, v := range vs {
		scope := "every profile"
		if v.Profile != "" {
			scope = "profile " + v.Profile
		}
		if v.Error != "" {
			fmt.Fprintf(w, "Skipped %s on %s: %s\n", scope, v.Host, v.Error)
			continue
		}
		if !problemsOnly {
			fmt.Fprintf(w, "Verifying %s on %s\n", scope, v.Host)
			if len(v.VMs) == 0 {
				fmt.Fprintln(w, "No VMs managed by legacyvm here.")
			}
		}
		for _, vm := range v.VMs {
			nVMs++
			if !vm.OK {
				nFailed++
			}
			var shown []orchestrator.CheckResult
			for _, c := range vm.Checks {
				if c.Status == orchestrator.CheckWarn {
					nWarn++
				}
				if !problemsOnly || c.Status == orchestrator.CheckFail || c.Status == orchestrator.CheckWarn {
					shown = append(shown, c)
				}
			}
			if len(shown) == 0 {
				continue
			}
			var about []string
			if vm.State != "" {
				about = append(about, string(vm.State))
			}
			if vm.Network != "" {
				about = append(about, vm.Network)
			}
			if v.Profile == "" {
				about = append(about, "profile "+vm.Profile)
			}
			head := vm.Name
			if len(about) > 0 {
				head += " (" + strings.Join(about, ", ") + ")"
			}
			fmt.Fprintln(w, head)
			for _, c := range shown {
				line(checkMarks[c.Status], c.Check, c.Reason, c.Fix, c.Hint)
			}
		}
		var shown []hostcheck.Finding
		for _, hc := range v.HostChecks {
			switch hc.Severity {
			case hostcheck.SeverityWarn:
				nWarn++
			case hostcheck.SeverityFail:
				nHostFail++
			}
			if !problemsOnly || hc.Severity == hostcheck.SeverityWarn || hc.Severity == hostcheck.SeverityFail {
				shown = append(shown, hc)
			}
		}
		if len(shown) > 0 {
			fmt.Fprintf(w, "host conditions (%s)\n", hostWhere(v.Host))
			for _, hc := range shown {
				line(findingMarks[hc.Severity], hc.Check, hc.Message, hc.Fix, hc.Hint)
			}
		}
	}
	switch {
	case nFailed > 0:
		fmt.Fprintf(w, "FAIL: %d of %d VMs failed a check: they are not isolated as declared.\n", nFailed, nVMs)
	case nHostFail > 0:
		fmt.Fprintf(w, "FAIL: the host lacks what isolation needs (%d host check(s) failed).\n", nHostFail)
	case nWarn > 0:
		fmt.Fprintf(w, "OK: %s isolated, with %s.\n", pluralize(nVMs, "VM", "VMs"), pluralize(nWarn, "warning", "warnings"))
	default:
		fmt.Fprintf(w, "OK: %s isolated.\n", pluralize(nVMs, "VM", "VMs"))
	}
}

func hostWhere(uri string) string {
	if hostcheck.IsLocal(uri) {
		return "this machine"
	}
	return uri
}

// verifyAfterApply runs verify on the profile just applied and reports on
// stderr: the problems found, or one line when there are none. It never
// fails the apply.
func (f *Factory) verifyAfterApply(ctx context.Context, p *profiles.Profile, path string) {
	vs, err := f.verifyProfile(ctx, p, path, false)
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "Warning: could not verify isolation: %v\n", err)
		return
	}
	var b strings.Builder
	writeVerifyText(&b, vs, true, path)
	out := b.String()
	if i := strings.LastIndex(strings.TrimSuffix(out, "\n"), "\n"); i < 0 {
		f.IO.Status("Verified isolation: %s", strings.TrimSpace(out))
		return
	}
	fmt.Fprintf(f.IO.ErrOut, "Warning: isolation problems after apply (legacyvm verify %s shows every check):\n%s", path, out)
}
