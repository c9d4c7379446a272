package profiles

import (
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// secretAttrs are the attributes whose value is a secret.
var secretAttrs = map[string]bool{"product_key": true, "admin_password": true}

// SecretLiterals returns the source text of every string literal whose
// value flows into a secret attribute (product_key, admin_password): the
// literals written in those attributes and in the variable defaults and
// local values they reference, directly or through other locals. files
// maps file names to their content (one profile: its *.hcl files); files
// that do not parse are analysed as far as they parse. Commands that show
// profile text (fmt --diff) hide these. Longest first, without repeats.
func SecretLiterals(files map[string][]byte) []string {
	type def struct {
		expr hclsyntax.Expression
		src  []byte
	}
	vars, locals := map[string]def{}, map[string]def{}
	type use struct {
		expr hclsyntax.Expression
		src  []byte
	}
	var secrets []use
	var walkBody func(b *hclsyntax.Body, src []byte, blockType string)
	walkBody = func(b *hclsyntax.Body, src []byte, blockType string) {
		for name, a := range b.Attributes {
			switch {
			case secretAttrs[name]:
				secrets = append(secrets, use{a.Expr, src})
			case blockType == "locals":
				locals[name] = def{a.Expr, src}
			}
		}
		for _, blk := range b.Blocks {
			if blk.Type == "variable" && len(blk.Labels) == 1 {
				if a, ok := blk.Body.Attributes["default"]; ok {
					vars[blk.Labels[0]] = def{a.Expr, src}
				}
			}
			walkBody(blk.Body, src, blk.Type)
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		src := files[n]
		if _, deep := checkNesting(src); deep || len(src) > MaxProfileFileSize {
			continue
		}
		f, _ := hclsyntax.ParseConfig(src, n, hcl.InitialPos)
		if f == nil {
			continue
		}
		if body, ok := f.Body.(*hclsyntax.Body); ok {
			walkBody(body, src, "")
		}
	}
	seen := map[string]bool{}
	var out []string
	visited := map[string]bool{}
	var collect func(e hclsyntax.Expression, src []byte)
	collect = func(e hclsyntax.Expression, src []byte) {
		hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
			if lit, ok := n.(*hclsyntax.LiteralValueExpr); ok {
				r := lit.Range()
				if r.Start.Byte >= 0 && r.End.Byte <= len(src) && r.Start.Byte < r.End.Byte {
					s := string(src[r.Start.Byte:r.End.Byte])
					if !seen[s] {
						seen[s] = true
						out = append(out, s)
					}
				}
			}
			return nil
		})
		for _, t := range e.Variables() {
			if len(t) < 2 {
				continue
			}
			a, ok := t[1].(hcl.TraverseAttr)
			if !ok {
				continue
			}
			key := t.RootName() + "." + a.Name
			if visited[key] {
				continue
			}
			visited[key] = true
			var d def
			switch t.RootName() {
			case "var":
				d = vars[a.Name]
			case "local":
				d = locals[a.Name]
			}
			if d.expr != nil {
				collect(d.expr, d.src)
			}
		}
	}
	for _, s := range secrets {
		collect(s.expr, s.src)
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
