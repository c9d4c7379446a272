package profiles

import (
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// loadString loads src as a one-file profile without touching the disk.
func loadString(t *testing.T, src string) hcl.Diagnostics {
	t.Helper()
	p := &Profile{Name: "limits", Path: "limits.hcl", Dir: t.TempDir(), Sources: map[string]*hcl.File{}}
	getenv := func(string) (string, bool) { return "", false }
	_, diags := loadSources(p, "limits", []sourceFile{{name: "limits.hcl", src: []byte(src)}}, LoadOptions{Getenv: getenv})
	return diags
}

func hasDiag(diags hcl.Diagnostics, summary string) bool {
	for _, d := range diags {
		if d.Summary == summary {
			return true
		}
	}
	return false
}

// TestLoadLimits: input that used to overflow the stack (a fatal error
// that kills validate) or allocate gigabytes is a located diagnostic.
func TestLoadLimits(t *testing.T) {
	const n = 100000
	rep := strings.Repeat
	tests := []struct {
		name, src string
		want      string // or "Evaluation limit reached" for "Error in function call"
	}{
		{"nested brackets", "locals {\n a = " + rep("[", n) + rep("]", n) + "\n}\n", "Nesting too deep"},
		{"nested parentheses", "locals {\n a = " + rep("(", n) + "1" + rep(")", n) + "\n}\n", "Nesting too deep"},
		{"nested objects", "locals {\n a = " + rep("{a=", n) + "1" + rep("}", n) + "\n}\n", "Nesting too deep"},
		{"nested interpolations", "locals {\n a = " + rep(`"${`, n) + "1" + rep(`}"`, n) + "\n}\n", "Nesting too deep"},
		{"nested blocks", "vm \"x\" {\n" + rep("disk {\n", n) + rep("}\n", n) + "}\n", "Nesting too deep"},
		{"nested for", "locals {\n a = " + rep("[for x in ", n/10) + "[1]: x]" + rep(": x]", n/10-1) + "\n}\n", "Nesting too deep"},
		{"file too large", "locals {\n a = \"" + rep("x", MaxProfileFileSize) + "\"\n}\n", "Profile file too large"},
		{"for expressions allocating gigabytes", "locals {\n a = [for a in range(1000): [for b in range(1000): [for c in range(1000): [a, b, c]]]]\n}\n", "Evaluation limit reached"},
		{"template doubling", "locals {\n a = \"" + rep("x", 1000) + "\"\n" + doubling(40) + "}\n", "Evaluation limit reached"},
		{"wide format", "locals {\n a = format(\"%999999999d\", 1)\n}\n", "Error in function call"},
		{"replace blowup", "locals {\n s = join(\"\", [for i in range(1000): \"aaaaaaaaaa\"])\n a = replace(local.s, \"a\", local.s)\n}\n", "Error in function call"},
		{"flatten blowup", "locals {\n r = range(1000)\n m = [for i in range(1000): local.r]\n big = [for i in range(100): local.m]\n a = flatten(local.big)\n}\n", "Error in function call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			diags := loadString(t, tt.src)
			if !hasDiag(diags, tt.want) && !(tt.want == "Error in function call" && hasDiag(diags, "Evaluation limit reached")) {
				t.Fatalf("no %q diagnostic; got %v", tt.want, diags)
			}
			for _, d := range diags {
				if d.Summary == tt.want && d.Subject == nil && tt.want != "Profile file too large" {
					t.Errorf("%q has no location", d.Summary)
				}
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 2<<30 {
				t.Errorf("loading allocated %d MiB", grew>>20)
			}
		})
	}
}

func doubling(n int) string {
	var b strings.Builder
	prev := "a"
	for i := 0; i < n; i++ {
		name := "d" + strings.Repeat("x", i)
		b.WriteString(" " + name + " = \"${local." + prev + "}${local." + prev + "}\"\n")
		prev = name
	}
	return b.String()
}

// TestCheckNesting: brackets in comments, quoted strings and heredocs do
// not count; interpolations do; the position is that of the first opening
// beyond the limit.
func TestCheckNesting(t *testing.T) {
	deep := strings.Repeat("[", MaxNesting)
	ok := []string{
		"a = \"" + strings.Repeat("[", 1000) + "\"\n",
		"# " + strings.Repeat("(", 1000) + "\nb = 1\n",
		"/* " + strings.Repeat("{", 1000) + " */\n",
		"a = <<EOT\n" + strings.Repeat("[", 1000) + "\nEOT\nb = [1]\n",
		"a = \"$${" + strings.Repeat("[", 1000) + "\"\n",
		"a = " + deep + strings.Repeat("]", MaxNesting) + "\n",
	}
	for _, src := range ok {
		if p, bad := checkNesting([]byte(src)); bad {
			t.Errorf("checkNesting(%.40q...) refused at %v", src, p)
		}
	}
	bad := []struct {
		src  string
		line int
	}{
		{"a = 1\nb = " + deep + "[]" + strings.Repeat("]", MaxNesting) + "\n", 2},
		{"a = \"${" + deep + "\"\n", 1},
		{"a = <<EOT\n${" + deep + "\nEOT\n", 2},
	}
	for _, tt := range bad {
		p, deep := checkNesting([]byte(tt.src))
		if !deep || p.Line != tt.line {
			t.Errorf("checkNesting(%.40q...) = %v, %v; want refused on line %d", tt.src, p, deep, tt.line)
		}
	}
}

// TestLimitsAllowOrdinaryWork: the bounds leave room for what profiles do.
func TestLimitsAllowOrdinaryWork(t *testing.T) {
	src := `locals {
  names = [for i in range(1000): format("pc-%04d", i)]
  pairs = {for a in range(100) : "k${a}" => [for b in range(100): a * b]}
  text  = join(",", local.names)
  wide  = format("%-40s|", "x")
}
`
	if diags := loadString(t, src); diags.HasErrors() {
		t.Fatal(diags)
	}
}
