package testenv_test

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

// recorder stands in for a testing.TB and records how a helper ended it.
type recorder struct {
	testing.TB
	how, msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(f string, a ...any) {
	r.how, r.msg = "fatal", fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recorder) Skipf(f string, a ...any) {
	r.how, r.msg = "skip", fmt.Sprintf(f, a...)
	runtime.Goexit()
}

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		ci, want string
	}{
		{"true", "fatal"},
		{"1", "fatal"},
		{"", "skip"},
		{"false", "skip"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				testenv.Unavailable(r, "libvirt", errors.New("no libvirtd here"))
			}()
			<-done
			if r.how != tc.want {
				t.Errorf("Unavailable with CI=%q ended the test with %q, want %q", tc.ci, r.how, tc.want)
			}
			if want := "libvirt unavailable"; len(r.msg) < len(want) || r.msg[:len(want)] != want {
				t.Errorf("message %q does not name what is missing", r.msg)
			}
		})
	}
}
