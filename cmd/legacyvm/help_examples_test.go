package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// exampleLine is one runnable command from a help text or an example
// profile's comments.
type exampleLine struct {
	where string // "legacyvm destroy --help", "examples/lab/main.hcl:12"
	line  string
	env   map[string]string
	args  []string
	stdin string // file to feed on standard input ("" none)
	dir   string // working directory, relative to the examples' parent ("" there)
	// orElse: the example handles a failure ("cmd || alert"): exit 1
	// after a complete report is fine (this host's own settings may
	// warn), a usage error is not.
	orElse bool
}

// parseExampleLine reads "[NAME=VALUE...] legacyvm ARGS [| filter] [< file]"
// with simple shell quoting. A value of the form $(...) becomes a fake
// product key (the examples show where a real one comes from). ok is false
// for lines that are not a legacyvm command (comments, other programs).
func parseExampleLine(s string) (ex exampleLine, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "#") {
		return ex, false
	}
	if i := strings.Index(s, " # "); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	for _, sep := range []string{" || ", " | "} {
		if i := strings.Index(s, sep); i >= 0 {
			ex.orElse = ex.orElse || sep == " || "
			s = strings.TrimSpace(s[:i])
		}
	}
	if rest, ok := strings.CutPrefix(s, "cd "); ok {
		dir, cmd, found := strings.Cut(rest, " && ")
		if !found {
			return ex, false
		}
		ex.dir, s = strings.TrimSpace(dir), strings.TrimSpace(cmd)
	}
	if i := strings.Index(s, " < "); i >= 0 {
		ex.stdin = strings.TrimSpace(s[i+3:])
		s = strings.TrimSpace(s[:i])
	}
	words := shellWords(s)
	ex.env = map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		k, v, _ := strings.Cut(words[0], "=")
		if strings.HasPrefix(v, "$(") {
			v = fakeRetail
		}
		ex.env[k] = v
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "legacyvm" {
		return ex, false
	}
	ex.line, ex.args = s, words[1:]
	return ex, true
}

// shellWords splits on blanks, honouring single and double quotes and
// keeping $(...) together.
func shellWords(s string) []string {
	var (
		words []string
		cur   strings.Builder
		quote rune
		depth int
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
				continue
			}
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '(':
			depth++
			cur.WriteRune(r)
		case r == ')':
			depth--
			cur.WriteRune(r)
		case (r == ' ' || r == '\t') && depth == 0:
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// helpExamples collects the example lines of every command.
func helpExamples(cmd *cobra.Command) []exampleLine {
	var out []exampleLine
	for _, l := range strings.Split(cmd.Example, "\n") {
		if ex, ok := parseExampleLine(l); ok {
			ex.where = cmd.CommandPath() + " --help"
			out = append(out, ex)
		}
	}
	for _, c := range cmd.Commands() {
		out = append(out, helpExamples(c)...)
	}
	return out
}

// profileCommentExamples collects the legacyvm commands shown in the
// comments of examples/*/main.hcl.
func profileCommentExamples(t *testing.T) []exampleLine {
	files, err := filepath.Glob("../../examples/*/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v", err)
	}
	var out []exampleLine
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(b), "\n") {
			// Commands are indented in the comments ("#   legacyvm
			// apply ..."); prose that starts with the word is not one.
			c, isComment := strings.CutPrefix(strings.TrimSpace(l), "#")
			if !isComment || !strings.HasPrefix(c, "  ") {
				continue
			}
			if ex, ok := parseExampleLine(c); ok {
				rel, _ := filepath.Rel("../..", f)
				ex.where = rel + ":" + strconv.Itoa(i+1)
				out = append(out, ex)
			}
		}
	}
	return out
}

// Issue 10: help examples named VMs and commands that do not exist
// (destroy --help: --only lab-2 on a profile whose VMs are acct-1 and
// acct-2; examples/ops-daily: "legacyvm daemon examples/ops-daily").
// Every example of every command's --help, and every legacyvm command in
// the example profiles' comments, runs in-process against a fake host on
// which every example profile has been applied, and must succeed.
func TestHelpExamplesRunAgainstExamples(t *testing.T) {
	root := newRootCmd(newFactory(&IOStreams{In: strings.NewReader(""), Out: &strings.Builder{}, ErrOut: &strings.Builder{}}))
	exs := append(helpExamples(root), profileCommentExamples(t)...)
	if len(exs) < 30 {
		t.Fatalf("only %d examples found", len(exs))
	}
	for _, ex := range exs {
		t.Run(ex.where+": "+ex.line, func(t *testing.T) {
			w := newFakeWorld(t)
			w.applyAll()
			if len(ex.args) > 1 && ex.args[0] == "token" && ex.args[1] == "revoke" {
				// The token the example revokes (token create's example
				// makes it).
				if r := w.run(cliOpts{}, "token", "create", "--role", "viewer", "--name", "bob"); r.code != 0 {
					t.Fatalf("token create: exit %d: %s", r.code, r.err)
				}
			}
			o := cliOpts{env: ex.env, inTTY: true, stdin: "yes\n"}
			if ex.stdin != "" {
				b, err := os.ReadFile(filepath.Join(w.dir, ex.stdin))
				if err != nil {
					t.Fatalf("stdin %s: %v", ex.stdin, err)
				}
				o.stdin = string(b)
			}
			if len(ex.args) > 0 && (ex.args[0] == "daemon" || ex.args[0] == "serve") {
				// The daemon and the web server run until stopped: give
				// them a few ticks.
				o.timeout = 300 * time.Millisecond
			}
			o.dir = ex.dir
			r := w.run(o, ex.args...)
			// serve and the daemon's metrics listened (in memory: no
			// socket) where the example says.
			var want []string
			switch ex.args[0] {
			case "serve":
				want = []string{"127.0.0.1:8470"}
			}
			for i, a := range ex.args[:len(ex.args)-1] {
				if (a == "--listen" && ex.args[0] == "serve") || (a == "--metrics-listen" && ex.args[0] == "daemon") {
					want = []string{ex.args[i+1]}
				}
			}
			w.mu.Lock()
			got := w.listened
			w.mu.Unlock()
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s: listened on %v, want %v; stderr:\n%s", ex.line, got, want, r.err)
			}
			if ex.args[0] == "serve" && !strings.Contains(r.err, "serving the web console") {
				t.Errorf("%s: did not serve; stderr:\n%s", ex.line, r.err)
			}
			if ex.orElse && r.code == 1 && r.out != "" && !strings.Contains(r.err, "Error:") {
				return
			}
			if ex.args[0] == "plan" && r.code == 2 {
				return // plan's exit code for "changes to make"
			}
			if r.code != 0 {
				t.Errorf("%s\n  exit %d\n  stdout:\n%s\n  stderr:\n%s", ex.line, r.code, r.out, r.err)
			}
		})
	}
}
