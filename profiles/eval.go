package profiles

import (
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Block references (license.acct, network.lab, ...) evaluate to capsule
// values that carry a pointer to the decoded model object, so that
// conditionals and lists of references work like any other value and a
// reference of the wrong kind is a type error.
var (
	licenseRefType = cty.Capsule("license", reflect.TypeOf(License{}))
	networkRefType = cty.Capsule("network", reflect.TypeOf(Network{}))
	policyRefType  = cty.Capsule("snapshot_policy", reflect.TypeOf(SnapshotPolicy{}))
	hostRefType    = cty.Capsule("host", reflect.TypeOf(Host{}))
	imageRefType   = cty.Capsule("image", reflect.TypeOf(Image{}))
)

// refKinds are the block kinds that can be referenced as KIND.NAME.
var refKinds = []string{"license", "network", "snapshot_policy", "host", "image"}

// rootNames are every valid first step of a reference.
var rootNames = []string{"var", "local", "license", "network", "snapshot_policy", "host", "image", "count"}

// maxFileSize bounds what file() reads eagerly.
const maxFileSize = 1 << 20

// scope says which references an expression may use.
type scope struct {
	vars, locals, blocks, count bool
	// where names the place for messages, e.g. "a variable default".
	where string
	// countHint explains why count.index is not available here.
	countHint string
}

var (
	scopeStatic = scope{where: "a variable default or --var-file value"}
	scopeLocals = scope{vars: true, locals: true, where: "a locals block"}
	scopeBlock  = scope{vars: true, locals: true, where: "this block"}
	scopeVM     = scope{vars: true, locals: true, blocks: true, where: "a vm block"}
)

// functions returns the functions available in profile expressions.
// command() is deliberately absent: it is only allowed as the whole value
// of a secret attribute, which is handled without evaluating it.
func (l *loader) functions() map[string]function.Function {
	if l.fns == nil {
		l.fns = boundFunctions(l.allFunctions())
	}
	return l.fns
}

func (l *loader) allFunctions() map[string]function.Function {
	return map[string]function.Function{
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
		"max": stdlib.MaxFunc, "min": stdlib.MinFunc, "parseint": stdlib.ParseIntFunc,
		"pow": stdlib.PowFunc, "signum": stdlib.SignumFunc,
		"chomp": stdlib.ChompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
		"upper": stdlib.UpperFunc, "replace": stdlib.ReplaceFunc, "regex": stdlib.RegexFunc,
		"regexall": stdlib.RegexAllFunc, "regex_replace": stdlib.RegexReplaceFunc,
		"split": stdlib.SplitFunc, "strlen": stdlib.StrlenFunc, "strrev": stdlib.ReverseFunc,
		"substr": stdlib.SubstrFunc, "title": stdlib.TitleFunc, "trim": stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc, "trimsuffix": stdlib.TrimSuffixFunc,
		"trimspace": stdlib.TrimSpaceFunc,
		"chunklist": stdlib.ChunklistFunc, "coalesce": stdlib.CoalesceFunc,
		"coalescelist": stdlib.CoalesceListFunc, "compact": stdlib.CompactFunc,
		"concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc,
		"element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc, "keys": stdlib.KeysFunc,
		"length": stdlib.LengthFunc, "lookup": stdlib.LookupFunc, "merge": stdlib.MergeFunc,
		"range": stdlib.RangeFunc, "reverse": stdlib.ReverseListFunc, "slice": stdlib.SliceFunc,
		"sort": stdlib.SortFunc, "values": stdlib.ValuesFunc, "zipmap": stdlib.ZipmapFunc,
		"setunion": stdlib.SetUnionFunc, "setintersection": stdlib.SetIntersectionFunc,
		"setsubtract": stdlib.SetSubtractFunc,
		"jsonencode":  stdlib.JSONEncodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"try": tryfunc.TryFunc, "can": tryfunc.CanFunc,
		"env":  l.envFunc(),
		"file": l.fileFunc(),
	}
}

// envFunc reads an environment variable now (outside secret attributes).
func (l *loader) envFunc() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "name", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			v, ok := l.getenv(name)
			if !ok {
				return cty.NilVal, function.NewArgErrorf(0, "environment variable %s is not set", name)
			}
			l.noteRead(v, fmt.Sprintf("env(%q)", name))
			return cty.StringVal(v), nil
		},
	})
}

// fileFunc reads a regular file (at most 1 MiB) relative to the profile
// directory now (outside secret attributes).
func (l *loader) fileFunc() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := l.resolvePath(args[0].AsString())
			if why := l.checkFileAllowed(p); why != "" {
				return cty.NilVal, function.NewArgErrorf(0, "%s", why)
			}
			// Check before opening: opening a FIFO would block.
			if st, err := os.Stat(p); err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s: %v", p, unwrapPathErr(err))
			} else if !st.Mode().IsRegular() {
				return cty.NilVal, function.NewArgErrorf(0, "%s is not a regular file", p)
			}
			f, err := os.Open(p)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s: %v", p, unwrapPathErr(err))
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s: %v", p, unwrapPathErr(err))
			}
			if !st.Mode().IsRegular() {
				return cty.NilVal, function.NewArgErrorf(0, "%s is not a regular file", p)
			}
			b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s: %v", p, unwrapPathErr(err))
			}
			if len(b) > maxFileSize {
				return cty.NilVal, function.NewArgErrorf(0, "%s is larger than 1 MiB", p)
			}
			l.noteRead(string(b), fmt.Sprintf("file(%q)", args[0].AsString()))
			return cty.StringVal(string(b)), nil
		},
	})
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// resolvePath makes p absolute against the profile directory.
func (l *loader) resolvePath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.p.Dir, p)
}

// present reports whether an attribute was written (gohcl fills absent
// attributes with a synthetic static expression).
func present(e hcl.Expression) bool {
	_, ok := e.(hclsyntax.Expression)
	return ok
}

// checkRefs reports references the scope does not allow or that name
// nothing, and command() calls (only allowed as a secret's whole value).
func (l *loader) checkRefs(expr hcl.Expression, sc scope) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, t := range expr.Variables() {
		diags = append(diags, l.checkTraversal(t, sc)...)
	}
	if se, ok := expr.(hclsyntax.Expression); ok {
		hclsyntax.VisitAll(se, func(n hclsyntax.Node) hcl.Diagnostics {
			if call, ok := n.(*hclsyntax.FunctionCallExpr); ok && call.Name == "command" {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "command() not allowed here",
					Detail:   "command() runs a program to fetch a secret when a command needs it, so it may only be the whole value of product_key or admin_password, like product_key = command([\"pass\", \"win7/acct\"]). Use a variable or env() for other values.",
					Subject:  call.NameRange.Ptr(),
					Context:  call.Range().Ptr(),
				})
			}
			return nil
		})
	}
	return diags
}

func (l *loader) checkTraversal(t hcl.Traversal, sc scope) hcl.Diagnostics {
	root := t.RootName()
	rng := t.SourceRange()
	errf := func(summary, detail string, a ...any) hcl.Diagnostics {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, a...), Subject: rng.Ptr()}}
	}
	var name string
	if len(t) >= 2 {
		if a, ok := t[1].(hcl.TraverseAttr); ok {
			name = a.Name
		}
	}
	switch root {
	case "var", "local":
		what, allowed, names := "var", sc.vars, l.varNames()
		if root == "local" {
			what, allowed, names = "local", sc.locals, l.localNames()
		}
		if !allowed {
			return errf("Reference not allowed here", "%s.%s cannot be used in %s: write the value itself.", what, name, sc.where)
		}
		if len(t) < 2 {
			return errf("Incomplete reference", "%s needs a name after it, like %s.name.", what, what)
		}
		if name == "" {
			return nil // index syntax: let evaluation report it
		}
		if !contains(names, name) {
			if root == "var" {
				return errf("Reference to undeclared variable", "There is no variable named %q.%s Declare it with variable %q { default = ... } or fix the name.", name, didYouMean(name, names), name)
			}
			return errf("Reference to undeclared local value", "There is no local value named %q.%s Define it in a locals block or fix the name.", name, didYouMean(name, names))
		}
		return nil
	case "license", "network", "snapshot_policy", "host", "image":
		if !sc.blocks {
			return errf("Reference not allowed here", "A %s reference can only be used in a vm block (licenses, network, snapshot_policy, host, disk.image); it cannot be used in %s.", root, sc.where)
		}
		if len(t) < 2 {
			return errf("Incomplete reference", "%s needs a name after it, like %s.name.", root, root)
		}
		if name == "" {
			return nil
		}
		names := l.blockNames(root)
		if !contains(names, name) {
			detail := fmt.Sprintf("There is no %s block named %q.", root, name)
			if s := didYouMean(name, names); s != "" {
				detail += s
			} else if len(names) > 0 {
				detail += fmt.Sprintf(" Declared %s blocks: %s.", root, strings.Join(names, ", "))
			} else {
				detail += fmt.Sprintf(" The profile declares no %s block.", root)
			}
			return errf(fmt.Sprintf("Reference to undeclared %s", root), "%s", detail)
		}
		if len(t) > 2 {
			return errf("Unsupported attribute", "A %s reference stands for the whole block: write %s.%s without anything after it.", root, root, name)
		}
		return nil
	case "count":
		if !sc.count {
			hint := sc.countHint
			if hint == "" {
				hint = "count.index is only available in the windows block's computer_name of a vm that sets count."
			}
			return errf("Reference to count.index not allowed here", "%s", hint)
		}
		if name != "index" {
			return errf("Unsupported count attribute", "count only has index: the instance number 1..count, the same number as in the instance name.")
		}
		return nil
	}
	// Unknown root: perhaps a block name written without its kind, or a
	// misspelt kind.
	detail := fmt.Sprintf("There is no %q here. References start with var., local., license., network., snapshot_policy., host. or image.", root)
	for _, k := range refKinds {
		if contains(l.blockNames(k), root) {
			detail += fmt.Sprintf(" Did you mean %s.%s?", k, root)
			return errf("Unknown reference", "%s", detail)
		}
	}
	if strings.Contains(root, "licence") {
		detail += " (The block is spelt license.)"
	}
	detail += didYouMean(root, rootNames)
	return errf("Unknown reference", "%s", detail)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// value evaluates expr after checking its references. ok is false when
// something was reported or the value is not known; an absent attribute
// yields a null value and ok.
func (l *loader) value(expr hcl.Expression, ctx *hcl.EvalContext, sc scope) (cty.Value, bool) {
	if diags := l.checkRefs(expr, sc); diags.HasErrors() {
		l.add(diags)
		return cty.NilVal, false
	}
	v, diags := expr.Value(ctx)
	l.add(diags)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return v, true
}

// str evaluates a string attribute. set is false when the attribute is
// absent or null, or when it was wrong (then a diagnostic was added).
func (l *loader) str(expr hcl.Expression, ctx *hcl.EvalContext, sc scope, attr string) (s string, set bool) {
	v, ok := l.value(expr, ctx, sc)
	if !ok || v.IsNull() {
		return "", false
	}
	cv, err := convert.Convert(v, cty.String)
	if err != nil || cv.IsNull() {
		l.typeError(expr, attr, "a string", fmt.Sprintf("%s = \"...\"", attr), v)
		return "", false
	}
	return cv.AsString(), true
}

// integer evaluates a whole-number attribute.
func (l *loader) integer(expr hcl.Expression, ctx *hcl.EvalContext, sc scope, attr, example string) (n int, set bool) {
	v, ok := l.value(expr, ctx, sc)
	if !ok || v.IsNull() {
		return 0, false
	}
	cv, err := convert.Convert(v, cty.Number)
	if err != nil || cv.IsNull() {
		l.typeError(expr, attr, "a whole number", example, v)
		return 0, false
	}
	bf := cv.AsBigFloat()
	if !bf.IsInt() {
		l.errorf(expr.Range(), "Incorrect attribute value type", "%s must be a whole number, like %s; %s is not.", attr, example, bf.Text('g', 10))
		return 0, false
	}
	i, acc := bf.Int64()
	if acc != big.Exact || i > 1<<31 || i < -(1<<31) {
		l.errorf(expr.Range(), "Number out of range", "%s is far outside the allowed range.", attr)
		return 0, false
	}
	return int(i), true
}

// boolean evaluates a true/false attribute.
func (l *loader) boolean(expr hcl.Expression, ctx *hcl.EvalContext, sc scope, attr string) (b, set bool) {
	v, ok := l.value(expr, ctx, sc)
	if !ok || v.IsNull() {
		return false, false
	}
	cv, err := convert.Convert(v, cty.Bool)
	if err != nil || cv.IsNull() {
		l.typeError(expr, attr, "true or false", attr+" = true", v)
		return false, false
	}
	return cv.True(), true
}

// enum evaluates a string attribute that must be one of options.
func (l *loader) enum(expr hcl.Expression, ctx *hcl.EvalContext, sc scope, attr string, options []string) (string, bool) {
	s, set := l.str(expr, ctx, sc, attr)
	if !set {
		return "", false
	}
	if !contains(options, s) {
		l.errorf(expr.Range(), fmt.Sprintf("Invalid %s", attr), "%s must be %s, not %q.%s", attr, quoteList(options), s, didYouMean(strings.ToLower(s), options))
		return "", false
	}
	return s, true
}

// size evaluates a size attribute with ParseSize.
func (l *loader) size(expr hcl.Expression, ctx *hcl.EvalContext, sc scope, attr string) (uint64, bool) {
	v, ok := l.value(expr, ctx, sc)
	if !ok || v.IsNull() {
		return 0, false
	}
	if v.Type() == cty.Number {
		l.errorf(expr.Range(), "Size without unit", "%s needs a unit: write it as a string such as %s = \"4GiB\" or \"512MiB\" (K, M, G, T are binary like KiB, MiB, GiB, TiB; KB, MB, GB, TB are decimal).", attr, attr)
		return 0, false
	}
	s, set := l.str(expr, ctx, sc, attr)
	if !set {
		return 0, false
	}
	n, err := ParseSize(s)
	if err != nil {
		l.errorf(expr.Range(), "Invalid size", "%s: %s.", attr, err)
		return 0, false
	}
	return n, true
}

// typeError reports a value of the wrong type.
func (l *loader) typeError(expr hcl.Expression, attr, want, example string, got cty.Value) {
	l.errorf(expr.Range(), "Incorrect attribute value type", "%s must be %s, like %s; this is %s.", attr, want, example, friendlyType(got.Type()))
}

func friendlyType(t cty.Type) string {
	switch {
	case t == cty.String:
		return "a string"
	case t == cty.Number:
		return "a number"
	case t == cty.Bool:
		return "a bool"
	case t.IsCapsuleType():
		return "a " + t.FriendlyName() + " reference"
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "an object"
	}
	return t.FriendlyName()
}

// ref evaluates a single block reference of the given capsule type and
// returns the pointer it carries (nil when absent or wrong).
func (l *loader) ref(expr hcl.Expression, ctx *hcl.EvalContext, attr string, ty cty.Type) any {
	v, ok := l.value(expr, ctx, scopeVM)
	if !ok || v.IsNull() {
		return nil
	}
	return l.refValue(v, expr.Range(), attr, ty)
}

func (l *loader) refValue(v cty.Value, rng hcl.Range, attr string, ty cty.Type) any {
	kind := ty.FriendlyName()
	if v.Type().Equals(ty) {
		return v.EncapsulatedValue()
	}
	if v.Type() == cty.String {
		l.errorf(rng, "Reference expected", "%s needs a reference to a %s block, not a string: write %s = %s.%s without quotes.", attr, kind, attr, kind, v.AsString())
		return nil
	}
	l.errorf(rng, "Incorrect reference type", "%s needs a reference to a %s block, like %s = %s.name; this is %s.", attr, kind, attr, kind, friendlyType(v.Type()))
	return nil
}

// refList evaluates a list of references; ranges are per element when the
// list is written literally.
func (l *loader) refList(expr hcl.Expression, ctx *hcl.EvalContext, attr string, ty cty.Type) (out []any, ranges []hcl.Range) {
	if !present(expr) {
		return nil, nil
	}
	kind := ty.FriendlyName()
	if elems, diags := hcl.ExprList(expr); !diags.HasErrors() {
		for _, e := range elems {
			v, ok := l.value(e, ctx, scopeVM)
			if !ok || v.IsNull() {
				continue
			}
			if p := l.refValue(v, e.Range(), attr+" element", ty); p != nil {
				out = append(out, p)
				ranges = append(ranges, e.Range())
			}
		}
		return out, ranges
	}
	v, ok := l.value(expr, ctx, scopeVM)
	if !ok || v.IsNull() {
		return nil, nil
	}
	if v.Type().Equals(ty) {
		l.errorf(expr.Range(), "Incorrect attribute value type", "%s must be a list, even with one entry: write %s = [%s.name].", attr, attr, kind)
		return nil, nil
	}
	if !(v.Type().IsTupleType() || v.Type().IsListType()) {
		l.typeError(expr, attr, "a list of "+kind+" references", fmt.Sprintf("%s = [%s.name]", attr, kind), v)
		return nil, nil
	}
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		if p := l.refValue(ev, expr.Range(), attr+" element", ty); p != nil {
			out = append(out, p)
			ranges = append(ranges, expr.Range())
		}
	}
	return out, ranges
}

// stringList evaluates a list of strings.
func (l *loader) stringList(expr hcl.Expression, ctx *hcl.EvalContext, sc scope, attr string) []string {
	v, ok := l.value(expr, ctx, sc)
	if !ok || v.IsNull() {
		return nil
	}
	cv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || cv.IsNull() {
		l.typeError(expr, attr, "a list of strings", attr+` = ["a", "b"]`, v)
		return nil
	}
	var out []string
	for it := cv.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		if ev.IsNull() {
			l.errorf(expr.Range(), "Incorrect attribute value type", "%s must not contain null.", attr)
			return nil
		}
		out = append(out, ev.AsString())
	}
	return out
}

// objectOf builds the cty object for a map of values.
func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
