package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/inventory"
	"github.com/legacyvm/legacyvm/internal/license"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// LicensesOptions are the inputs of `legacyvm licenses`.
type LicensesOptions struct {
	Factory *Factory
	// Path is the profile; "" lists every VM on the host.
	Path string
}

func NewCmdLicenses(f *Factory, runF func(*LicensesOptions) error) *cobra.Command {
	opts := &LicensesOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "licenses [PATH]",
		Aliases: []string{"licences"},
		Short:   "List licences in use: seats, redacted keys and the VMs that hold them",
		Long: `Licenses is the licence inventory, read from the metadata legacyvm keeps in
libvirt (there is no other record): for each product key, the licence that
declares it, its edition and channel, the seats used out of those its channel
allows, the key in redacted form (only its last five characters are ever
stored), and every VM holding a seat, with its profile and when it was
provisioned. A key used under more than one licence name, or by more VMs than
it allows, is flagged.

Without PATH it lists every VM legacyvm manages on the host (--connect). With
PATH, the licences of that profile (on its hosts), including those no VM uses
yet, and any VM of another profile that uses the same key.

It reads no secrets: keys are recognised by the keyed fingerprint recorded
when each VM was provisioned. Seats are also checked before anything is
created: apply refuses a key that has no free seat (see plan --check-keys).

Activation: legacyvm never generates, bundles or shares product keys; every
key is one you own and supply. Activation happens only through Microsoft's own
mechanisms: when a vm's windows block says activate = true, the answer file
runs slmgr /ato at first logon; otherwise activation is left to you. legacyvm
does nothing to get around activation (no firmware tables, no rearm, no KMS
emulation).`,
		Example: `  legacyvm licenses
  legacyvm licenses examples/lab
  legacyvm licenses -o json | jq '.licenses[] | select(.over_subscribed)'`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Path = args[0]
			} else if err := noProfileFlags(cmd, "a PATH is given"); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return licensesRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func licensesRun(ctx context.Context, opts *LicensesOptions) error {
	f := opts.Factory
	var (
		p    *profiles.Profile
		uris []string
	)
	hostName := map[string]string{}
	if opts.Path == "" {
		uris = []string{f.URI()}
	} else {
		var err error
		if p, err = f.loadProfile(opts.Path); err != nil {
			return err
		}
		for _, h := range p.Hosts {
			u := f.planOptions().HostURI(h)
			if _, ok := hostName[u]; !ok {
				hostName[u] = h.Name
				uris = append(uris, u)
			}
		}
	}
	var (
		hosts []inventory.HostDomains
		sk    []skippedHost
	)
	for _, uri := range uris {
		doms, err := func() ([]virt.Domain, error) {
			hv, err := f.Connect(ctx, uri)
			if err != nil {
				return nil, fmt.Errorf("connect to %s: %w", uri, err)
			}
			defer hv.Close()
			doms, err := hv.ListDomains(ctx)
			if err != nil {
				return nil, fmt.Errorf("list domains on %s: %w", uri, err)
			}
			return doms, nil
		}()
		if err != nil {
			if len(uris) == 1 {
				return err
			}
			sk = append(sk, skippedHost{Host: hostName[uri], URI: uri, Error: err.Error()})
			continue
		}
		hosts = append(hosts, inventory.HostDomains{URI: uri, Domains: doms})
	}
	inv := inventory.Licences(hosts, p)
	secrets := inventory.FingerprintSecrets(hosts)
	if f.JSON() {
		hj := []hostJSON{}
		for _, h := range hosts {
			hj = append(hj, hostJSON{Host: hostName[h.URI], URI: h.URI})
		}
		if err := writeJSON(f, licencesToJSON(hj, inv, sk, secrets)); err != nil {
			return err
		}
	} else {
		writeLicencesText(f.IO.Out, f.IO.ErrOut, uris, inv, p)
	}
	if w := inventory.MixedSecretsWarning(secrets); w != "" {
		fmt.Fprintf(f.IO.ErrOut, "Warning: %s\n", w)
	}
	if f.reportSkipped(sk) {
		return f.partialSummary("licences listed", len(hosts), sk)
	}
	return nil
}

// writeLicencesText prints one row per VM holding a seat, grouped by key
// (the licence columns on the first row of each key), and a warning on
// errw for each over-subscribed key.
func writeLicencesText(w, errw io.Writer, uris []string, inv []inventory.LicenceUse, p *profiles.Profile) {
	if len(inv) == 0 {
		if p != nil {
			fmt.Fprintf(w, "Profile %s declares no licence and none of its VMs uses one.\n", p.Name)
		} else {
			fmt.Fprintf(w, "No VM managed by legacyvm on %s uses a licence.\n", strings.Join(uris, ", "))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LICENCE\tEDITION\tCHANNEL\tSEATS\tKEY\tVM\tPROFILE\tSTATE\tPROVISIONED")
	for _, u := range inv {
		name := u.Label + " (" + u.Profile + ")"
		for _, o := range u.OtherNames {
			name += ", " + o.Label + " (" + o.Profile + ")"
		}
		seats := fmt.Sprintf("%d/%s", u.SeatsUsed, allowed(u.SeatsAllowed))
		if u.OverSubscribed {
			seats += " OVER"
		}
		key := u.Key
		if key == "" {
			key = "(not recorded)"
		}
		lead := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", name, dash(u.Edition), u.Channel, seats, key)
		if len(u.VMs) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\n", lead)
		}
		for i, vm := range u.VMs {
			if i > 0 {
				lead = "\t\t\t\t"
			}
			state := string(vm.State)
			if !vm.Provisioned {
				state += " (provisioning)"
			}
			since := "-"
			if !vm.Since.IsZero() {
				since = vm.Since.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", lead, vm.Name, vm.Profile, state, since)
		}
	}
	_ = tw.Flush()
	for _, u := range inv {
		if u.OverSubscribed {
			fmt.Fprintf(errw, "Warning: the key of licence %s (%s) is used by %d VMs but its %s channel allows %s. Destroy the extra VMs or give them licences of their own.\n",
				u.Label, u.Profile, u.SeatsUsed, u.Channel, allowed(u.SeatsAllowed))
		}
	}
}

func allowed(n int) string {
	if n == license.Unlimited {
		return "unlimited"
	}
	return fmt.Sprint(n)
}
