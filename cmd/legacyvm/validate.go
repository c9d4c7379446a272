package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/profiles"
)

// ValidateOptions are the inputs of validate.
type ValidateOptions struct {
	IO       *IOStreams
	Path     string
	JSON     bool
	Vars     []string
	VarFiles []string
	Getenv   func(string) (string, bool)
}

func NewCmdValidate(f *Factory, runF func(*ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate [PATH]",
		Short: "Check a profile for mistakes",
		Long: `Validate loads a profile (a directory of *.hcl files, or one file; default
the current directory) and reports every problem it finds, each with the file,
line and a snippet, and what to do about it. Nothing is read from libvirt and
no secret is read: env(), file() and command() in product_key and
admin_password are only checked for their form.

Exit status is 0 when the profile is valid (warnings allowed) and 1 otherwise.
With -o json the result is printed as one JSON document on stdout
(docs/json.md has its schema):
  {"format_version": 1, "profile": "...", "name_declared": bool,
   "valid": bool, "error_count": N, "warning_count": N, "diagnostics": [
    {"severity": "error"|"warning", "summary": "...", "detail": "...",
     "range": {"filename": "...", "start": {"line": L, "column": C, "byte": B},
               "end": {...}}}]}`,
		Example: `  # Validate the profile in the current directory
  cd examples/lab && legacyvm validate

  # Validate an example, with a variable set on the command line
  legacyvm validate examples/single-vm -var golden=/srv/images/win7.qcow2

  # Machine-readable result for editors and CI
  legacyvm validate examples/lab -o json`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO, opts.JSON = f.IO, f.JSON()
			opts.Vars, opts.VarFiles, opts.Getenv = f.Vars, f.VarFiles, f.Getenv
			opts.Path = "."
			if len(args) == 1 {
				opts.Path = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return validateRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func validateRun(ctx context.Context, opts *ValidateOptions) error {
	p, diags := profiles.Load(opts.Path, profiles.LoadOptions{Vars: opts.Vars, VarFiles: opts.VarFiles, Getenv: opts.Getenv})
	errs, warns := countDiags(diags)
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		doc := diagnosticsJSON(diags)
		doc.Profile, doc.NameDeclared = p.Name, p.NameRange != nil
		if err := enc.Encode(doc); err != nil {
			return err
		}
		if errs > 0 {
			return silent(exitError)
		}
		return nil
	}
	if len(diags) > 0 {
		if err := writeDiagnostics(opts.IO, p.Sources, diags); err != nil {
			return err
		}
	}
	if errs > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "Profile %s is not valid: %s, %s.\n", p.Name, pluralize(errs, "error", "errors"), pluralize(warns, "warning", "warnings"))
		return silent(exitError)
	}
	fmt.Fprintf(opts.IO.Out, "Profile %s is valid: %s.\n", p.Name, profileSummary(p))
	fmt.Fprintf(opts.IO.Out, "Its name %s.\n", nameOrigin(p))
	return nil
}

// writeDiagnostics prints diagnostics with source snippets to stderr,
// in colour only when stderr is a terminal.
func writeDiagnostics(io *IOStreams, sources map[string]*hcl.File, diags hcl.Diagnostics) error {
	w := hcl.NewDiagnosticTextWriter(io.ErrOut, sources, uint(io.TerminalWidth()), io.ErrTTY && !io.NoColor)
	return w.WriteDiagnostics(diags)
}

func countDiags(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

func pluralize(n int, sing, pl string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, sing)
	}
	return fmt.Sprintf("%d %s", n, pl)
}

// profileSummary is e.g. "2 VMs (3 instances), 1 network, 1 licence,
// 1 snapshot policy".
// nameOrigin says where a profile's name comes from (the name identifies
// its VMs in libvirt).
func nameOrigin(p *profiles.Profile) string {
	if r := p.NameRange; r != nil {
		return fmt.Sprintf("is declared at %s:%d", r.Filename, r.Start.Line)
	}
	return fmt.Sprintf("comes from the path %s: moving or renaming it changes the profile's identity; declare profile { name = %q } to keep it", p.Path, p.Name)
}

func profileSummary(p *profiles.Profile) string {
	parts := []string{
		fmt.Sprintf("%s (%s)", pluralize(len(p.VMs), "VM", "VMs"), pluralize(len(p.Instances), "instance", "instances")),
		pluralize(len(p.Networks), "network", "networks"),
		pluralize(len(p.Licenses), "licence", "licences"),
		pluralize(len(p.SnapshotPolicies), "snapshot policy", "snapshot policies"),
	}
	if len(p.Images) > 0 {
		parts = append(parts, pluralize(len(p.Images), "image", "images"))
	}
	explicit := 0
	for _, h := range p.Hosts {
		if !h.Implicit {
			explicit++
		}
	}
	if explicit > 0 {
		parts = append(parts, pluralize(explicit, "host", "hosts"))
	}
	return strings.Join(parts, ", ")
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonDiagnostic struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail"`
	Range    *jsonRange `json:"range,omitempty"`
}

type jsonValidate struct {
	docHeader
	// Profile is the profile's name (what its VMs are labelled with);
	// NameDeclared says whether a profile block declares it.
	Profile      string           `json:"profile"`
	NameDeclared bool             `json:"name_declared"`
	Valid        bool             `json:"valid"`
	ErrorCount   int              `json:"error_count"`
	WarningCount int              `json:"warning_count"`
	Diagnostics  []jsonDiagnostic `json:"diagnostics"`
}

// diagnosticsJSON is the Terraform-style validate document.
func diagnosticsJSON(diags hcl.Diagnostics) jsonValidate {
	out := jsonValidate{docHeader: v1, Diagnostics: []jsonDiagnostic{}}
	out.ErrorCount, out.WarningCount = countDiags(diags)
	out.Valid = out.ErrorCount == 0
	for _, d := range diags {
		jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if r := d.Subject; r != nil {
			jd.Range = &jsonRange{
				Filename: r.Filename,
				Start:    jsonPos{Line: r.Start.Line, Column: r.Start.Column, Byte: r.Start.Byte},
				End:      jsonPos{Line: r.End.Line, Column: r.End.Column, Byte: r.End.Byte},
			}
		}
		out.Diagnostics = append(out.Diagnostics, jd)
	}
	return out
}
