package profiles

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// LoadOptions are the inputs to Load besides the profile itself.
type LoadOptions struct {
	// Vars are "name=value" assignments from -var, applied last.
	Vars []string
	// VarFiles are HCL files of name = value assignments from -var-file,
	// applied in order after LEGACYVM_VAR_* and before Vars.
	VarFiles []string
	// Getenv looks up LEGACYVM_VAR_<name> for each declared variable and
	// serves env() outside secret attributes. Nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// Name overrides the profile name (default: the directory's base name,
	// or the file name without extension).
	Name string
}

// EnvVarPrefix is prepended to a variable's name to find its value in the
// environment.
const EnvVarPrefix = "LEGACYVM_VAR_"

// Load reads a profile: a directory whose *.hcl files (sorted by name,
// hidden files ignored, not recursive) are evaluated together, or a single
// file. Variables take their value from, in increasing precedence, their
// default, LEGACYVM_VAR_<name>, VarFiles and Vars. Relative paths in the
// profile (images, ISOs, file()) resolve against the profile directory.
//
// Load never reads a secret: product_key and admin_password written as
// env(), file() or command() become license.Source values.
//
// The returned Profile is never nil and its Name, Path, Dir and Sources
// are always set (Sources so callers can print snippets for the
// diagnostics). When the diagnostics contain errors the rest of the model
// may be incomplete and must not be used. Diagnostics are sorted by file
// and position; those without a range (for example a bad -var) come first.
func Load(path string, opts LoadOptions) (*Profile, hcl.Diagnostics) {
	p := &Profile{Path: path, Sources: map[string]*hcl.File{}}
	// A name even when loading fails, so messages never show an empty one.
	p.Name = strings.TrimSuffix(filepath.Base(filepath.Clean(path)), ".hcl")
	var files []sourceFile
	st, err := os.Stat(path)
	if err != nil {
		return p, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Profile not found",
			Detail:   fmt.Sprintf("Cannot read the profile %s: %v. Give the path of a directory of *.hcl files or of one .hcl file (for example examples/lab).", path, unwrapPathErr(err)),
		}}
	}
	dir, stem := path, ""
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return p, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read profile directory", Detail: fmt.Sprintf("Cannot list %s: %v.", path, unwrapPathErr(err))}}
		}
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || strings.HasPrefix(n, ".") || filepath.Ext(n) != ".hcl" {
				continue
			}
			files = append(files, sourceFile{name: filepath.Join(path, n)})
		}
		if len(files) == 0 {
			return p, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No profile files", Detail: fmt.Sprintf("The directory %s contains no *.hcl files. A profile is a directory of *.hcl files or a single .hcl file.", path)}}
		}
	} else {
		dir = filepath.Dir(path)
		stem = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		files = append(files, sourceFile{name: path})
	}
	var diags hcl.Diagnostics
	for i := range files {
		b, err := readBounded(files[i].name, MaxProfileFileSize)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read profile file", Detail: fmt.Sprintf("Cannot read %s: %v.", files[i].name, unwrapPathErr(err))})
			continue
		}
		files[i].src = b
	}
	if diags.HasErrors() {
		return p, diags
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return p, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot resolve profile directory", Detail: err.Error()}}
	}
	p.Dir = absDir
	if stem == "" {
		stem = filepath.Base(absDir)
	}
	return loadSources(p, stem, files, opts)
}

// sourceFile is one profile file: its name as shown in diagnostics and
// its content.
type sourceFile struct {
	name string
	src  []byte
}

// loadSources is Load after the files have been read. p.Dir must be set.
func loadSources(p *Profile, defaultName string, files []sourceFile, opts LoadOptions) (*Profile, hcl.Diagnostics) {
	l := &loader{
		p:      p,
		opts:   opts,
		getenv: opts.Getenv,
		parser: hclparse.NewParser(),
		vars:   map[string]*Variable{},
		decls:  map[string]hcl.Range{},
		budget: newBudget(),
	}
	if l.getenv == nil {
		l.getenv = os.LookupEnv
	}
	p.Name = defaultName
	if opts.Name != "" {
		p.Name = opts.Name
	}
	l.run(files)
	if err := CheckName(p.Name, MaxNameLen); err != nil && p.NameRange == nil {
		detail := fmt.Sprintf("The profile name comes from the directory or file name and becomes part of libvirt object names: %s.", err)
		if s := suggestName(p.Name); s != "" {
			detail += fmt.Sprintf(" Rename it, for example to %q.", s)
		} else {
			detail += " Rename it to lower-case letters, digits and hyphens."
		}
		detail += ` Or declare the name in the profile: profile { name = "acct" }.`
		l.add(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid profile name", Detail: detail}})
	}
	l.finishSources()
	diags := l.sortedDiags()
	l.redact(diags)
	return p, diags
}

// loader holds the state of one Load.
type loader struct {
	p      *Profile
	opts   LoadOptions
	getenv func(string) (string, bool)
	parser *hclparse.Parser
	diags  hcl.Diagnostics
	// budget bounds the evaluation work of this load; fns are the
	// profile functions, built once.
	budget *budget
	fns    map[string]function.Function

	vars       map[string]*Variable
	varOrigin  map[string]hcl.Expression // expression the final value came from
	varOrder   []string
	locals     map[string]cty.Value
	localExprs map[string]hcl.Expression

	// decls maps "kind.name" to the first declaration's range.
	decls    map[string]hcl.Range
	hosts    map[string]*Host
	licenses map[string]*License
	networks map[string]*Network
	policies map[string]*SnapshotPolicy
	images   map[string]*Image
	vms      []*vmDecl
	netDecls []netDecl

	// fileRoots are the directories file() may read (the profile
	// directory first); reads are the values file() and env() returned.
	fileRoots []string
	reads     []readValue

	// masks are source ranges whose bytes are hidden in Profile.Sources
	// because they hold (or may hold) a secret.
	masks []mask

	implicit *Host
	baseCtx  *hcl.EvalContext
	vmCtx    *hcl.EvalContext
}

// vmDecl keeps a decoded VM with its block for later cross-checks.
type vmDecl struct {
	vm                  *VM
	block               *vmBlock
	licRanges           []hcl.Range
	compNameSrc         hcl.Expression // windows.computer_name, or nil
	installEditionRange hcl.Range
	activateRange       hcl.Range
	licensesBroken      bool
}

type mask struct {
	rng      hcl.Range
	keepLast int // alphanumeric characters left visible at the end
}

func (l *loader) add(diags hcl.Diagnostics) {
	for _, d := range diags {
		// Never keep an evaluation context: the text writer would print
		// variable values next to the snippet, and a value may be secret.
		d.Expression, d.EvalContext = nil, nil
		l.diags = append(l.diags, d)
	}
}

func (l *loader) errorf(rng hcl.Range, summary, format string, a ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: rng.Ptr()})
}

func (l *loader) warnf(rng hcl.Range, summary, format string, a ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: rng.Ptr()})
}

// at renders a range start as "file:line" for details.
func at(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

// declare records kind.name and reports a duplicate; it returns false for
// a duplicate.
func (l *loader) declare(kind, name string, nameRange, defRange hcl.Range) bool {
	key := kind + "." + name
	if first, ok := l.decls[key]; ok {
		l.errorf(nameRange, fmt.Sprintf("Duplicate %s block", kind), "A %s named %q was already declared at %s. Names must be unique within a profile (across all its files): rename or remove one of them.", kind, name, at(first))
		return false
	}
	l.decls[key] = defRange
	return true
}

// checkName reports an invalid block name.
func (l *loader) checkName(kind, name string, rng hcl.Range, max int, why string) bool {
	if err := CheckName(name, max); err != nil {
		detail := fmt.Sprintf("%s names become libvirt object names%s: %s.", kind, why, err)
		if s := suggestName(name); s != "" && len(s) <= max {
			detail += fmt.Sprintf(" Use lower-case letters, digits and single hyphens, for example %q.", s)
		} else {
			detail += " Use lower-case letters, digits and single hyphens, starting with a letter."
		}
		l.errorf(rng, "Invalid name", "%s", strings.ToUpper(detail[:1])+detail[1:])
		return false
	}
	return true
}

func (l *loader) run(files []sourceFile) {
	var all fileSchema
	parseFailed := false
	for _, f := range files {
		hf, diags := l.parse(f.src, f.name)
		l.add(diags)
		if hf != nil {
			l.p.Sources[f.name] = hf
		}
		if hf == nil || diags.HasErrors() {
			parseFailed = true
			continue
		}
		var fs fileSchema
		l.add(gohcl.DecodeBody(hf.Body, nil, &fs))
		all.Profiles = append(all.Profiles, fs.Profiles...)
		if present(fs.FingerprintKey) {
			if all.FingerprintKey != nil {
				l.errorf(fs.FingerprintKey.Range(), "Duplicate fingerprint_key", "fingerprint_key was already set at %s. A profile has one fingerprint secret: remove one of them.", at(all.FingerprintKey.Range()))
			} else {
				all.FingerprintKey = fs.FingerprintKey
			}
		}
		all.Variables = append(all.Variables, fs.Variables...)
		all.Locals = append(all.Locals, fs.Locals...)
		all.Hosts = append(all.Hosts, fs.Hosts...)
		all.Licenses = append(all.Licenses, fs.Licenses...)
		all.Networks = append(all.Networks, fs.Networks...)
		all.SnapshotPolicies = append(all.SnapshotPolicies, fs.SnapshotPolicies...)
		all.VMs = append(all.VMs, fs.VMs...)
		all.Tests = append(all.Tests, fs.Tests...)
		all.Images = append(all.Images, fs.Images...)
		all.Files = append(all.Files, fs.Files...)
	}
	if parseFailed {
		// Syntax errors first: evaluating the rest would report
		// references to blocks the broken file declares.
		return
	}
	// Names of every block first, so references can be checked (and
	// suggested) regardless of declaration order.
	l.hosts = map[string]*Host{}
	l.licenses = map[string]*License{}
	l.networks = map[string]*Network{}
	l.policies = map[string]*SnapshotPolicy{}
	l.images = map[string]*Image{}

	l.loadFiles(all.Files)
	l.loadVariables(all.Variables)
	l.loadLocals(all.Locals)
	l.baseCtx = &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": l.varObject(), "local": objectOf(l.locals)},
		Functions: l.functions(),
	}
	l.decodeProfileBlocks(all.Profiles)
	if all.FingerprintKey != nil {
		l.p.FingerprintKey = l.secret(all.FingerprintKey, l.baseCtx, scopeBlock, "fingerprint_key", "Fingerprint key", 0)
		l.p.FingerprintKeyRange = all.FingerprintKey.Range()
	}
	for _, b := range all.Hosts {
		l.decodeHost(b)
	}
	for _, b := range all.Licenses {
		l.decodeLicense(b)
	}
	for _, b := range all.Networks {
		l.decodeNetwork(b)
	}
	l.checkSubnetOverlaps()
	l.checkGuardNames()
	for _, b := range all.SnapshotPolicies {
		l.decodeSnapshotPolicy(b)
	}
	for _, b := range all.Images {
		l.decodeImage(b)
	}
	l.buildVMContext()
	for _, b := range all.VMs {
		l.decodeVM(b)
	}
	l.assemble()
	l.checkDoors()
	l.decodeTests(all.Tests)
}

// parse parses one profile or variables file after checking its size and
// nesting (which the parser would answer with a fatal stack overflow), and
// puts its expressions under the load's evaluation budget.
func (l *loader) parse(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	if len(src) > MaxProfileFileSize {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Profile file too large", Detail: fmt.Sprintf("%s is %d bytes; profile and variables files may be at most %d KiB. Split it, or move data out of the profile.", filename, len(src), MaxProfileFileSize>>10)}}
	}
	if p, deep := checkNesting(src); deep {
		return nil, hcl.Diagnostics{nestingDiag(filename, p)}
	}
	hf, diags := l.parser.ParseHCL(src, filename)
	if hf != nil {
		if body, ok := hf.Body.(*hclsyntax.Body); ok {
			l.budget.guard(body)
		}
	}
	return hf, diags
}

// readBounded reads a regular file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d KiB; profile files may be at most that", max>>10)
	}
	return b, nil
}

// buildVMContext adds block references to the base context.
func (l *loader) buildVMContext() {
	refs := map[string]cty.Value{}
	obj := func(ty cty.Type, m map[string]any) cty.Value {
		vals := map[string]cty.Value{}
		for k, v := range m {
			vals[k] = cty.CapsuleVal(ty, v)
		}
		return objectOf(vals)
	}
	hosts, lics, nets, pols, imgs := map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}
	for k, v := range l.images {
		imgs[k] = v
	}
	for k, v := range l.hosts {
		hosts[k] = v
	}
	for k, v := range l.licenses {
		lics[k] = v
	}
	for k, v := range l.networks {
		nets[k] = v
	}
	for k, v := range l.policies {
		pols[k] = v
	}
	refs["host"] = obj(hostRefType, hosts)
	refs["license"] = obj(licenseRefType, lics)
	refs["network"] = obj(networkRefType, nets)
	refs["snapshot_policy"] = obj(policyRefType, pols)
	refs["image"] = obj(imageRefType, imgs)
	l.vmCtx = l.baseCtx.NewChild()
	l.vmCtx.Variables = refs
}

func (l *loader) varNames() []string   { return sortedKeys(l.vars) }
func (l *loader) localNames() []string { return sortedKeys(l.localExprs) }

func (l *loader) blockNames(kind string) []string {
	var names []string
	prefix := kind + "."
	for k := range l.decls {
		if strings.HasPrefix(k, prefix) {
			names = append(names, k[len(prefix):])
		}
	}
	sort.Strings(names)
	return names
}

// sortedDiags orders diagnostics by file and position (rangeless first)
// and drops exact repeats (an expression evaluated once per instance).
func (l *loader) sortedDiags() hcl.Diagnostics {
	type key struct {
		sev          hcl.DiagnosticSeverity
		summary, det string
		rng          hcl.Range
	}
	seen := map[key]bool{}
	var out hcl.Diagnostics
	for _, d := range l.diags {
		k := key{sev: d.Severity, summary: d.Summary, det: d.Detail}
		if d.Subject != nil {
			k.rng = *d.Subject
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Subject, out[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return out
}

// finishSources replaces Sources by copies whose secret literals are
// masked with X (same length, so every range stays valid).
func (l *loader) finishSources() {
	byFile := map[string][]mask{}
	for _, m := range l.masks {
		byFile[m.rng.Filename] = append(byFile[m.rng.Filename], m)
	}
	for name, ms := range byFile {
		f := l.p.Sources[name]
		if f == nil {
			continue
		}
		b := append([]byte(nil), f.Bytes...)
		for _, m := range ms {
			maskBytes(b, m)
		}
		l.p.Sources[name] = &hcl.File{Body: f.Body, Bytes: b, Nav: f.Nav}
	}
}

// maskBytes hides a range's content: every byte except quotes, whitespace
// and dashes becomes 'X', except the last keepLast letters or digits.
func maskBytes(b []byte, m mask) {
	start, end := m.rng.Start.Byte, m.rng.End.Byte
	if start < 0 || end > len(b) || start > end {
		return
	}
	keep := m.keepLast
	for i := end - 1; i >= start; i-- {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if keep > 0 && alnum {
			keep--
			continue
		}
		if c == '"' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '-' {
			continue
		}
		b[i] = 'X'
	}
}
