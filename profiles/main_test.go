package profiles

import (
	"flag"
	"os"
	"testing"
)

// TestMain shortens the fuzzing engine's minimization of new interesting
// inputs from 60 s to 1 s unless -fuzzminimizetime is given: the seeds are
// whole profiles of a few kilobytes, the engine minimizes every input that
// finds new coverage, and while it does no input is fuzzed, so with the
// default `go test -fuzz FuzzLoad` spent most of its time at 0 execs/s.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.fuzzminimizetime" {
			set = true
		}
	})
	if !set {
		if f := flag.Lookup("test.fuzzminimizetime"); f != nil {
			if err := f.Value.Set("1s"); err != nil {
				panic(err)
			}
		}
	}
	os.Exit(m.Run())
}
