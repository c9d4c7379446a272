package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// StatusOptions are the inputs of `legacyvm status`.
type StatusOptions struct {
	Factory *Factory
	// Path is the profile ("" with All).
	Path string
	All  bool
}

func NewCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "status [PATH]",
		Short: "List managed VMs: state, network, address, snapshots, licence",
		Long: `Status lists the VMs legacyvm manages on the host: the ones of the profile at
PATH (default "."), or of every profile with --all. For each: its state,
network and address (from the DHCP lease, else its reservation), how many
snapshots it has and whether its baseline exists, when its snapshot policy
takes the next scheduled snapshot (host time; "due" when the daemon or
run-due takes it at its next tick), the licence it uses, and whether its
guest agent answers (AGENT: answers, silent, off; "-" without the
guest_agent channel).
Then its doors (publish and egress): where the relay listens, for whom, to
where, whether legacyvm daemon's relay listens, and its connection counts
(relayed, refused, open now).

A profile with several host blocks is shown across all of them, with a
HOST column; a host that does not answer is reported and skipped, and the
command then ends with exit status 3 (partial).`,
		Example: `  legacyvm status examples/lab
  legacyvm status --all -o json`,
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
			} else {
				opts.Path = pathArg(args)
			}
			if runF != nil {
				return runF(opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "show the VMs of every profile on the host")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type statusHost struct {
	Host  string `json:"host"`
	URI   string `json:"uri"`
	Error string `json:"error,omitempty"`
	VMs   int    `json:"vms"`
}

func statusRun(ctx context.Context, opts *StatusOptions) error {
	f := opts.Factory
	profile := ""
	type target struct{ name, uri string }
	targets := []target{{"", f.URI()}}
	if !opts.All {
		p, err := f.loadProfile(opts.Path)
		if err != nil {
			return err
		}
		profile = p.Name
		targets = nil
		seen := map[string]bool{}
		for _, h := range p.Hosts {
			u := f.planOptions().HostURI(h)
			if !seen[u] {
				seen[u] = true
				targets = append(targets, target{h.Name, u})
			}
		}
	}
	var (
		vms   []orchestrator.VMStatus
		hosts []statusHost
		sk    []skippedHost
	)
	for _, t := range targets {
		sh := statusHost{Host: t.name, URI: t.uri}
		st, err := func() ([]orchestrator.VMStatus, error) {
			hv, err := f.Connect(ctx, t.uri)
			if err != nil {
				return nil, connectError(t.uri, err)
			}
			defer hv.Close()
			o := f.sessionOptions()
			o.Hook, o.Profile = nil, profile
			return orchestrator.OnHost(hv, t.uri, o).Status(ctx)
		}()
		if err != nil {
			if len(targets) == 1 {
				return err
			}
			sh.Error = err.Error()
			sk = append(sk, skippedHost{Host: t.name, URI: t.uri, Error: err.Error()})
		}
		for i := range st {
			st[i].Host, st[i].URI = t.name, t.uri
		}
		sh.VMs = len(st)
		hosts = append(hosts, sh)
		vms = append(vms, st...)
	}
	ds, _ := daemonstate.Read(f.DaemonStatePath())
	for i := range vms {
		vms[i].AddRelayState(ds)
	}
	if f.JSON() {
		if err := writeJSON(f, statusToJSON(hosts, vms)); err != nil {
			return err
		}
	} else {
		if err := writeStatusText(f, targets[0].uri, len(targets) > 1, vms); err != nil {
			return err
		}
		if err := writeDoors(f.IO.Out, vms); err != nil {
			return err
		}
	}
	if f.reportSkipped(sk) {
		return f.partialSummary("status shown", len(targets)-len(sk), sk)
	}
	return nil
}

func writeStatusText(f *Factory, uri string, multi bool, st []orchestrator.VMStatus) error {
	if len(st) == 0 {
		if multi {
			fmt.Fprintln(f.IO.Out, "No VMs managed by legacyvm on the profile's hosts.")
		} else {
			fmt.Fprintf(f.IO.Out, "No VMs managed by legacyvm on %s.\n", uri)
		}
		return nil
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	head := "VM\tPROFILE\tSTATE\tNETWORK\tADDRESS\tSNAPSHOTS\tBASELINE\tNEXT SNAPSHOT\tLICENCE\tAGENT"
	now := f.Now()
	if multi {
		head += "\tHOST"
	}
	fmt.Fprintln(tw, head)
	for _, s := range st {
		state := string(s.State)
		if !s.Provisioned {
			state += " (provisioning)"
		}
		next := "-"
		if s.NextSnapshot != nil {
			next = s.NextSnapshot.Local().Format("2006-01-02 15:04")
			if !s.NextSnapshot.After(now) {
				next = "due"
			}
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s", s.Name, s.Profile, state, dash(s.Network), dash(s.IP), s.Snapshots, dash(s.Baseline), next, dash(s.License), dash(s.Agent))
		if multi {
			line += "\t" + s.Host
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
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
