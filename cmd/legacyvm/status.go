package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

func newCmdStatus(f *Factory) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "status [PATH]",
		Short: "List managed VMs: state, network, address, snapshots, licence",
		Long: `Status lists the VMs legacyvm manages on the host: the ones of the profile at
PATH (default "."), or of every profile with --all. For each: its state,
network and address (from the DHCP lease, else its reservation), how many
snapshots it has and whether its baseline exists, the licence it uses, and
whether its guest agent answers (AGENT: answers, silent, off; "-" without the
guest_agent channel).
Then its doors (publish and egress): where the relay listens, for whom, to
where, whether legacyvm daemon's relay listens, and its connection counts
(relayed, refused, open now).`,
		Example: `  legacyvm status examples/lab
  legacyvm status --all -o json`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			profile, uri := "", f.URI()
			if !all {
				p, err := f.loadProfile(pathArg(args))
				if err != nil {
					return err
				}
				profile = p.Name
				uri = orchestrator.HostURI(p.Hosts[0], f.planOptions())
			}
			hv, err := f.Connect(ctx, uri)
			if err != nil {
				return fmt.Errorf("connect to %s: %w", uri, err)
			}
			defer hv.Close()
			st, err := orchestrator.Status(ctx, hv, profile)
			if err != nil {
				return err
			}
			ds, _ := orchestrator.ReadDaemonState(f.DaemonStatePath())
			orchestrator.AddRelayState(st, ds)
			if f.JSON() {
				if st == nil {
					st = []orchestrator.VMStatus{}
				}
				enc := json.NewEncoder(f.IO.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"host": uri, "vms": st})
			}
			if len(st) == 0 {
				fmt.Fprintf(f.IO.Out, "No VMs managed by legacyvm on %s.\n", uri)
				return nil
			}
			tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VM\tPROFILE\tSTATE\tNETWORK\tADDRESS\tSNAPSHOTS\tBASELINE\tLICENCE\tAGENT")
			for _, s := range st {
				state := string(s.State)
				if !s.Provisioned {
					state += " (provisioning)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, s.Profile, state, dash(s.Network), dash(s.IP), s.Snapshots, dash(s.Baseline), dash(s.License), dash(s.Agent))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return writeDoors(f.IO.Out, st)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "show the VMs of every profile on the host")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeDoors prints the doors of the VMs, if any, as a second table.
func writeDoors(w io.Writer, st []orchestrator.VMStatus) error {
	has := false
	for _, s := range st {
		has = has || len(s.Doors) > 0
	}
	if !has {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOOR\tLISTEN\tFROM\tTO\tRELAY\tCONNECTIONS\tREFUSED\tACTIVE")
	for _, s := range st {
		for _, d := range s.Doors {
			from := strings.Join(d.From, ",")
			if d.Kind == "egress" {
				from = "guests"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", d.Key, d.Listen, dash(from), d.Target, d.Relay, d.Accepted, d.Refused, d.Active)
		}
	}
	return tw.Flush()
}
