package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/orchestrator"
)

func newCmdDoctor(f *Factory) *cobra.Command {
	var pool string
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
			ctx := cmd.Context()
			uri := f.URI()
			hv, connErr := f.Connect(ctx, uri)
			if connErr == nil {
				defer hv.Close()
			}
			fs := orchestrator.Doctor(ctx, uri, hv, connErr, f.HostSystem, pool)
			failed := false
			for _, x := range fs {
				failed = failed || x.Severity == hostcheck.SeverityFail
			}
			if f.JSON() {
				enc := json.NewEncoder(f.IO.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"host": uri, "ok": !failed, "findings": fs}); err != nil {
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
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "default", "storage pool to check")
	return cmd
}
