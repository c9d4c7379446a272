package profiles

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/license"
)

// fakeKey has the right format but is obviously fake; its groups are not
// in alphabet order, so none of them can appear in a message that quotes
// the key alphabet.
const fakeKey = "QXTVW-7KJ3M-PRY2D-C9HFB-G64B8"

// TestLiteralKeyNeverShown loads profiles that write a fake key (and a
// password) literally, directly, through a variable default, a local and
// a -var-file, and requires that neither appears in any diagnostic or in
// the Sources that diagnostics are printed from, except redacted.
func TestLiteralKeyNeverShown(t *testing.T) {
	body := `
variable "key" {
  default = %s
}
locals {
  k = var.key
}
license "a" {
  product_key = %s
  edition     = "professional"
  channel     = "retail"
  seats       = "many"
}
vm "x" {
  os = "win7-x64"
  licenses = [license.a]
  disk {
    image = "/srv/g.qcow2"
  }
  windows {
    admin_password = "Sup3rSecretPw"
  }
}
`
	q := fmt.Sprintf("%q", fakeKey)
	for name, src := range map[string]string{
		"direct":       fmt.Sprintf(body, `"unused"`, q),
		"via variable": fmt.Sprintf(body, q, "var.key"),
		"via local":    fmt.Sprintf(body, q, "local.k"),
		"invalid key":  fmt.Sprintf(body, `"unused"`, `"QXTVW-7KJ3M-PRY2D-C9HFB-G64BN"`),
	} {
		t.Run(name, func(t *testing.T) {
			p := &Profile{Name: "x", Path: "x.hcl", Dir: "/nonexistent", Sources: map[string]*hcl.File{}}
			_, diags := loadSources(p, "x", []sourceFile{{name: "x.hcl", src: []byte(src)}}, LoadOptions{Getenv: fixtureEnv})
			var all strings.Builder
			wr := hcl.NewDiagnosticTextWriter(&all, p.Sources, 0, false)
			if err := wr.WriteDiagnostics(diags); err != nil {
				t.Fatal(err)
			}
			for _, f := range p.Sources {
				all.Write(f.Bytes)
			}
			out := all.String()
			for _, secret := range []string{fakeKey, "QXTVW", "7KJ3M", "PRY2D", "C9HFB", "Sup3rSecretPw"} {
				if strings.Contains(out, secret) {
					t.Errorf("output contains %q:\n%s", secret, out)
				}
			}
			if !strings.Contains(out, "XXXXX-XXXXX-XXXXX-XXXXX-") {
				t.Errorf("output does not show the redacted key:\n%s", out)
			}
			if !strings.Contains(out, "written in the profile") || !strings.Contains(out, "Incorrect attribute value type") {
				t.Errorf("expected diagnostics missing:\n%s", out)
			}
		})
	}
	// The literal is kept for apply, and Source never prints it.
	p := &Profile{Name: "x", Dir: "/nonexistent", Sources: map[string]*hcl.File{}}
	p, _ = loadSources(p, "x", []sourceFile{{name: "x.hcl", src: []byte(fmt.Sprintf(body, `"unused"`, q))}}, LoadOptions{Getenv: fixtureEnv})
	src := p.Licenses[0].ProductKey
	if src.Kind != license.SourceLiteral || src.Literal != fakeKey {
		t.Fatalf("source = %v", src)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", src, src, src, src); strings.Contains(s, "QXTVW") {
		t.Errorf("Source prints the key: %s", s)
	}
}
