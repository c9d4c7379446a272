package profiles

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/legacyvm/legacyvm/internal/license"
)

var secretFuncs = []string{"env", "file", "command"}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secret turns a secret attribute (product_key, admin_password) into a
// license.Source without reading anything: env(), file() and command()
// are recognised from the syntax and only their arguments are evaluated.
// Anything else is evaluated to a string and becomes a literal, with a
// warning. keepLast is how many trailing characters of a literal may stay
// visible in diagnostic snippets.
func (l *loader) secret(expr hcl.Expression, ctx *hcl.EvalContext, sc scope, attr, what string, keepLast int) license.Source {
	if !present(expr) {
		return license.Source{}
	}
	inner := hcl.UnwrapExpressionUntil(expr, func(e hcl.Expression) bool {
		_, ok := e.(*hclsyntax.FunctionCallExpr)
		return ok
	})
	if call, ok := inner.(*hclsyntax.FunctionCallExpr); ok && contains(secretFuncs, call.Name) {
		return l.secretCall(call, ctx, sc, attr)
	}
	// A secret function nested in a larger expression would be evaluated
	// now, which reads the secret: refuse.
	if se, ok := expr.(hclsyntax.Expression); ok {
		var nested hcl.Diagnostics
		hclsyntax.VisitAll(se, func(n hclsyntax.Node) hcl.Diagnostics {
			if c, ok := n.(*hclsyntax.FunctionCallExpr); ok && contains(secretFuncs, c.Name) {
				nested = append(nested, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Secret function inside an expression",
					Detail:   fmt.Sprintf("%s() must be the whole value of %s so the secret is read only when a command needs it, like %s = %s(...). Move any processing out of the profile (for example into the command that prints the secret).", c.Name, attr, attr, c.Name),
					Subject:  c.NameRange.Ptr(),
					Context:  c.Range().Ptr(),
				})
			}
			return nil
		})
		if nested.HasErrors() {
			l.add(nested)
			return license.Source{}
		}
	}
	// A literal (or a value from a variable): mask it in snippets, and
	// whatever it came from.
	l.maskExpr(expr, keepLast, map[string]bool{})
	v, ok := l.value(expr, ctx, sc)
	if !ok || v.IsNull() {
		return license.Source{}
	}
	cv, err := convert.Convert(v, cty.String)
	if err != nil || cv.IsNull() {
		l.typeError(expr, attr, "a string or env(), file(), command()", attr+` = env("NAME")`, v)
		return license.Source{}
	}
	l.warnf(expr.Range(), fmt.Sprintf("%s written in the profile", what),
		"The %s is written in the profile (or a variable), where anyone who can read the files or their history can see it. Keep it outside: %s = env(\"NAME\") reads an environment variable, file(\"secrets/%s.txt\") reads a file only you can read (chmod 600), command([\"pass\", \"win7/%s\"]) runs a password manager. None of them is read by validate or plan.",
		strings.ToLower(what), attr, attr, attr)
	return license.Source{Kind: license.SourceLiteral, Literal: cv.AsString()}
}

// maskExpr records expr's range, and the definitions of the variables and
// local values it references, for masking in Sources.
func (l *loader) maskExpr(expr hcl.Expression, keepLast int, seen map[string]bool) {
	l.masks = append(l.masks, mask{rng: expr.Range(), keepLast: keepLast})
	for _, t := range expr.Variables() {
		if len(t) < 2 {
			continue
		}
		a, ok := t[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		key := t.RootName() + "." + a.Name
		if seen[key] {
			continue
		}
		seen[key] = true
		switch t.RootName() {
		case "var":
			if e := l.varOrigin[a.Name]; e != nil {
				l.maskExpr(e, keepLast, seen)
			}
		case "local":
			if e := l.localExprs[a.Name]; e != nil {
				l.maskExpr(e, keepLast, seen)
			}
		}
	}
}

func (l *loader) secretCall(call *hclsyntax.FunctionCallExpr, ctx *hcl.EvalContext, sc scope, attr string) license.Source {
	usage := map[string]string{
		"env":     `env("ACCT_WIN7_KEY")`,
		"file":    `file("keys/acct.txt")`,
		"command": `command(["pass", "win7/acct"])`,
	}[call.Name]
	if len(call.Args) != 1 || call.ExpandFinal {
		l.errorf(call.Range(), "Wrong number of arguments", "%s() takes exactly one argument, like %s = %s.", call.Name, attr, usage)
		return license.Source{}
	}
	arg := call.Args[0]
	switch call.Name {
	case "env", "file":
		s, ok := l.str(arg, ctx, sc, call.Name+"() argument")
		if !ok {
			return license.Source{}
		}
		if s == "" {
			l.errorf(arg.Range(), "Empty secret source", "%s() needs a non-empty argument, like %s = %s.", call.Name, attr, usage)
			return license.Source{}
		}
		if call.Name == "env" {
			if !envNameRe.MatchString(s) {
				l.errorf(arg.Range(), "Invalid environment variable name", "%q is not a usable environment variable name: use letters, digits and underscores, like %s.", truncate(s, 40), usage)
				return license.Source{}
			}
			return license.Source{Kind: license.SourceEnv, Name: s}
		}
		p := l.resolvePath(s)
		if why := l.checkFileAllowed(p); why != "" {
			l.errorf(arg.Range(), "File outside the profile", "%s.", strings.ToUpper(why[:1])+why[1:])
			return license.Source{}
		}
		return license.Source{Kind: license.SourceFile, Path: p}
	default: // command
		v, ok := l.value(arg, ctx, sc)
		if !ok || v.IsNull() {
			return license.Source{}
		}
		lv, err := convert.Convert(v, cty.List(cty.String))
		if err != nil || lv.IsNull() {
			l.typeError(arg, "the command() argument", "a list of strings", usage, v)
			return license.Source{}
		}
		var argv []string
		for it := lv.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			if ev.IsNull() {
				l.errorf(arg.Range(), "Incorrect attribute value type", "The command() argument must not contain null.")
				return license.Source{}
			}
			argv = append(argv, ev.AsString())
		}
		if len(argv) == 0 || argv[0] == "" {
			l.errorf(arg.Range(), "Empty secret source", "command() needs the program and its arguments, like %s = %s.", attr, usage)
			return license.Source{}
		}
		return license.Source{Kind: license.SourceCommand, Argv: argv}
	}
}
