package orchestrator

import (
	"go/ast"
	"go/build"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// maxSurfaceLines bounds the package's exported surface: the lines
// `go doc -short ./orchestrator` prints (issue 9). Pure pieces that other
// packages use belong in small packages that say what they hold
// (internal/inventory, internal/snapmeta, internal/imagemeta, ...); names
// no other package uses are unexported.
const maxSurfaceLines = 45

// surfaceLines lists what `go doc -short` prints for the package in dir:
// one line per untyped const or var group and per free function, and for
// each type one line, plus one per typed const or var group and per
// constructor (a function returning the type).
func surfaceLines(t *testing.T, dir string) []string {
	t.Helper()
	bp, err := build.Default.ImportDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	p, err := doc.NewFromFiles(fset, files, "github.com/legacyvm/legacyvm/orchestrator")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	values := func(kind string, vs []*doc.Value) {
		for _, v := range vs {
			out = append(out, kind+" "+strings.Join(v.Names, ", "))
		}
	}
	values("const", p.Consts)
	values("var", p.Vars)
	for _, f := range p.Funcs {
		out = append(out, "func "+f.Name)
	}
	for _, typ := range p.Types {
		out = append(out, "type "+typ.Name)
		values("    const", typ.Consts)
		values("    var", typ.Vars)
		for _, f := range typ.Funcs {
			out = append(out, "    func "+f.Name)
		}
	}
	return out
}

// The exported surface stays small: a new exported name must earn its
// place (used by another package, documented) or live elsewhere.
func TestExportedSurfaceIsSmall(t *testing.T) {
	lines := surfaceLines(t, ".")
	if len(lines) > maxSurfaceLines {
		t.Errorf("go doc -short ./orchestrator would print %d lines, at most %d allowed (issue 9): unexport what no other package uses, or move pure pieces into a package of their own:\n%s",
			len(lines), maxSurfaceLines, strings.Join(lines, "\n"))
	}
	// The count must see the package: a parse that found nothing would
	// pass vacuously.
	if !strings.Contains(strings.Join(lines, "\n"), "type Session") {
		t.Errorf("surface without the Session type: %q", lines)
	}
}
