package profiles

import (
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Test is a test block: steps run in declaration order on each of VMs,
// through the guest agent (legacyvm test).
type Test struct {
	Name string
	// VMs are the vm blocks whose instances run the test.
	VMs []*VM
	// Reset is "before", "after", "both" (default) or "none": when the
	// instances go back to their snapshot policy's baseline.
	Reset string
	Steps []*TestStep
	// DeclRange is the block's header.
	DeclRange hcl.Range
}

// Step types.
const (
	StepCopyIn  = "copy_in"
	StepRun     = "run"
	StepCopyOut = "copy_out"
)

// TestStep is one step block.
type TestStep struct {
	// Type is StepCopyIn, StepRun or StepCopyOut.
	Type string
	// Name is the step's name in reports (default: type and its subject).
	Name string
	// From and To: copy_in host path (absolute, resolved against the
	// profile directory) -> guest path; copy_out guest path -> path
	// relative to the VM's results directory.
	From, To string
	// Command, Env, Cwd, Timeout, ExpectExit: run.
	Command    []string
	Env        map[string]string
	Cwd        string
	Timeout    string // a duration (ParseDuration); "" = 10m
	ExpectExit int
	DeclRange  hcl.Range
}

type testBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	VMs       hcl.Expression `hcl:"vms,optional"`
	Reset     hcl.Expression `hcl:"reset,optional"`
	Steps     []*stepBlock   `hcl:"step,block"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type stepBlock struct {
	Type       string         `hcl:"type,label"`
	TypeRange  hcl.Range      `hcl:"type,label_range"`
	Name       hcl.Expression `hcl:"name,optional"`
	From       hcl.Expression `hcl:"from,optional"`
	To         hcl.Expression `hcl:"to,optional"`
	Command    hcl.Expression `hcl:"command,optional"`
	Env        hcl.Expression `hcl:"env,optional"`
	Cwd        hcl.Expression `hcl:"cwd,optional"`
	Timeout    hcl.Expression `hcl:"timeout,optional"`
	ExpectExit hcl.Expression `hcl:"expect_exit,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

// decodeTests decodes the test blocks (after the vm blocks).
func (l *loader) decodeTests(blocks []*testBlock) {
	seen := map[string]hcl.Range{}
	vms := map[string]*VM{}
	for _, d := range l.vms {
		vms[d.vm.Name] = d.vm
	}
	for _, b := range blocks {
		if prev, ok := seen[b.Name]; ok {
			l.errorf(b.NameRange, "Duplicate test block", "A test named %q is already declared at %s. Give each test its own name.", b.Name, at(prev))
			continue
		}
		seen[b.Name] = b.DefRange
		l.checkName("test", b.Name, b.NameRange, 63, " (and results directories and JUnit suites)")
		t := &Test{Name: b.Name, Reset: "both", DeclRange: b.DefRange}
		if !present(b.VMs) {
			l.errorf(b.DefRange, "Missing vms", "A test needs the VMs it runs on: vms = [vm.%s].", firstOr(sortedKeys(vms), "name"))
		} else if elems, diags := hcl.ExprList(b.VMs); diags.HasErrors() {
			l.errorf(b.VMs.Range(), "List of VMs expected", "vms is a list of vm references: vms = [vm.a, vm.b].")
		} else {
			for _, e := range elems {
				tr, diags := hcl.AbsTraversalForExpr(unguard(e))
				if diags.HasErrors() || len(tr) != 2 || tr.RootName() != "vm" {
					l.errorf(e.Range(), "VM reference expected", "Each element of vms is a reference like vm.name, without quotes.")
					continue
				}
				attr, ok := tr[1].(hcl.TraverseAttr)
				if !ok {
					l.errorf(e.Range(), "VM reference expected", "Each element of vms is a reference like vm.name, without quotes.")
					continue
				}
				vm, ok := vms[attr.Name]
				if !ok {
					l.errorf(e.Range(), "Unknown vm", "There is no vm block named %q.%s", attr.Name, suggest(attr.Name, sortedKeys(vms)))
					continue
				}
				t.VMs = append(t.VMs, vm)
			}
		}
		if present(b.Reset) {
			if v, ok := l.enum(b.Reset, l.baseCtx, scopeVM, "reset", []string{"before", "after", "both", "none"}); ok {
				t.Reset = v
			}
		}
		if len(b.Steps) == 0 {
			l.errorf(b.DefRange, "Test without steps", "Add step blocks, run in order: step \"copy_in\" { from = \"...\" to = \"...\" }, step \"run\" { command = [...] }, step \"copy_out\" { from = \"...\" }.")
		}
		for _, sb := range b.Steps {
			if s := l.decodeStep(sb); s != nil {
				t.Steps = append(t.Steps, s)
			}
		}
		l.p.Tests = append(l.p.Tests, t)
	}
}

// unguard returns the expression the load's evaluation budget wrapped
// (see budget.guard), or e itself.
func unguard(e hcl.Expression) hcl.Expression {
	if b, ok := e.(*budgetExpr); ok {
		if p, ok := b.Expression.(*hclsyntax.ParenthesesExpr); ok {
			return p.Expression
		}
		return b.Expression
	}
	return e
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func suggest(name string, options []string) string { return didYouMean(name, options) }

func (l *loader) decodeStep(b *stepBlock) *TestStep {
	s := &TestStep{Type: b.Type, DeclRange: b.DefRange}
	ctx := l.baseCtx
	str := func(e hcl.Expression, attr string) string {
		v, _ := l.str(e, ctx, scopeVM, attr)
		return v
	}
	notFor := func(e hcl.Expression, attr string) {
		if present(e) {
			l.errorf(e.Range(), "Attribute not valid here", "%s is not an attribute of a %s step. Remove it.", attr, b.Type)
		}
	}
	s.Name = str(b.Name, "name")
	switch b.Type {
	case StepCopyIn, StepCopyOut:
		notFor(b.Command, "command")
		notFor(b.Env, "env")
		notFor(b.Cwd, "cwd")
		notFor(b.Timeout, "timeout")
		notFor(b.ExpectExit, "expect_exit")
		if !l.required(b.From, b.DefRange, b.Type+" step", "from", `from = "..."`) {
			return nil
		}
		s.From, s.To = str(b.From, "from"), str(b.To, "to")
		if b.Type == StepCopyIn {
			if s.To == "" {
				l.errorf(b.DefRange, "Missing to", "A copy_in step needs the guest path to copy to: to = \"C:\\\\stage\\\\app.msi\".")
				return nil
			}
			s.From = l.resolvePath(s.From)
			// What goes into a guest may leave with it: copy_in takes only
			// files file() may read.
			if why := l.checkFileAllowed(s.From); why != "" {
				why = strings.Replace(why, "file() reads only files", "copy_in copies only files", 1)
				l.errorf(b.From.Range(), "Copy source outside the profile directory", "%s. A guest is untrusted: whatever is copied in may leave with it.", why)
				return nil
			}
		} else {
			if s.To == "" {
				s.To = guestBase(s.From)
			}
			clean := filepath.Clean(filepath.FromSlash(s.To))
			if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) || clean == "." {
				l.errorf(b.To.Range(), "Destination outside the results directory", "to of a copy_out step is a path relative to the VM's results directory (--results DIR/<test>/<vm>/), without \"..\": for example to = \"logs\".")
				return nil
			}
			s.To = clean
		}
		if s.Name == "" {
			s.Name = b.Type + " " + s.From
		}
	case StepRun:
		notFor(b.From, "from")
		notFor(b.To, "to")
		if !l.required(b.Command, b.DefRange, "run step", "command", `command = ["cmd", "/c", "run-tests.bat"]`) {
			return nil
		}
		s.Command = l.stringList(b.Command, ctx, scopeVM, "command")
		if len(s.Command) == 0 {
			l.errorf(b.Command.Range(), "Empty command", "command is the program and its arguments: command = [\"cmd\", \"/c\", \"run-tests.bat\"].")
			return nil
		}
		if present(b.Env) {
			if v, ok := l.value(b.Env, ctx, scopeVM); ok && !v.IsNull() {
				m, err := convert.Convert(v, cty.Map(cty.String))
				if err != nil {
					l.errorf(b.Env.Range(), "Map of strings expected", "env is a map of environment variables: env = { LOGLEVEL = \"debug\" }.")
				} else {
					s.Env = map[string]string{}
					for k, val := range m.AsValueMap() {
						s.Env[k] = val.AsString()
					}
				}
			}
		}
		s.Cwd = str(b.Cwd, "cwd")
		if t := str(b.Timeout, "timeout"); t != "" {
			if _, err := ParseDuration(t); err != nil {
				l.errorf(b.Timeout.Range(), "Invalid duration", "timeout is a duration such as \"10m\" or \"2h\": %s.", err)
			} else {
				s.Timeout = t
			}
		}
		if n, ok := l.integer(b.ExpectExit, ctx, scopeVM, "expect_exit", "expect_exit = 0"); ok {
			s.ExpectExit = n
		}
		if s.Name == "" {
			s.Name = "run " + strings.Join(s.Command, " ")
		}
	default:
		l.errorf(b.TypeRange, "Unknown step type", "A step is \"copy_in\", \"run\" or \"copy_out\", not %q.%s", b.Type, suggest(b.Type, []string{StepCopyIn, StepRun, StepCopyOut}))
		return nil
	}
	return s
}

// guestBase is the last element of a guest path (/ or \ separated).
func guestBase(p string) string {
	p = strings.TrimRight(p, `/\`)
	if i := strings.LastIndexAny(p, `/\:`); i >= 0 {
		return p[i+1:]
	}
	return p
}
