package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/license"
)

const fakeName = "TOPSECRETNAME4242" // too long for a computer name

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func diagText(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "%s: %s\n", d.Summary, d.Detail)
	}
	return b.String()
}

// TestReadValuesNotInDiagnostics: a value file() or env() reads into an
// ordinary attribute never appears in a diagnostic (as read, trimmed, in
// another case or cut short); the message gives its length and source.
func TestReadValuesNotInDiagnostics(t *testing.T) {
	vm := func(compName string) string {
		return fmt.Sprintf(`
vm "x" {
  os = "win7-x64"
  disk {
    image = "/srv/g.qcow2"
  }
  windows {
    computer_name = %s
  }
}
`, compName)
	}
	tests := []struct{ name, expr, want string }{
		{"file", `file("name.txt")`, `(17 characters, from file("name.txt"))`},
		{"file trimmed and lower case", `lower(trimspace(file("name.txt")))`, `(17 characters, from `},
		{"env", `env("PC_NAME")`, `(17 characters, from env("PC_NAME"))`},
		{"env through a local", `local.n`, `(17 characters, from env("PC_NAME"))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"main.hcl": "locals {\n  n = env(\"PC_NAME\")\n}\n" + vm(tt.expr),
				"name.txt": "  " + fakeName + "\n",
			})
			getenv := func(k string) (string, bool) {
				if k == "PC_NAME" {
					return strings.ToLower(fakeName), true
				}
				return "", false
			}
			_, diags := Load(dir, LoadOptions{Getenv: getenv})
			text := diagText(diags)
			if !diags.HasErrors() {
				t.Fatalf("no error for a 17-character computer name:\n%s", text)
			}
			if strings.Contains(strings.ToUpper(text), fakeName[:9]) {
				t.Errorf("a diagnostic shows the value read:\n%s", text)
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("diagnostics do not say %s:\n%s", tt.want, text)
			}
		})
	}
}

// TestFileConfinedToProfile: file() reads only inside the profile
// directory (after resolving links) unless files.allow_dirs lists the
// directory; secret attributes included.
func TestFileConfinedToProfile(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"key.txt": fakeKey, "desc.txt": "outside text"})
	profile := func(extra, desc, key string) string {
		return extra + fmt.Sprintf(`
license "a" {
  product_key = %s
  edition     = "professional"
  channel     = "retail"
}
variable "d" {
  default = %s
}
`, key, desc)
	}
	inKey, inDesc := `file("keys/k.txt")`, `file("desc.txt")`
	outKey, outDesc := fmt.Sprintf("file(%q)", filepath.Join(outside, "key.txt")), fmt.Sprintf("file(%q)", filepath.Join(outside, "desc.txt"))
	allow := fmt.Sprintf("files {\n  allow_dirs = [%q]\n}\n", outside)
	tests := []struct {
		name, src string
		link      bool // desc.txt in the profile is a link to the outside file
		errs      []string
	}{
		{name: "inside", src: profile("", inDesc, inKey)},
		{name: "absolute key outside", src: profile("", inDesc, outKey), errs: []string{"File outside the profile", "is outside"}},
		{name: "relative ../ outside", src: profile("", `file("../desc.txt")`, inKey), errs: []string{"Invalid function argument", "is outside"}},
		{name: "link to outside", src: profile("", inDesc, inKey), link: true, errs: []string{"is a link to"}},
		{name: "allowed", src: profile(allow, outDesc, outKey)},
		{name: "allowed link", src: profile(allow, inDesc, inKey), link: true},
		{name: "root not allowed", src: profile("files {\n  allow_dirs = [\"/\"]\n}\n", inDesc, inKey), errs: []string{"Invalid allow_dirs"}},
		{name: "allow_dirs not literal", src: profile("files {\n  allow_dirs = [env(\"HOME\")]\n}\n", inDesc, inKey), errs: []string{"Invalid allow_dirs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sub", "prof")
			writeFiles(t, dir, map[string]string{"main.hcl": tt.src, "keys/k.txt": fakeKey, "../desc.txt": "outside text"})
			if tt.link {
				if err := os.Symlink(filepath.Join(outside, "desc.txt"), filepath.Join(dir, "desc.txt")); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFiles(t, dir, map[string]string{"desc.txt": "inside text"})
			}
			p, diags := Load(dir, LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
			text := diagText(diags)
			if strings.Contains(text, "outside text") || strings.Contains(text, fakeKey[:5]) {
				t.Errorf("a diagnostic shows file content:\n%s", text)
			}
			if len(tt.errs) == 0 {
				if diags.HasErrors() {
					t.Fatalf("unexpected errors:\n%s", text)
				}
				if src := p.Licenses[0].ProductKey; src.Kind != license.SourceFile {
					t.Errorf("product key source %v", src)
				}
				return
			}
			if !diags.HasErrors() {
				t.Fatalf("no error")
			}
			for _, e := range tt.errs {
				if !strings.Contains(text, e) {
					t.Errorf("diagnostics lack %q:\n%s", e, text)
				}
			}
		})
	}
}
