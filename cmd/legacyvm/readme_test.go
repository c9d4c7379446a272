package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/rogpeppe/go-internal/diff"

	"github.com/legacyvm/legacyvm/profiles"
)

var hclFenceRE = regexp.MustCompile("(?s)```hcl\n(.*?)```")

// Issue 10: the README's own HCL snippet was not fmt-clean. Every ```hcl
// block of README.md and docs/*.md must be what legacyvm fmt writes, and
// the README's profile must validate.
func TestDocSnippetsAreFormattedAndValid(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range hclFenceRE.FindAllSubmatch(b, -1) {
			n++
			src := m[1]
			wf, diags := hclwrite.ParseConfig(src, f, hcl.InitialPos)
			if diags.HasErrors() {
				t.Errorf("%s snippet %d: %s", f, i+1, diags.Error())
				continue
			}
			if out := hclwrite.Format(wf.Bytes()); !bytes.Equal(out, src) {
				t.Errorf("%s snippet %d is not formatted (legacyvm fmt):\n%s", f, i+1, diff.Diff("snippet", src, "formatted", out))
			}
			if filepath.Base(f) == "README.md" && i == 0 {
				dir := filepath.Join(t.TempDir(), "acct")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "main.hcl"), src, 0o644); err != nil {
					t.Fatal(err)
				}
				if _, diags := profiles.Load(dir, profiles.LoadOptions{Getenv: func(string) (string, bool) { return "", false }}); diags.HasErrors() {
					t.Errorf("the README's profile does not validate: %s", diags.Error())
				}
			}
		}
	}
	if n == 0 || !strings.Contains(strings.Join(files, " "), "README.md") {
		t.Fatal("no HCL snippets found")
	}
}
