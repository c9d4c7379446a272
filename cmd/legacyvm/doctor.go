package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// DoctorOptions are the inputs of `legacyvm doctor`.
type DoctorOptions struct {
	Factory *Factory
	Pool    string
}

func NewCmdDoctor(f *Factory, runF func(*DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the host for what legacyvm needs and what weakens isolation",
		Long: `Doctor checks the libvirt host: libvirtd reachable, QEMU present, KVM usable or
the TCG fallback, the storage pool, ebtables/iptables for the traffic filters,
and kernel or firewall settings that weaken isolation (bridge-nf-call-iptables,
rp_filter, firewalld's libvirt zone). Every problem comes with a fix.
Exit status 1 when a check fails (warnings do not fail).`,
		Example: `  legacyvm doctor
  legacyvm doctor --connect qemu+ssh://root@lab1/system -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return doctorRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Pool, "pool", "default", "storage pool to check")
	return cmd
}

func doctorRun(ctx context.Context, opts *DoctorOptions) error {
	f := opts.Factory
	uri := f.URI()
	hv, connErr := f.Connect(ctx, uri)
	if connErr == nil {
		defer hv.Close()
	}
	fs := orchestrator.OnHost(hv, uri, orchestrator.SessionOptions{}).Doctor(ctx, connErr, f.HostSystem, opts.Pool)
	failed := false
	for _, x := range fs {
		failed = failed || x.Severity == hostcheck.SeverityFail
	}
	if f.JSON() {
		if err := writeJSON(f, doctorDoc{docHeader: v1, URI: uri, OK: !failed, Checks: checksFromFindings(fs)}); err != nil {
			return err
		}
	} else {
		marks := map[hostcheck.Severity]string{hostcheck.SeverityOK: "ok  ", hostcheck.SeverityInfo: "info", hostcheck.SeverityWarn: "WARN", hostcheck.SeverityFail: "FAIL"}
		for _, x := range fs {
			fmt.Fprintf(f.IO.Out, "%s  %-24s %s\n", marks[x.Severity], x.Check, x.Message)
			fix := x.Fix
			if h := verifyHintText(x.Hint, ""); h != "" && fix == "" {
				fix = h
			} else if h != "" {
				fix += " (" + h + ")"
			}
			if fix != "" {
				fmt.Fprintf(f.IO.Out, "      %-24s fix: %s\n", "", fix)
			}
		}
	}
	if failed {
		return silent(exitError)
	}
	return nil
}
