package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/rogpeppe/go-internal/diff"

	"github.com/legacyvm/legacyvm/internal/atomicfile"
	"github.com/spf13/cobra"
)

// FmtOptions are the inputs of fmt.
type FmtOptions struct {
	IO    *IOStreams
	Paths []string
	Check bool
	Diff  bool
}

func newCmdFmt(f *Factory) *cobra.Command {
	opts := &FmtOptions{}
	cmd := &cobra.Command{
		Use:   "fmt [PATH...]",
		Short: "Rewrite profiles in canonical style",
		Long: `Fmt rewrites *.hcl files in the canonical HCL style (indentation, aligned
equals signs, spacing) and prints the name of every file it changed.
A PATH may be a file or a directory; directories are searched recursively
(hidden directories are skipped). The default is the current directory.
"-" formats standard input to standard output.

With --check nothing is written: the files that are not formatted are listed
and the exit status is 1 if there are any. --diff shows what would change
(every string that flows into product_key or admin_password, also through
variables and locals, is masked).
Files with syntax errors are reported and left alone (exit status 1).`,
		Example: `  # Format every profile under the current directory
  legacyvm fmt

  # In CI: fail if anything is not formatted, and show why
  legacyvm fmt --check --diff examples

  # Format one file from an editor
  legacyvm fmt - < main.hcl`,
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IO
			opts.Paths = args
			if len(opts.Paths) == 0 {
				opts.Paths = []string{"."}
			}
			return fmtRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Check, "check", false, "change nothing; list files that are not formatted and exit 1 if any")
	cmd.Flags().BoolVar(&opts.Diff, "diff", false, "show the changes as a unified diff")
	return cmd
}

func fmtRun(opts *FmtOptions) error {
	var files []string
	for _, p := range opts.Paths {
		if p == "-" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("fmt %s: %w", p, err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if path != p && strings.HasPrefix(name, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if filepath.Ext(name) == ".hcl" && !strings.HasPrefix(name, ".") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fmt %s: %w", p, err)
		}
	}
	sort.Strings(files)
	failed, changed := false, 0
	for _, p := range opts.Paths {
		if p != "-" {
			continue
		}
		src, err := io.ReadAll(opts.IO.In)
		if err != nil {
			return fmt.Errorf("fmt: read standard input: %w", err)
		}
		out, ok := formatSource(opts.IO, "<stdin>", src)
		if !ok {
			failed = true
			continue
		}
		if opts.Check {
			if !bytes.Equal(src, out) {
				changed++
				fmt.Fprintln(opts.IO.Out, "<stdin>")
			}
			continue
		}
		opts.IO.Out.Write(out)
	}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("fmt %s: %w", name, err)
		}
		out, ok := formatSource(opts.IO, name, src)
		if !ok {
			failed = true
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		changed++
		fmt.Fprintln(opts.IO.Out, name)
		if opts.Diff {
			opts.IO.Out.Write(maskLiterals(maskSecrets(diff.Diff(name, src, name+" (formatted)", out)), secretLiteralsFor(name, src)))
		}
		if opts.Check {
			continue
		}
		if err := atomicfile.Replace(name, out); err != nil {
			return fmt.Errorf("fmt %s: %w", name, err)
		}
	}
	if failed || (opts.Check && changed > 0) {
		return silent(exitError)
	}
	return nil
}

// formatSource formats one file; syntax errors are printed and ok is false.
func formatSource(ios *IOStreams, name string, src []byte) ([]byte, bool) {
	f, diags := hclwrite.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		// Snippets would print source lines, which may hold a secret:
		// print the located messages only.
		_ = writeDiagnostics(ios, nil, diags)
		return nil, false
	}
	return hclwrite.Format(f.Bytes()), true
}

var secretLineRe = regexp.MustCompile(`((?:product_key|admin_password)\s*=\s*")([^"]*)(")`)

// maskSecrets hides string literals assigned to secret attributes in diff
// output.
func maskSecrets(b []byte) []byte {
	return secretLineRe.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := secretLineRe.FindSubmatch(m)
		masked := bytes.Repeat([]byte("X"), len(sub[2]))
		return append(append(append([]byte{}, sub[1]...), masked...), sub[3]...)
	})
}
