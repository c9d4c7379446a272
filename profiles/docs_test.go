package profiles

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// schemaPaths walks the gohcl schema structs and returns every block path
// ("vm", "vm.disk") and attribute path ("vm.disk.image") of the language.
func schemaPaths(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("hcl")
		name, kind, _ := strings.Cut(tag, ",")
		if name == "" {
			continue // def_range, remain
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		switch kind {
		case "block":
			out[path] = true
			schemaPaths(t.Field(i).Type, path, out)
		case "optional", "attr", "":
			out[path] = true
		}
	}
}

// docsText is every docs/*.md file of the repository, concatenated.
func docsText(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md (%v)", err)
	}
	var b strings.Builder
	for _, f := range files {
		s, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(s)
	}
	return b.String()
}

// Issue 10: host blocks, kms_host, image_index, variable type, the
// functions and the LEGACYVM_* variables were documented nowhere. Every
// block and attribute of the schema, every function and every LEGACYVM_*
// environment variable the code reads must appear in some docs/*.md as a
// backquoted name: `vm`, `vm.disk`, `vm.disk.image`, `env()`,
// `LEGACYVM_VAR_name`. The schema is walked, so a new attribute without
// documentation fails here.
func TestDocsCoverTheLanguage(t *testing.T) {
	docs := docsText(t)
	paths := map[string]bool{}
	schemaPaths(reflect.TypeOf(fileSchema{}), "", paths)
	if len(paths) < 60 {
		t.Fatalf("schema walk found only %d paths: %v", len(paths), paths)
	}
	var missing []string
	for p := range paths {
		if !strings.Contains(docs, "`"+p+"`") {
			missing = append(missing, "`"+p+"`")
		}
	}
	for name := range (&loader{}).functions() {
		if !strings.Contains(docs, "`"+name+"()`") {
			missing = append(missing, "`"+name+"()`")
		}
	}
	if !strings.Contains(docs, "`command()`") {
		missing = append(missing, "`command()`")
	}
	for _, v := range envVarsInCode(t) {
		if v == EnvVarPrefix {
			v += "name"
		}
		if !strings.Contains(docs, "`"+v+"`") {
			missing = append(missing, "`"+v+"`")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is not documented in docs/*.md", m)
	}
}

var envLiteralRE = regexp.MustCompile(`"(LEGACYVM_[A-Z_]*)`)

// envVarsInCode lists the LEGACYVM_* string literals of the repository's
// non-test Go code.
func envVarsInCode(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range envLiteralRE.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !seen[EnvVarPrefix] || !seen["LEGACYVM_FINGERPRINT_KEY"] {
		t.Fatalf("the walk found too little: %v", seen)
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
