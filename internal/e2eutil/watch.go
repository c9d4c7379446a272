package e2eutil

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// SecretWatch collects every text a test sees (command output, libvirt
// XML, logs) so that it can be checked for secrets in one place.
type SecretWatch struct {
	mu    sync.Mutex
	texts map[string]string
}

// NewSecretWatch returns an empty SecretWatch.
func NewSecretWatch() *SecretWatch { return &SecretWatch{texts: map[string]string{}} }

// Add records text under name (numbered "name #2"... when name repeats).
func (w *SecretWatch) Add(name, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := name
	for i := 2; ; i++ {
		if _, ok := w.texts[key]; !ok {
			break
		}
		key = fmt.Sprintf("%s #%d", name, i)
	}
	w.texts[key] = text
}

// Check fails the test if any collected text holds one of the secrets.
func (w *SecretWatch) Check(t testing.TB, secrets ...string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range secrets {
		NoSecret(t, s, w.texts)
	}
}

// RunWatched runs legacyvm with extra environment, records both outputs
// in w and fails the test unless the exit code is want.
func (h *Host) RunWatched(t testing.TB, w *SecretWatch, env []string, want int, args ...string) Result {
	t.Helper()
	r := h.RunEnv(t, env, args...)
	name := "legacyvm " + strings.Join(args, " ")
	w.Add(name+" (stdout)", r.Stdout)
	w.Add(name+" (stderr)", r.Stderr)
	if r.Code != want {
		t.Fatalf("want exit %d\n%s", want, r)
	}
	return r
}

// MustVirsh runs virsh against the harness's libvirtd (one minute at
// most) and returns its output; a failure fails the test.
func (h *Host) MustVirsh(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := h.Env.Virsh(ctx, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(out)
}

// InOrder checks that the needles occur in s in this order.
func InOrder(t testing.TB, what, s string, needles ...string) {
	t.Helper()
	at := 0
	for _, n := range needles {
		i := strings.Index(s[at:], n)
		if i < 0 {
			t.Errorf("%s: %q missing (or out of order):\n%s", what, n, s)
			return
		}
		at += i + len(n)
	}
}

// SerialRecorder keeps everything a domain's serial log held while it ran:
// the log starts over whenever QEMU starts (append='off'), so the lines of
// a setup run that powered the guest off are gone once legacyvm starts the
// VM again. It reads the file every 20 ms; legacyvm polls the domain state
// every 500 ms, so the log of a guest that powered off is seen complete
// before QEMU starts again.
type SerialRecorder struct {
	path string
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	history []string // completed runs
	cur     string
}

// RecordSerial starts recording the serial log file at path.
func RecordSerial(path string) *SerialRecorder {
	r := &SerialRecorder{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			r.poll()
			select {
			case <-r.stop:
				r.poll()
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *SerialRecorder) poll() {
	b, err := os.ReadFile(r.path)
	if err != nil {
		return
	}
	s := string(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !strings.HasPrefix(s, r.cur) {
		r.history = append(r.history, r.cur)
	}
	r.cur = s
}

// Runs stops recording and returns the content of every run seen, oldest
// first (the last one is the current log).
func (r *SerialRecorder) Runs() []string {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(append([]string(nil), r.history...), r.cur)
}
