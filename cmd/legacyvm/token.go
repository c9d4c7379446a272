package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/web"
)

func NewCmdToken(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the web console's API tokens",
		Long: `Tokens let people and programs use the web console and its API (legacyvm
serve). A token has a role: viewer sees VMs, snapshots, screenshots and
events; tester may also reset, revert, snapshot, start, stop, use the console
and run commands in guests (exec); admin may also apply and destroy the profiles
legacyvm serve serves. --profile scopes a token to profiles: every other
profile's VM does not exist for it.

Only a SHA-256 hash of each token is stored (<web-dir>/tokens.json, mode
0600): create prints the token once, on stdout, and it cannot be shown again.`,
	}
	cmd.AddCommand(NewCmdTokenCreate(f, nil), NewCmdTokenList(f, nil), NewCmdTokenRevoke(f, nil))
	return cmd
}

// TokenOptions are the inputs of the token commands.
type TokenOptions struct {
	IO       *IOStreams
	JSON     bool
	WebDir   string
	Name     string
	Role     string
	Profiles []string
	// ID is the token to revoke (id or unique name).
	ID  string
	Now func() time.Time
}

func (o *TokenOptions) store() *web.TokenStore {
	return web.NewTokenStore(filepath.Join(o.WebDir, "tokens.json"))
}

func tokenCommand(f *Factory, cmd *cobra.Command, o *TokenOptions, run func(context.Context, *TokenOptions) error, runF func(*TokenOptions) error) error {
	o.IO, o.JSON = f.IO, f.JSON()
	if o.WebDir == "" {
		o.WebDir = webDir(f)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if runF != nil {
		return runF(o)
	}
	return run(cmd.Context(), o)
}

// NewCmdTokenCreate makes `legacyvm token create`.
func NewCmdTokenCreate(f *Factory, runF func(*TokenOptions) error) *cobra.Command {
	o := &TokenOptions{}
	cmd := &cobra.Command{
		Use:   "create --role viewer|tester|admin [--profile NAME...]",
		Short: "Create a token and print it (once) on stdout",
		Example: `  legacyvm token create --role tester --name alice
  legacyvm token create --role viewer --profile quickstart --name wallboard
  legacyvm token create --role admin --name ci`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return tokenCommand(f, cmd, o, tokenCreateRun, runF)
		},
	}
	cmd.Flags().StringVar(&o.Role, "role", "", "viewer, tester or admin (required)")
	cmd.Flags().StringVar(&o.Name, "name", "", "a name that says whose token it is (shown in the audit log)")
	cmd.Flags().StringArrayVar(&o.Profiles, "profile", nil, "scope the token to this profile's VMs (repeatable; default every profile)")
	addWebDirFlag(cmd, &o.WebDir)
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"viewer", "tester", "admin"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func tokenCreateRun(ctx context.Context, o *TokenOptions) error {
	role, err := web.ParseRole(o.Role)
	if err != nil {
		return err
	}
	for _, p := range o.Profiles {
		if strings.TrimSpace(p) == "" || strings.ContainsAny(p, "/\\") {
			return fmt.Errorf("--profile %q: give a profile's name (as legacyvm status shows it), not a path", p)
		}
	}
	secret, t, err := o.store().Create(o.Name, role, o.Profiles, o.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(o.IO.Out, secret)
	scope := "every profile"
	if len(t.Profiles) > 0 {
		scope = "profiles " + strings.Join(t.Profiles, ", ")
	}
	o.IO.Status("created token %s (%s, %s); it is shown only now", t.ID, t.Role, scope)
	return nil
}

// NewCmdTokenList makes `legacyvm token list`.
func NewCmdTokenList(f *Factory, runF func(*TokenOptions) error) *cobra.Command {
	o := &TokenOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Example: `  legacyvm token list
  legacyvm token list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return tokenCommand(f, cmd, o, tokenListRun, runF)
		},
	}
	addWebDirFlag(cmd, &o.WebDir)
	return cmd
}

// tokenListDoc is `token list -o json` (docs/json.md).
type tokenListDoc struct {
	docHeader
	Tokens []tokenView `json:"tokens"`
}

// tokenView is a token as list shows it: no hash either.
type tokenView struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Role     web.Role  `json:"role"`
	Profiles []string  `json:"profiles"`
	Created  time.Time `json:"created"`
}

func tokenListRun(ctx context.Context, o *TokenOptions) error {
	ts, err := o.store().List()
	if err != nil {
		return err
	}
	views := []tokenView{}
	for _, t := range ts {
		p := t.Profiles
		if p == nil {
			p = []string{}
		}
		views = append(views, tokenView{ID: t.ID, Name: t.Name, Role: t.Role, Profiles: p, Created: t.Created})
	}
	if o.JSON {
		enc := json.NewEncoder(o.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(tokenListDoc{docHeader: v1, Tokens: views})
	}
	if len(views) == 0 {
		o.IO.Status("no tokens (legacyvm token create --role tester makes one)")
		return nil
	}
	tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tPROFILES\tCREATED")
	for _, v := range views {
		p := strings.Join(v.Profiles, ",")
		if p == "" {
			p = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Role, p, v.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

// NewCmdTokenRevoke makes `legacyvm token revoke`.
func NewCmdTokenRevoke(f *Factory, runF func(*TokenOptions) error) *cobra.Command {
	o := &TokenOptions{}
	cmd := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token (it stops working at once, page sessions too)",
		Example: `  legacyvm token create --role viewer --name bob
  legacyvm token revoke bob`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return tokenCommand(f, cmd, o, tokenRevokeRun, runF)
		},
	}
	addWebDirFlag(cmd, &o.WebDir)
	return cmd
}

func tokenRevokeRun(ctx context.Context, o *TokenOptions) error {
	t, err := o.store().Revoke(o.ID)
	if err != nil {
		return err
	}
	o.IO.Status("revoked token %s (%s)", t.ID, t.Role)
	return nil
}
