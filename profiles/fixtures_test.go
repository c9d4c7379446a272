package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// fixtureEnv is the environment fixtures are loaded with.
func fixtureEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"LEGACYVM_VAR_from_env": "env-value",
		"GOLDEN_PATH":           "/srv/images/golden.qcow2",
	}[name]
	return v, ok
}

var annotationRe = regexp.MustCompile(`(ERROR|WARNING): ([^#]+)`)

// expectations reads the "# ERROR: summary" and "# WARNING: summary"
// annotations of every .hcl file under path.
func expectations(t *testing.T, path string) []string {
	t.Helper()
	var files []string
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		m, _ := filepath.Glob(filepath.Join(path, "*.hcl"))
		files = m
	} else {
		files = []string{path}
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			hash := strings.Index(line, "# ERROR:")
			if w := strings.Index(line, "# WARNING:"); hash < 0 || (w >= 0 && w < hash) {
				hash = w
			}
			if hash < 0 {
				continue
			}
			for _, m := range annotationRe.FindAllStringSubmatch(line[hash:], -1) {
				out = append(out, fmt.Sprintf("%s:%d: %s: %s", f, i+1, strings.ToLower(m[1]), strings.TrimSpace(m[2])))
			}
		}
	}
	sort.Strings(out)
	return out
}

func describe(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		loc := "(no range)"
		if d.Subject != nil {
			loc = fmt.Sprintf("%s:%d", d.Subject.Filename, d.Subject.Start.Line)
		}
		out = append(out, fmt.Sprintf("%s: %s: %s", loc, sev, d.Summary))
	}
	sort.Strings(out)
	return out
}

// TestInvalidFixtures loads every case under testdata/invalid (a file or
// a directory) and requires exactly the annotated diagnostics, at exactly
// the annotated lines.
func TestInvalidFixtures(t *testing.T) {
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, e := range entries {
		path := filepath.Join("testdata/invalid", e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			want := expectations(t, path)
			if len(want) == 0 {
				t.Fatalf("%s has no # ERROR: or # WARNING: annotations", path)
			}
			_, diags := Load(path, LoadOptions{Getenv: fixtureEnv})
			got := describe(diags)
			for _, w := range want {
				distinct[w[strings.Index(w, ": ")+2:]] = true
			}
			missing, extra := diffSorted(want, got)
			for _, m := range missing {
				t.Errorf("missing diagnostic %s", m)
			}
			for _, x := range extra {
				t.Errorf("unexpected diagnostic %s", x)
			}
			if t.Failed() {
				for _, d := range diags {
					t.Logf("  %s", d.Error())
				}
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic %q has no range", d.Summary)
				}
				if d.Detail == "" {
					t.Errorf("diagnostic %q has no detail", d.Summary)
				}
			}
		})
	}
	if len(distinct) < 40 {
		t.Errorf("fixtures cover %d distinct problems, want at least 40", len(distinct))
	}
	t.Logf("fixtures cover %d distinct problems", len(distinct))
}

func diffSorted(want, got []string) (missing, extra []string) {
	w := map[string]int{}
	for _, s := range want {
		w[s]++
	}
	for _, s := range got {
		if w[s] > 0 {
			w[s]--
			continue
		}
		extra = append(extra, s)
	}
	for _, s := range want {
		if w[s] > 0 {
			missing = append(missing, s)
			w[s]--
		}
	}
	return missing, extra
}
