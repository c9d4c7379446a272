package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/event"
)

// schemaIDPrefix starts the $id of every schema in docs/json.md.
const schemaIDPrefix = "urn:legacyvm:json:"

// jsonDocSchemas maps each command that prints a -o json document to the
// id of its schema in docs/json.md. A command missing here (and not in
// noJSONCommands) fails TestEveryJSONCommandIsCovered.
var jsonDocSchemas = map[string]string{
	"validate":         "validate",
	"plan":             "plan",
	"apply":            "apply",
	"destroy":          "apply",
	"status":           "status",
	"start":            "lifecycle",
	"stop":             "lifecycle",
	"console":          "console",
	"doctor":           "doctor",
	"verify":           "verify",
	"licenses":         "licenses",
	"snapshot create":  "snapshot-create",
	"snapshot list":    "snapshot-list",
	"snapshot revert":  "snapshot-revert",
	"snapshot delete":  "snapshot-delete",
	"snapshot prune":   "snapshot-tick",
	"snapshot run-due": "snapshot-tick",
	"reset":            "reset",
	"exec":             "exec",
	"cp":               "cp",
	"test":             "test",
	"version":          "version",
	"image build":      "image-versions",
	"image list":       "image-versions",
	"image delete":     "image-delete",
	"token list":       "token-list",
}

// streamingCommands stream their progress as event lines on stderr with
// -o json (at least one event in the cases below).
var streamingCommands = []string{"apply", "destroy", "start", "stop", "reset"}

var jsonFenceRE = regexp.MustCompile("(?s)```json\n(.*?)```")

// docSchemas compiles the schemas of docs/json.md: every ```json block
// with a $id.
func docSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	md, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	var ids []string
	for _, m := range jsonFenceRE.FindAllSubmatch(md, -1) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(m[1]))
		if err != nil {
			t.Fatalf("docs/json.md: a json block does not parse: %v\n%s", err, m[1])
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			continue
		}
		id, _ := obj["$id"].(string)
		if !strings.HasPrefix(id, schemaIDPrefix) {
			continue
		}
		if slices.Contains(ids, id) {
			t.Fatalf("docs/json.md: two schemas with $id %s", id)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("docs/json.md: schema %s: %v", id, err)
		}
		ids = append(ids, id)
	}
	out := map[string]*jsonschema.Schema{}
	for _, id := range ids {
		s, err := c.Compile(id)
		if err != nil {
			t.Fatalf("docs/json.md: schema %s does not compile: %v", id, err)
		}
		out[strings.TrimPrefix(id, schemaIDPrefix)] = s
	}
	if len(out) < 10 {
		t.Fatalf("docs/json.md holds only %d schemas", len(out))
	}
	return out
}

// jsonValues splits stdout into its JSON values (a document, and event
// lines before it for a streaming command).
func jsonValues(out string) ([]any, error) {
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var vs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return vs, nil
		}
		if err != nil {
			return vs, err
		}
		vs = append(vs, v)
	}
}

// leafCommands lists the runnable commands of the tree by path ("snapshot
// create"), without cobra's own help and completion.
func leafCommands(c *cobra.Command) []string {
	var out []string
	for _, sub := range c.Commands() {
		if sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		if sub.Runnable() {
			out = append(out, strings.TrimPrefix(sub.CommandPath(), "legacyvm "))
		}
		out = append(out, leafCommands(sub)...)
	}
	return out
}

// jsonCase is one command run with -o json.
type jsonCase struct {
	args  []string
	codes []int // accepted exit codes (default 0)
	o     cliOpts
}

// commandPath is the command a case runs ("snapshot list").
func (c jsonCase) commandPath(root *cobra.Command) string {
	cmd, _, err := root.Find(c.args)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(cmd.CommandPath(), "legacyvm ")
}

// jsonCases run, in order, on a fake host where every example is applied.
// They cover every command of jsonDocSchemas, some twice (several shapes
// of the document: with and without a profile, with changes, failures).
func jsonCases() []jsonCase {
	return []jsonCase{
		{args: []string{"version"}},
		{args: []string{"validate", "examples/lab"}},
		{args: []string{"validate", "broken"}, codes: []int{1}},
		{args: []string{"plan", "examples/lab"}},
		{args: []string{"apply", "--auto-approve", "examples/lab"}},
		{args: []string{"status", "examples/lab"}},
		{args: []string{"status", "--all"}},
		{args: []string{"status", "examples/ops-daily"}},
		{args: []string{"doctor"}, codes: []int{0, 1}},
		{args: []string{"verify", "examples/lab"}, codes: []int{0, 1}},
		{args: []string{"verify", "--all"}, codes: []int{0, 1}},
		{args: []string{"licenses"}},
		{args: []string{"licenses", "examples/lab"}},
		{args: []string{"licenses", "examples/install-media"}},
		{args: []string{"console", "acct-1"}},
		{args: []string{"stop", "--force", "acct-2"}},
		{args: []string{"start", "acct-2"}},
		{args: []string{"start", "acct-1", "no-such-vm"}, codes: []int{1}},
		{args: []string{"snapshot", "create", "acct-1", "json-snap", "--description", "a note"}},
		{args: []string{"snapshot", "create", "demo"}},
		{args: []string{"snapshot", "list"}},
		{args: []string{"snapshot", "list", "--profile", "examples/ops-daily"}},
		{args: []string{"snapshot", "revert", "acct-1", "json-snap"}},
		{args: []string{"snapshot", "delete", "acct-1", "json-snap"}},
		{args: []string{"snapshot", "prune", "--dry-run"}},
		{args: []string{"snapshot", "run-due", "--now", "2030-01-01T03:00:00Z"}},
		{args: []string{"snapshot", "run-due", "--dry-run"}},
		{args: []string{"exec", "acct-1", "--", "cmd", "/c", "ver"}},
		{args: []string{"exec", "acct-1", "--", "cmd", "/c", "exit", "3"}, codes: []int{3}},
		{args: []string{"cp", "./build/app.msi", `acct-1:C:\stage\app.msi`}},
		{args: []string{"test", "examples/lab", "smoke", "--results", "out"}},
		{args: []string{"reset", "--profile", "examples/lab"}},
		{args: []string{"image", "list", "examples/golden-image"}},
		{args: []string{"image", "build", "examples/golden-image", "w7pro"}},
		{args: []string{"image", "delete", "examples/golden-image", "w7pro", "--version", "3"}},
		{args: []string{"destroy", "--auto-approve", "--only", "acct-2", "examples/lab"}},
		{args: []string{"plan", "examples/lab"}, codes: []int{2}},
		{args: []string{"apply", "--auto-approve", "examples/lab"}},
		{args: []string{"destroy", "--auto-approve", "examples/quickstart"}},
		{args: []string{"token", "list"}},
	}
}

// brokenProfile has a mistake at a known place (validate's diagnostics).
const brokenProfile = `vm "x" {
  os     = "win7-x64"
  memory = "lots"
}
`

// Issue 9: every -o json document validates against its schema in
// docs/json.md, carries format_version 1, and holds no secret.
func TestJSONDocumentsMatchTheirSchemas(t *testing.T) {
	schemas := docSchemas(t)
	w := newFakeWorld(t)
	if err := os.MkdirAll(filepath.Join(w.dir, "broken"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "broken", "main.hcl"), []byte(brokenProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	w.applyAll()
	if r := w.run(cliOpts{}, "token", "create", "--role", "viewer", "--name", "bob"); r.code != 0 {
		t.Fatalf("token create: exit %d: %s", r.code, r.err)
	}
	root := newRootCmd(newFactory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}))
	var all strings.Builder
	streamed := map[string]int{}
	for _, c := range jsonCases() {
		path := c.commandPath(root)
		name := strings.Join(c.args, " ")
		id, ok := jsonDocSchemas[path]
		if !ok {
			t.Errorf("%s: command %q has no schema in jsonDocSchemas", name, path)
			continue
		}
		// -o json first: exec's arguments after -- are the guest's.
		r := w.run(c.o, append([]string{"-o", "json"}, c.args...)...)
		all.WriteString(r.out + r.err)
		codes := c.codes
		if codes == nil {
			codes = []int{0}
		}
		if !slices.Contains(codes, r.code) {
			t.Errorf("%s -o json: exit %d, want one of %v\nstdout:\n%s\nstderr:\n%s", name, r.code, codes, r.out, r.err)
			continue
		}
		vs, err := jsonValues(r.out)
		if err != nil {
			t.Errorf("%s -o json: stdout is not JSON: %v\n%s", name, err, r.out)
			continue
		}
		// Progress: event lines on stderr (among text lines: the plan,
		// warnings).
		for _, l := range strings.Split(r.err, "\n") {
			if !strings.HasPrefix(l, "{") {
				continue
			}
			ev, err := jsonschema.UnmarshalJSON(strings.NewReader(l))
			if err != nil {
				t.Errorf("%s -o json: stderr line is not JSON: %v\n%s", name, err, l)
				continue
			}
			streamed[path]++
			if err := schemas["event"].Validate(ev); err != nil {
				t.Errorf("%s -o json: event line %s does not match docs/json.md's event schema: %v", name, l, err)
			}
		}
		docs := 0
		for _, v := range vs {
			obj, isObj := v.(map[string]any)
			if !isObj {
				t.Errorf("%s -o json: a bare %T on stdout, want objects:\n%s", name, v, r.out)
				continue
			}
			if _, isDoc := obj["format_version"]; !isDoc {
				t.Errorf("%s -o json: an object without format_version on stdout:\n%s", name, r.out)
				continue
			}
			docs++
			if obj["format_version"] != json.Number("1") {
				t.Errorf("%s -o json: format_version %v, want 1", name, obj["format_version"])
			}
			if err := schemas[id].Validate(v); err != nil {
				t.Errorf("%s -o json does not match docs/json.md's %s schema:\n%v\nstdout:\n%s", name, id, err, r.out)
			}
		}
		if docs != 1 {
			t.Errorf("%s -o json: %d documents on stdout, want 1:\n%s", name, docs, r.out)
		}
	}
	for _, path := range streamingCommands {
		if streamed[path] == 0 {
			t.Errorf("%s -o json streamed no event line on stderr", path)
		}
	}
	// The schemas are strict: a document with a field missing or one not
	// documented fails.
	for id, doc := range map[string]string{
		"plan":    `{"format_version": 1}`,
		"version": `{"format_version": 1, "version": "dev", "go": "go1", "name": "x"}`,
		"console": `{"format_version": 2, "vm": "a", "vnc": "127.0.0.1:5900"}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if schemas[id].Validate(v) == nil {
			t.Errorf("the %s schema accepts %s", id, doc)
		}
	}
	for _, secret := range []string{fakeMAK, fakeRetail, fakeKey3, fakeKey4, fakeKey5, fakeKey6, "not-a-real-password"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("a secret (%s...) appears in the output", secret[:5])
		}
	}
}

// Issue 9: every command that has -o json is covered by a schema and run
// by TestJSONDocumentsMatchTheirSchemas; the others refuse -o json.
func TestEveryJSONCommandIsCovered(t *testing.T) {
	root := newRootCmd(newFactory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}))
	schemas := docSchemas(t)
	run := map[string]bool{}
	for _, c := range jsonCases() {
		run[c.commandPath(root)] = true
	}
	for _, path := range leafCommands(root) {
		if slices.Contains(noJSONCommands, path) {
			if _, ok := jsonDocSchemas[path]; ok {
				t.Errorf("%s prints no JSON document but has a schema", path)
			}
			continue
		}
		id, ok := jsonDocSchemas[path]
		if !ok {
			t.Errorf("%s: no JSON schema (add it to docs/json.md and jsonDocSchemas, or to noJSONCommands)", path)
			continue
		}
		if schemas[id] == nil {
			t.Errorf("%s: schema %s is not in docs/json.md", path, id)
		}
		if !run[path] {
			t.Errorf("%s: no case in jsonCases runs it", path)
		}
		if !strings.Contains(string(mustRead(t, "../../docs/json.md")), "`legacyvm "+path+"`") {
			t.Errorf("docs/json.md has no section naming `legacyvm %s`", path)
		}
	}
	for path := range jsonDocSchemas {
		if !slices.Contains(leafCommands(root), path) {
			t.Errorf("jsonDocSchemas names %q, which is no command", path)
		}
	}
	// The commands without a document say so.
	w := newFakeWorld(t)
	for _, path := range noJSONCommands {
		args := append(strings.Fields(path), "-o", "json")
		switch path {
		case "gen-man":
			args = append(args, t.TempDir())
		case "token revoke":
			args = append(args, "bob")
		case "token create":
			args = append(args, "--role", "viewer")
		}
		r := w.run(cliOpts{}, args...)
		if r.code != 1 || !strings.Contains(r.err, "-o json does not apply") || r.out != "" {
			t.Errorf("%s -o json: exit %d, stdout %q, stderr %q; want a refusal", path, r.code, r.out, r.err)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventConstants reads internal/event's constants of type typ (Kind, Step,
// Phase, Hint) from its source: the schema's enums must list them all.
func eventConstants(t *testing.T, typ string) []string {
	t.Helper()
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, "../../internal/event/event.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			id, ok := vs.Type.(*ast.Ident)
			if !ok || id.Name != typ {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("event.%s constant is not a literal", typ)
				}
				s, _ := strconv.Unquote(lit.Value)
				if s != "" {
					out = append(out, s)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// Issue 9: the event lines apply -o json streams are documented: the
// schema's enums are internal/event's constants, and events as
// Event.MarshalJSON writes them validate.
func TestEventSchemaMatchesTheEventPackage(t *testing.T) {
	schemas := docSchemas(t)
	md := mustRead(t, "../../docs/json.md")
	var eventSchema struct {
		Properties map[string]struct {
			Enum []string `json:"enum"`
		} `json:"properties"`
	}
	for _, m := range jsonFenceRE.FindAllSubmatch(md, -1) {
		if bytes.Contains(m[1], []byte(`"$id": "`+schemaIDPrefix+`event"`)) {
			if err := json.Unmarshal(m[1], &eventSchema); err != nil {
				t.Fatal(err)
			}
		}
	}
	for field, typ := range map[string]string{"kind": "Kind", "step": "Step", "phase": "Phase", "hint": "Hint"} {
		want := eventConstants(t, typ)
		got := slices.Sorted(slices.Values(eventSchema.Properties[field].Enum))
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("event schema %s: %v, want internal/event's %s constants %v", field, got, typ, want)
		}
	}
	at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	events := []event.Event{
		{Time: at, Kind: event.KindVM, Object: "acct-1", Step: event.StepDefine, Phase: event.Begin},
		{Time: at, Host: "qemu+ssh://root@lab1/system", Kind: event.KindImage, Object: "w7pro", Step: event.StepUpload, Phase: event.Progress,
			Message: "uploading", Current: 1 << 20, Total: 4 << 20, Elapsed: 1500 * time.Millisecond},
		{Time: at, Kind: event.KindVM, Object: "acct-1", Step: event.StepOperation, Phase: event.Failed, Err: fmt.Errorf("define domain %q: boom", "acct-1"),
			Elapsed: time.Second, Hint: event.HintApply},
		{Time: at, Kind: event.KindNetwork, Object: "lvm-lab", Step: event.StepNetwork, Phase: event.Done, Elapsed: time.Millisecond},
		{Time: at, Kind: event.KindVM, Object: "acct-2", Step: event.StepOperation, Phase: event.Note, Message: "restart needed", Hint: event.HintRestart},
	}
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas["event"].Validate(v); err != nil {
			t.Errorf("event %s does not match docs/json.md's event schema: %v", b, err)
		}
	}
	// The schema is strict: an undocumented field fails.
	v, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"time":"2026-12-06T14:00:00Z","kind":"vm","object":"a","step":"define","phase":"begin","vm":"a"}`))
	if schemas["event"].Validate(v) == nil {
		t.Error("the event schema accepts an undocumented field")
	}
}
