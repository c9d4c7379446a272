package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var updateScripts = flag.Bool("update", false, "rewrite cmp golden files in testdata/script from the actual output")

func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{
		"legacyvm":       func() int { return run(os.Args[1:], systemStreams()) },
		"legacyvm-fsize": runWithFileSizeLimit,
	}))
}

// runWithFileSizeLimit is legacyvm under a file size limit (RLIMIT_FSIZE,
// first argument in bytes), which makes writes fail half way as a full
// disk does: legacyvm-fsize 4096 fmt x.hcl.
func runWithFileSizeLimit() int {
	n, err := strconv.ParseUint(os.Args[1], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "legacyvm-fsize: first argument: the limit in bytes")
		return 2
	}
	signal.Ignore(syscall.SIGXFSZ) // EFBIG instead of being killed
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintln(os.Stderr, "legacyvm-fsize:", err)
		return 2
	}
	return run(os.Args[2:], systemStreams())
}

// TestScripts runs the CLI as a user does: testdata/script/*.txtar, each
// with its own work directory that holds a copy of examples/.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *updateScripts,
		Setup: func(env *testscript.Env) error {
			env.Setenv("LIBVIRT_DEFAULT_URI", "")
			return os.CopyFS(filepath.Join(env.WorkDir, "examples"), os.DirFS(examples))
		},
	})
}
