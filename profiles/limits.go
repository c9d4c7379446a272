package profiles

import (
	"fmt"
	"regexp"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Limits on what a profile may cost to load. A profile is a few kilobytes
// written by a person; these bounds only stop input that would crash or
// stall validate (a stack overflow in the parser, nested for expressions
// allocating gigabytes) long before a real profile comes near them.
const (
	// MaxProfileFileSize bounds each profile file and -var-file.
	MaxProfileFileSize = 1 << 20
	// MaxNesting bounds how deeply brackets, braces, parentheses and
	// template interpolations nest. The HCL parser recurses once per level,
	// and 100,000 levels overflow the goroutine stack (a fatal error, not
	// a panic), so this is checked by a byte scan before parsing.
	MaxNesting = 256
	// maxForIterations bounds the elements all for expressions of one load
	// produce together.
	maxForIterations = 1 << 18
	// maxTemplateBytes bounds the bytes all string templates of one load
	// interpolate together.
	maxTemplateBytes = 64 << 20
	// maxGatherUnits bounds the size of all values that for expressions,
	// list and object constructors and function calls gather together in
	// one load (see valueUnits). cty walks every value it combines deeply,
	// so a list holding the same large list many times costs its full
	// logical size however little memory it shares.
	maxGatherUnits = 8 << 20
	// maxValueUnits bounds the size of a function's arguments and result:
	// one unit per collection element and per string byte.
	maxValueUnits = 4 << 20
	// maxFormatWidth bounds the width and precision in format() verbs
	// ("%999999999d" would allocate a gigabyte).
	maxFormatWidth = 4096
)

// checkNesting scans src for brackets, braces, parentheses and template
// interpolations nested more than MaxNesting deep, skipping comments and
// the literal text of quoted strings and heredocs. It returns the position
// of the first opening beyond the limit, or false.
func checkNesting(src []byte) (hcl.Pos, bool) {
	const (
		code = iota
		quoted
		heredoc
	)
	type frame struct {
		kind   int
		marker string // heredoc end marker
		closer byte   // code: the byte that closes this level
	}
	stack := []frame{{kind: code}}
	depth := 0
	line, col, lineStart := 1, 1, 0
	pos := func(i int) hcl.Pos { return hcl.Pos{Line: line, Column: i - lineStart + 1, Byte: i} }
	_ = col
	atLineStart := true
	for i := 0; i < len(src); i++ {
		c := src[i]
		top := &stack[len(stack)-1]
		if c == '\n' {
			line++
			lineStart = i + 1
			atLineStart = true
			if top.kind == quoted { // unterminated: let the parser say so
				stack = stack[:len(stack)-1]
			}
			continue
		}
		wasLineStart := atLineStart
		atLineStart = false
		open := func(kind int, closer byte) bool {
			depth++
			stack = append(stack, frame{kind: kind, closer: closer})
			return depth > MaxNesting
		}
		switch top.kind {
		case code:
			switch {
			case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
				for i+1 < len(src) && src[i+1] != '\n' {
					i++
				}
			case c == '/' && i+1 < len(src) && src[i+1] == '*':
				i += 2
				for i+1 < len(src) && !(src[i] == '*' && src[i+1] == '/') {
					if src[i] == '\n' {
						line++
						lineStart = i + 1
					}
					i++
				}
				i++
			case c == '"':
				stack = append(stack, frame{kind: quoted})
			case c == '<' && i+1 < len(src) && src[i+1] == '<':
				j := i + 2
				if j < len(src) && src[j] == '-' {
					j++
				}
				k := j
				for k < len(src) && (src[k] == '_' || src[k] >= 'a' && src[k] <= 'z' || src[k] >= 'A' && src[k] <= 'Z' || src[k] >= '0' && src[k] <= '9') {
					k++
				}
				if k > j && k < len(src) && (src[k] == '\n' || src[k] == '\r') {
					stack = append(stack, frame{kind: heredoc, marker: string(src[j:k])})
					i = k - 1
				}
			case c == '[':
				if open(code, ']') {
					return pos(i), true
				}
			case c == '(':
				if open(code, ')') {
					return pos(i), true
				}
			case c == '{':
				if open(code, '}') {
					return pos(i), true
				}
			case c == ']' || c == ')' || c == '}':
				if len(stack) > 1 {
					stack = stack[:len(stack)-1]
					depth--
				}
			}
		case quoted, heredoc:
			if top.kind == heredoc && wasLineStart {
				j := i
				for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
					j++
				}
				k := j + len(top.marker)
				if k <= len(src) && string(src[j:k]) == top.marker && (k == len(src) || src[k] == '\n' || src[k] == '\r') {
					stack = stack[:len(stack)-1]
					i = k - 1
					continue
				}
			}
			switch {
			case c == '\\' && top.kind == quoted:
				i++
			case c == '"' && top.kind == quoted:
				stack = stack[:len(stack)-1]
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == c && i+2 < len(src) && src[i+2] == '{':
				i += 2 // $${ and %%{ are literal
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				i++
				if open(code, '}') {
					return pos(i - 1), true
				}
			}
		}
	}
	return hcl.Pos{}, false
}

// nestingDiag is the diagnostic for input nested too deeply.
func nestingDiag(filename string, p hcl.Pos) *hcl.Diagnostic {
	end := p
	end.Column++
	end.Byte++
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Nesting too deep",
		Detail:   fmt.Sprintf("Brackets, braces, parentheses and ${ } interpolations nest more than %d levels deep here. A profile never needs that many: flatten the expression, for example with local values.", MaxNesting),
		Subject:  &hcl.Range{Filename: filename, Start: p, End: end},
	}
}

// budget is the evaluation work left for one load.
type budget struct {
	iterations    int
	templateBytes int
	gatherUnits   int
	exhausted     bool // reported once
}

func newBudget() *budget {
	return &budget{iterations: maxForIterations, templateBytes: maxTemplateBytes, gatherUnits: maxGatherUnits}
}

// guard wraps the parts of node that multiply work (the value of each for
// expression element, each interpolation of a template) so that their
// evaluation draws on b. It must be called once per parsed body or
// expression, before anything is evaluated.
func (b *budget) guard(node hclsyntax.Node) {
	var fors []*hclsyntax.ForExpr
	var tmpls []*hclsyntax.TemplateExpr
	var slots []*hclsyntax.Expression
	hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		switch e := n.(type) {
		case *hclsyntax.ForExpr:
			fors = append(fors, e)
		case *hclsyntax.TemplateExpr:
			tmpls = append(tmpls, e)
		case *hclsyntax.FunctionCallExpr:
			for i := range e.Args {
				slots = append(slots, &e.Args[i])
			}
		case *hclsyntax.TupleConsExpr:
			for i := range e.Exprs {
				slots = append(slots, &e.Exprs[i])
			}
		case *hclsyntax.ObjectConsExpr:
			for i := range e.Items {
				slots = append(slots, &e.Items[i].ValueExpr)
			}
		}
		return nil
	})
	// Wrap after the walk, so that each node is wrapped once.
	for _, e := range fors {
		e.ValExpr = b.wrap(e.ValExpr, true, false)
	}
	for _, slot := range slots {
		if _, lit := (*slot).(*hclsyntax.LiteralValueExpr); !lit {
			*slot = b.wrap(*slot, false, false)
		}
	}
	for _, e := range tmpls {
		for i, part := range e.Parts {
			if _, lit := part.(*hclsyntax.LiteralValueExpr); !lit {
				e.Parts[i] = b.wrap(part, false, true)
			}
		}
	}
}

// wrap puts e under the budget. The wrapper holds e inside a
// ParenthesesExpr, whose walk shows e itself: walks (Variables, VisitAll)
// see the same nodes as before.
func (b *budget) wrap(e hclsyntax.Expression, iteration, template bool) hclsyntax.Expression {
	return &budgetExpr{Expression: &hclsyntax.ParenthesesExpr{Expression: e, SrcRange: e.Range()}, b: b, iteration: iteration, template: template}
}

// budgetExpr evaluates its expression while the budget lasts.
type budgetExpr struct {
	hclsyntax.Expression
	b         *budget
	iteration bool // a for expression's element value
	template  bool // a template interpolation
}

func (e *budgetExpr) Value(ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if e.iteration {
		e.b.iterations--
		if e.b.iterations < 0 {
			return e.b.fail(e.Range(), fmt.Sprintf("The for expressions of this profile produce more than %d elements together. Build smaller collections.", maxForIterations))
		}
	}
	v, diags := e.Expression.Value(ctx)
	if e.b.gatherUnits < 0 {
		return cty.DynamicVal, diags
	}
	e.b.gatherUnits -= 1 + valueUnits(v, e.b.gatherUnits)
	if e.b.gatherUnits < 0 {
		return e.b.fail(e.Range(), fmt.Sprintf("The values this profile combines (in lists, objects, for expressions and function calls) hold more than %d elements and characters together. Build smaller collections.", maxGatherUnits))
	}
	if e.template && v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
		e.b.templateBytes -= len(v.AsString())
		if e.b.templateBytes < 0 {
			return e.b.fail(e.Range(), fmt.Sprintf("The string templates of this profile produce more than %d MiB together. Build smaller strings.", maxTemplateBytes>>20))
		}
	}
	return v, diags
}

// fail reports the exhausted budget once; later calls only return an
// unknown value, which ends the work around them cheaply.
func (b *budget) fail(rng hcl.Range, detail string) (cty.Value, hcl.Diagnostics) {
	if b.exhausted {
		return cty.DynamicVal, nil
	}
	b.exhausted = true
	return cty.DynamicVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Evaluation limit reached", Detail: detail, Subject: rng.Ptr()}}
}

// valueUnits counts a value's collection elements and string bytes, deeply,
// stopping as soon as the count passes limit (so that a list holding the
// same large list many times is cheap to measure).
func valueUnits(v cty.Value, limit int) int {
	n := 0
	var walk func(v cty.Value)
	walk = func(v cty.Value) {
		if n > limit || !v.IsKnown() || v.IsNull() {
			return
		}
		ty := v.Type()
		switch {
		case ty == cty.String:
			n += len(v.AsString())
		case ty.IsCapsuleType():
			n++
		case ty.IsPrimitiveType():
			n++
		case v.CanIterateElements():
			for it := v.ElementIterator(); it.Next() && n <= limit; {
				n++
				_, ev := it.Element()
				walk(ev)
			}
		}
	}
	walk(v)
	return n
}

var formatWidthRe = regexp.MustCompile(`%[-+# 0]*(\[[0-9]+\])?([0-9]*)(\.([0-9]*))?`)

// boundFunctions wraps each function so that arguments or results larger
// than maxValueUnits are errors, and format widths are bounded. try and
// can take unevaluated expressions and are left as they are.
func boundFunctions(fns map[string]function.Function) map[string]function.Function {
	out := make(map[string]function.Function, len(fns))
	for name, f := range fns {
		if name == "try" || name == "can" {
			out[name] = f
			continue
		}
		out[name] = boundFunction(name, f)
	}
	return out
}

func boundFunction(name string, f function.Function) function.Function {
	params := f.Params()
	spec := &function.Spec{
		Description: f.Description(),
		Params:      params,
		VarParam:    f.VarParam(),
		// Types are checked too: some (flatten's) are as large as the
		// result.
		Type: func(args []cty.Value) (cty.Type, error) {
			if err := checkArgs(name, args); err != nil {
				return cty.NilType, err
			}
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if err := checkArgs(name, args); err != nil {
				return cty.NilVal, err
			}
			if name == "format" || name == "formatlist" || name == "indent" || name == "replace" || name == "regex_replace" {
				if err := checkGrowth(name, args); err != nil {
					return cty.NilVal, err
				}
			}
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if valueUnits(v, maxValueUnits) > maxValueUnits {
				return cty.NilVal, fmt.Errorf("the result of %s() is too large (more than %d elements and characters)", name, maxValueUnits)
			}
			return v, nil
		},
	}
	return function.New(spec)
}

func checkArgs(name string, args []cty.Value) error {
	total := 0
	for _, a := range args {
		total += valueUnits(a, maxValueUnits)
		if total > maxValueUnits {
			return fmt.Errorf("the arguments of %s() are too large (more than %d elements and characters)", name, maxValueUnits)
		}
	}
	return nil
}

// checkGrowth refuses calls whose result could be far larger than their
// arguments: wide format verbs, and replacements or indents that multiply
// a string.
func checkGrowth(name string, args []cty.Value) error {
	str := func(i int) (string, bool) {
		if i >= len(args) || !args[i].IsKnown() || args[i].IsNull() || args[i].Type() != cty.String {
			return "", false
		}
		return args[i].AsString(), true
	}
	switch name {
	case "format", "formatlist":
		spec, ok := str(0)
		if !ok {
			return nil
		}
		for _, m := range formatWidthRe.FindAllStringSubmatch(spec, -1) {
			for _, num := range []string{m[2], m[4]} {
				if len(num) > 4 || len(num) == 4 && num > fmt.Sprint(maxFormatWidth) {
					return fmt.Errorf("a width or precision above %d in the format of %s() is not supported", maxFormatWidth, name)
				}
			}
		}
	case "indent":
		// indent(spaces, str): the result grows by spaces per line.
		if len(args) == 2 && args[0].IsKnown() && !args[0].IsNull() && args[0].Type() == cty.Number {
			s, ok := str(1)
			if !ok {
				return nil
			}
			n, _ := args[0].AsBigFloat().Int64()
			lines := int64(1)
			for i := 0; i < len(s); i++ {
				if s[i] == '\n' {
					lines++
				}
			}
			if n < 0 || n > maxFormatWidth || n*lines > maxValueUnits {
				return fmt.Errorf("indent() would build a string of more than %d characters", maxValueUnits)
			}
		}
	case "replace", "regex_replace":
		s, ok1 := str(0)
		r, ok2 := str(2)
		if ok1 && ok2 && int64(len(s)+1)*int64(len(r)+1) > maxValueUnits {
			return fmt.Errorf("%s() could build a string of more than %d characters: use a shorter string or replacement", name, maxValueUnits)
		}
	}
	return nil
}
