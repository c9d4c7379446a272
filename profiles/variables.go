package profiles

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// staticCtx evaluates variable defaults and -var-file values: functions,
// no references.
func (l *loader) staticCtx() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: l.functions()}
}

type varType struct {
	ty  cty.Type
	rng hcl.Range
}

func (l *loader) loadVariables(blocks []*variableBlock) {
	l.varOrigin = map[string]hcl.Expression{}
	types := map[string]varType{}
	sctx := l.staticCtx()
	for _, b := range blocks {
		if !hclsyntax.ValidIdentifier(b.Name) {
			l.errorf(b.NameRange, "Invalid variable name", "%q cannot be used in var.NAME references: use letters, digits, underscores and hyphens, starting with a letter.", b.Name)
			continue
		}
		if !l.declare("variable", b.Name, b.NameRange, b.DefRange) {
			continue
		}
		v := &Variable{Name: b.Name, DeclRange: b.DefRange, Default: cty.NilVal}
		ty := cty.DynamicPseudoType
		if present(b.Type) {
			t, diags := typeexpr.TypeConstraint(b.Type)
			l.add(diags)
			if !diags.HasErrors() {
				ty = t
			}
		}
		types[b.Name] = varType{ty: ty, rng: b.Type.Range()}
		if s, ok := l.str(b.Description, sctx, scopeStatic, "description"); ok {
			v.Description = s
		}
		if present(b.Default) {
			if dv, ok := l.value(b.Default, sctx, scopeStatic); ok {
				if cv, err := convert.Convert(dv, ty); err != nil {
					l.errorf(b.Default.Range(), "Invalid default value for variable", "The default does not match the variable's type %s: %s.", typeexpr.TypeString(ty), err)
					v.Value = cty.DynamicVal
				} else {
					v.Default, v.Value, v.ValueFrom = cv, cv, "default"
					l.varOrigin[b.Name] = b.Default
				}
			} else {
				v.Value = cty.DynamicVal // reported; keep later stages quiet
			}
		}
		l.vars[b.Name] = v
		l.varOrder = append(l.varOrder, b.Name)
	}

	// LEGACYVM_VAR_<name>.
	for _, name := range l.varOrder {
		raw, ok := l.getenv(EnvVarPrefix + name)
		if !ok {
			continue
		}
		l.setRawVar(name, raw, types[name].ty, "env "+EnvVarPrefix+name)
	}
	// -var-file, in order.
	for _, path := range l.opts.VarFiles {
		l.loadVarFile(path, types, sctx)
	}
	// -var, in order.
	for _, kv := range l.opts.Vars {
		name, raw, ok := strings.Cut(kv, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			l.add(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid --var option", Detail: fmt.Sprintf("The option --var %q is not of the form NAME=VALUE, for example --var golden=/var/lib/libvirt/images/win7.qcow2.", truncate(kv, 40))}})
			continue
		}
		if _, declared := l.vars[name]; !declared {
			l.add(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Value for undeclared variable", Detail: fmt.Sprintf("--var sets %q, but the profile declares no such variable.%s Declare it with variable %q {} or remove the option.", name, didYouMean(name, l.varOrder), name)}})
			continue
		}
		l.setRawVar(name, raw, types[name].ty, "-var")
		delete(l.varOrigin, name)
	}
	for _, name := range l.varOrder {
		v := l.vars[name]
		if v.Value == cty.NilVal {
			l.errorf(v.DeclRange, "No value for required variable", "Variable %q has no default and no value was given. Set it with --var %s=VALUE, in a --var-file, or with the environment variable %s%s, or give it a default.", name, name, EnvVarPrefix, name)
			v.Value = cty.DynamicVal
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// setRawVar sets a variable from a command-line or environment string:
// the raw string for primitive (and unconstrained) types, an HCL
// expression for collections and objects, like Terraform.
func (l *loader) setRawVar(name, raw string, ty cty.Type, from string) {
	v := l.vars[name]
	var val cty.Value
	if ty == cty.DynamicPseudoType || ty.IsPrimitiveType() {
		val = cty.StringVal(raw)
	} else {
		exprName := fmt.Sprintf("<value for var.%s>", name)
		if p, deep := checkNesting([]byte(raw)); deep || len(raw) > MaxProfileFileSize {
			if !deep {
				p = hcl.InitialPos
			}
			l.add(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value for variable", Detail: fmt.Sprintf("The value of %q from %s is too large or nested too deeply (at byte %d).", name, from, p.Byte)}})
			v.Value = cty.DynamicVal
			return
		}
		expr, diags := hclsyntax.ParseExpression([]byte(raw), exprName, hcl.InitialPos)
		if expr != nil {
			l.budget.guard(expr)
		}
		if diags.HasErrors() {
			l.add(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value for variable", Detail: fmt.Sprintf("The value of %q from %s is not a valid expression for type %s: %s.", name, from, typeexpr.TypeString(ty), diags[0].Summary)}})
			v.Value = cty.DynamicVal
			return
		}
		ev, diags := expr.Value(l.staticCtx())
		if diags.HasErrors() {
			l.add(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value for variable", Detail: fmt.Sprintf("The value of %q from %s cannot be evaluated: %s.", name, from, diags[0].Detail)}})
			v.Value = cty.DynamicVal
			return
		}
		val = ev
	}
	cv, err := convert.Convert(val, ty)
	if err != nil {
		l.add(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value for variable", Detail: fmt.Sprintf("The value of %q from %s does not match its type %s: %s.", name, from, typeexpr.TypeString(ty), err)}})
		v.Value = cty.DynamicVal
		return
	}
	v.Value, v.ValueFrom = cv, from
	delete(l.varOrigin, name)
}

func (l *loader) loadVarFile(path string, types map[string]varType, sctx *hcl.EvalContext) {
	src, err := readBounded(path, MaxProfileFileSize)
	if err != nil {
		l.add(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read variables file", Detail: fmt.Sprintf("Cannot read the -var-file %s: %v.", path, unwrapPathErr(err))}})
		return
	}
	f, diags := l.parse(src, path)
	l.add(diags)
	if f == nil || diags.HasErrors() {
		if f != nil {
			l.p.Sources[path] = f
		}
		return
	}
	l.p.Sources[path] = f
	attrs, diags := f.Body.JustAttributes()
	l.add(diags)
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		v, declared := l.vars[name]
		if !declared {
			l.warnf(a.NameRange, "Value for undeclared variable", "The variables file sets %q, but the profile declares no such variable.%s The value is ignored.", name, didYouMean(name, l.varOrder))
			continue
		}
		val, ok := l.value(a.Expr, sctx, scopeStatic)
		if !ok {
			v.Value = cty.DynamicVal
			continue
		}
		ty := types[name].ty
		cv, err := convert.Convert(val, ty)
		if err != nil {
			l.errorf(a.Expr.Range(), "Invalid value for variable", "The value of %q does not match its type %s: %s.", name, typeexpr.TypeString(ty), err)
			v.Value = cty.DynamicVal
			continue
		}
		v.Value, v.ValueFrom = cv, "-var-file "+path
		l.varOrigin[name] = a.Expr
	}
}

// varObject is the value of "var" in evaluation contexts.
func (l *loader) varObject() cty.Value {
	m := map[string]cty.Value{}
	for name, v := range l.vars {
		m[name] = v.Value
	}
	return objectOf(m)
}

// loadLocals evaluates every locals attribute in dependency order.
func (l *loader) loadLocals(blocks []*localsBlock) {
	l.locals = map[string]cty.Value{}
	l.localExprs = map[string]hcl.Expression{}
	attrs := map[string]*hcl.Attribute{}
	var order []string
	for _, b := range blocks {
		for _, name := range sortedByPos(b.Attrs) {
			a := b.Attrs[name]
			if first, ok := attrs[name]; ok {
				l.errorf(a.NameRange, "Duplicate local value", "A local value named %q was already defined at %s. Each local value is defined once across all locals blocks.", name, at(first.NameRange))
				continue
			}
			attrs[name] = a
			l.localExprs[name] = a.Expr
			order = append(order, name)
		}
	}
	state := map[string]int{} // 0 new, 1 in progress, 2 done
	ctx := &hcl.EvalContext{Functions: l.functions()}
	var visit func(name string)
	visit = func(name string) {
		a := attrs[name]
		state[name] = 1
		for _, t := range a.Expr.Variables() {
			if t.RootName() != "local" || len(t) < 2 {
				continue
			}
			ta, ok := t[1].(hcl.TraverseAttr)
			if !ok || attrs[ta.Name] == nil {
				continue
			}
			switch state[ta.Name] {
			case 0:
				visit(ta.Name)
			case 1:
				l.errorf(t.SourceRange(), "Local value cycle", "local.%s depends on local.%s, which depends (directly or not) on local.%s. Break the cycle.", name, ta.Name, name)
				state[name] = 2
				l.locals[name] = cty.DynamicVal
				return
			}
		}
		if state[name] == 2 {
			return
		}
		ctx.Variables = map[string]cty.Value{"var": l.varObject(), "local": objectOf(l.locals)}
		if v, ok := l.value(a.Expr, ctx, scopeLocals); ok {
			l.locals[name] = v
		} else {
			l.locals[name] = cty.DynamicVal
		}
		state[name] = 2
	}
	for _, name := range order {
		if state[name] == 0 {
			visit(name)
		}
	}
}

// sortedByPos returns attribute names in source order.
func sortedByPos(attrs hcl.Attributes) []string {
	names := sortedKeys(attrs)
	sortStable(names, func(a, b string) bool { return attrs[a].Range.Start.Byte < attrs[b].Range.Start.Byte })
	return names
}
