package profiles

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// The files block widens where file() may read:
//
//	files {
//	  allow_dirs = ["/etc/legacyvm/keys"]
//	}
//
// Without it, file() (in any attribute, secrets included) reads only
// files inside the profile directory, after resolving symbolic links: a
// profile from someone else cannot make legacyvm read /root/.ssh/id_rsa
// into an answer ISO or a diagnostic.
type filesBlock struct {
	AllowDirs hcl.Expression `hcl:"allow_dirs,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

// loadFiles decodes the files block (at most one across the profile)
// before anything calls file(). allow_dirs must be written literally.
func (l *loader) loadFiles(blocks []*filesBlock) {
	l.fileRoots = []string{l.p.Dir}
	for i, b := range blocks {
		if i > 0 {
			l.errorf(b.DefRange, "Duplicate files block", "A files block was already declared at %s. Write one files block per profile.", at(blocks[0].DefRange))
			continue
		}
		if !present(b.AllowDirs) {
			continue
		}
		v, diags := b.AllowDirs.Value(nil)
		if diags.HasErrors() {
			l.errorf(b.AllowDirs.Range(), "Invalid allow_dirs", "allow_dirs must be a list of directory paths written literally, like allow_dirs = [\"/etc/legacyvm/keys\"] (no variables or functions: it decides what file() may read).")
			continue
		}
		lv, err := convert.Convert(v, cty.List(cty.String))
		if err != nil || lv.IsNull() {
			l.errorf(b.AllowDirs.Range(), "Invalid allow_dirs", "allow_dirs must be a list of directory paths, like allow_dirs = [\"/etc/legacyvm/keys\"].")
			continue
		}
		for it := lv.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			if ev.IsNull() || strings.TrimSpace(ev.AsString()) == "" {
				l.errorf(b.AllowDirs.Range(), "Invalid allow_dirs", "allow_dirs must not contain an empty path.")
				continue
			}
			d := l.resolvePath(ev.AsString())
			if d == "/" {
				l.errorf(b.AllowDirs.Range(), "Invalid allow_dirs", "allow_dirs = [\"/\"] would let file() read every file of the host: name the directory that holds the files, like \"/etc/legacyvm/keys\".")
				continue
			}
			l.fileRoots = append(l.fileRoots, d)
		}
	}
}

// checkFileAllowed reports why file() may not read path (absolute), or "".
// The path must lie inside the profile directory or a files.allow_dirs
// directory, both as written and after resolving symbolic links.
func (l *loader) checkFileAllowed(path string) string {
	inside := func(p string, roots []string) bool {
		for _, r := range roots {
			if rel, err := filepath.Rel(r, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				return true
			}
		}
		return false
	}
	roots := l.fileRoots
	if len(roots) == 0 {
		roots = []string{l.p.Dir}
	}
	why := fmt.Sprintf("file() reads only files inside the profile directory %s", l.p.Dir)
	if len(roots) > 1 {
		why += " and the directories in files.allow_dirs (" + strings.Join(roots[1:], ", ") + ")"
	}
	hint := ". Move the file there, or list its directory in a files block: files { allow_dirs = [\"" + filepath.Dir(path) + "\"] }"
	if !inside(filepath.Clean(path), roots) {
		return why + "; " + path + " is outside" + hint
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "" // missing: reading reports it
	}
	var realRoots []string
	for _, r := range roots {
		if rr, err := filepath.EvalSymlinks(r); err == nil {
			realRoots = append(realRoots, rr)
		}
	}
	if !inside(real, realRoots) {
		return why + "; " + path + " is a link to " + real + ", which is outside" + hint
	}
	return ""
}

// readValue is a value file() or env() returned, kept so that diagnostics
// can show its length instead of its content.
type readValue struct {
	value  string
	source string // file("x") or env("X")
}

// noteRead records a value file() or env() returned.
func (l *loader) noteRead(value, source string) {
	if strings.TrimSpace(value) == "" {
		return
	}
	l.reads = append(l.reads, readValue{value: value, source: source})
}

// redact replaces, in every diagnostic, the values file() and env()
// returned (also trimmed, in upper or lower case, or cut short as messages
// do) by their length and source: such a value may be a secret even in an
// ordinary attribute.
func (l *loader) redact(diags hcl.Diagnostics) {
	if len(l.reads) == 0 {
		return
	}
	type repl struct{ old, new string }
	var rs []repl
	seen := map[string]bool{}
	for _, r := range l.reads {
		n := len([]rune(strings.TrimSpace(r.value)))
		forms := []string{r.value, strings.TrimSpace(r.value)}
		for _, f := range forms[:2] {
			forms = append(forms, strings.ToUpper(f), strings.ToLower(f))
		}
		for _, f := range append([]string(nil), forms...) {
			for _, cut := range []int{12, 15, 20, 40} {
				if len(f) > cut {
					forms = append(forms, f[:cut])
				}
			}
		}
		for _, line := range strings.Split(r.value, "\n") {
			forms = append(forms, strings.TrimSpace(line))
		}
		desc := fmt.Sprintf("(%d characters, from %s)", n, r.source)
		for _, f := range forms {
			if f == "" || seen[f] {
				continue
			}
			seen[f] = true
			rs = append(rs, repl{fmt.Sprintf("%q", f), desc})
			rs = append(rs, repl{`"` + f + `"`, desc})
			if len(f) >= 4 {
				rs = append(rs, repl{f, desc})
			}
		}
	}
	// Longest first, so a value is replaced whole before its parts.
	sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].old) > len(rs[j].old) })
	pairs := make([]string, 0, 2*len(rs))
	for _, r := range rs {
		pairs = append(pairs, r.old, r.new)
	}
	replacer := strings.NewReplacer(pairs...)
	for _, d := range diags {
		d.Summary = replacer.Replace(d.Summary)
		d.Detail = replacer.Replace(d.Detail)
	}
}
