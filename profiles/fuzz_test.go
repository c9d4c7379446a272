package profiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzLoad loads arbitrary bytes as a single-file profile: no input may
// panic, every diagnostic must be an error or a warning with a summary,
// and Sources must be set. The seed corpus is every fixture and example,
// so `go test` runs them all.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/invalid/*.hcl", "testdata/invalid/*/*.hcl", "testdata/valid/*/*.hcl", "../examples/*/*.hcl"} {
		m, _ := filepath.Glob(pattern)
		seeds = append(seeds, m...)
	}
	if len(seeds) < 10 {
		f.Fatalf("only %d seeds", len(seeds))
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`vm "x" { count = 1e300 }`))
	f.Add([]byte(`locals { a = [for i in range(1000): i] }`))
	f.Add([]byte("locals { a = " + strings.Repeat("[", 300) + strings.Repeat("]", 300) + " }"))
	f.Add([]byte("locals {\n a = [for a in range(100): [for b in range(100): format(\"%05d\", a * b)]]\n b = \"${join(\",\", flatten(local.a))}\"\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p := &Profile{Name: "fuzz", Path: "fuzz.hcl", Dir: "/nonexistent-legacyvm-fuzz", Sources: map[string]*hcl.File{}}
		getenv := func(string) (string, bool) { return "", false }
		p, diags := loadSources(p, "fuzz", []sourceFile{{name: "fuzz.hcl", src: src}}, LoadOptions{Getenv: getenv})
		if p == nil || p.Sources == nil {
			t.Fatal("no profile")
		}
		for _, d := range diags {
			if d.Summary == "" || (d.Severity != hcl.DiagError && d.Severity != hcl.DiagWarning) {
				t.Fatalf("malformed diagnostic %#v", d)
			}
		}
		if !diags.HasErrors() {
			for _, in := range p.Instances {
				if in.VM == nil || in.VM.Host == nil || in.VM.Windows == nil || in.ComputerName == "" {
					t.Fatalf("incomplete instance %+v", in)
				}
			}
		}
	})
}

// FuzzParseSize checks that ParseSize never panics and that what it
// accepts round-trips through FormatSize.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4GiB", "512MiB", "60G", "1.5GiB", "100GB", "0B", "-1G", "1e9G", "18446744073709551615B", "18446744073709551616B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		back, err := ParseSize(FormatSize(n))
		if err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, but FormatSize gives %q -> %d, %v", s, n, FormatSize(n), back, err)
		}
	})
}

// FuzzParseDuration checks that ParseDuration never panics and never
// returns a negative duration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "12h", "90m", "2w", "1d12h", "-1d", "9999999999999w", "0s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
	})
}
