package main

import (
	"bytes"
	"context"
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
	// Recursive descends into subdirectories of directory PATHs.
	Recursive bool
}

func NewCmdFmt(f *Factory, runF func(*FmtOptions) error) *cobra.Command {
	opts := &FmtOptions{}
	cmd := &cobra.Command{
		Use:   "fmt [PATH...]",
		Short: "Rewrite profiles in canonical style",
		Long: `Fmt rewrites *.hcl files in the canonical HCL style (indentation, aligned
equals signs, spacing) and prints the name of every file it changed.
A PATH may be a file or a directory. In a directory, fmt formats the *.hcl
files that are legacyvm profiles: files of other tools (*.pkr.hcl, *.nomad.hcl,
and any file with a top-level block legacyvm does not have, such as job,
source, build or resource) and files with no legacyvm block are skipped.
Subdirectories are searched only with -recursive (hidden ones never). A file
named on the command line is always formatted. The default is the current
directory.
"-" formats standard input to standard output.

With --check nothing is written: the files that are not formatted are listed
and the exit status is 1 if there are any. --diff shows what would change
(every string that flows into product_key or admin_password, also through
variables and locals, is masked).
Files with syntax errors are reported and left alone (exit status 1).`,
		Example: `  # Format the profiles in the current directory
  legacyvm fmt

  # Every profile under examples/, in subdirectories too
  legacyvm fmt -recursive examples

  # In CI: fail if anything is not formatted, and show why
  legacyvm fmt --check --diff -recursive examples

  # Format one file from an editor
  legacyvm fmt - < examples/lab/main.hcl`,
		ValidArgsFunction: completeProfilePath,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IO
			opts.Paths = args
			if len(opts.Paths) == 0 {
				opts.Paths = []string{"."}
			}
			if runF != nil {
				return runF(opts)
			}
			return fmtRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Check, "check", false, "change nothing; list files that are not formatted and exit 1 if any")
	cmd.Flags().BoolVar(&opts.Diff, "diff", false, "show the changes as a unified diff")
	cmd.Flags().BoolVar(&opts.Recursive, "recursive", false, "also format profiles in subdirectories (-recursive works too)")
	return cmd
}

func fmtRun(ctx context.Context, opts *FmtOptions) error {
	files, err := fmtFiles(opts.Paths, opts.Recursive)
	if err != nil {
		return err
	}
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

// fmtFiles lists the files fmt works on: every named file, and in each
// named directory the *.hcl files that are legacyvm profiles (in
// subdirectories too when recursive; hidden ones never). Sorted.
func fmtFiles(paths []string, recursive bool) ([]string, error) {
	var files []string
	for _, p := range paths {
		if p == "-" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("fmt %s: %w", p, err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		// Per directory: files whose blocks are all legacyvm's, and
		// whether the directory holds a profile (a file with a block only
		// legacyvm has; variable and locals alone could be anyone's).
		type cand struct {
			path     string
			specific bool
		}
		byDir := map[string][]cand{}
		profileDir := map[string]bool{}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if path != p && (!recursive || strings.HasPrefix(name, ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if filepath.Ext(name) != ".hcl" || strings.HasPrefix(name, ".") {
				return nil
			}
			if known, specific := profileFileKind(path); known {
				dir := filepath.Dir(path)
				byDir[dir] = append(byDir[dir], cand{path, specific})
				profileDir[dir] = profileDir[dir] || specific
			}
			return nil
		})
		for dir, cs := range byDir {
			if !profileDir[dir] {
				continue
			}
			for _, c := range cs {
				files = append(files, c.path)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("fmt %s: %w", p, err)
		}
	}
	sort.Strings(files)
	return files, nil
}

// profileBlockTypes are the top-level blocks of the profile language.
var profileBlockTypes = map[string]bool{
	"profile": true, "variable": true, "locals": true, "host": true, "license": true,
	"network": true, "snapshot_policy": true, "vm": true,
}

// profileFileKind classifies a *.hcl file found in a directory: known when
// it is not another tool's by name (*.pkr.hcl, *.nomad.hcl) and has no
// top-level block legacyvm does not know (a nomad job, a packer source or
// build, a terraform resource); specific when it has a block only
// legacyvm has (vm, network, license, ...). A file that does not parse is
// known (fmt reports its syntax error) only when it is a profile by the
// blocks hclwrite could still read.
func profileFileKind(path string) (known, specific bool) {
	base := strings.ToLower(filepath.Base(path))
	if strings.HasSuffix(base, ".pkr.hcl") || strings.HasSuffix(base, ".nomad.hcl") {
		return false, false
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return true, true // reported when fmt reads it
	}
	f, _ := hclwrite.ParseConfig(src, path, hcl.InitialPos)
	if f == nil {
		return false, false
	}
	for _, b := range f.Body().Blocks() {
		if !profileBlockTypes[b.Type()] {
			return false, false
		}
		if b.Type() != "variable" && b.Type() != "locals" {
			specific = true
		}
	}
	return true, specific
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
