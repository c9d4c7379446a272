package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// serve warns loudly when it would listen beyond loopback without TLS, and
// not on loopback; half a TLS configuration is refused. (The connection
// fails on purpose: nothing listens.)
func TestServeWarnsWithoutTLSBeyondLoopback(t *testing.T) {
	noHost := errors.New("no host in this test")
	connect := func(ctx context.Context, uri string) (virt.Hypervisor, error) { return nil, noHost }
	for _, c := range []struct {
		listen string
		warn   bool
	}{{"0.0.0.0:8470", true}, {"192.0.2.7:8470", true}, {"[::]:8470", true}, {"127.0.0.1:8470", false}, {"[::1]:8470", false}, {"localhost:8470", false}} {
		var errb bytes.Buffer
		o := &ServeOptions{IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &errb}, Connect: connect, URI: "test:///x", Addr: c.listen, WebDir: t.TempDir()}
		if err := serveRun(context.Background(), o); !errors.Is(err, noHost) {
			t.Fatalf("%s: %v", c.listen, err)
		}
		if got := strings.Contains(errb.String(), "without TLS on a non-loopback address"); got != c.warn {
			t.Errorf("%s: warning %v, want %v:\n%s", c.listen, got, c.warn, errb.String())
		}
	}
	o := &ServeOptions{IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, Connect: connect, Addr: "0.0.0.0:8443", TLSCert: "web.crt", WebDir: t.TempDir()}
	if err := serveRun(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("a certificate without key: %v", err)
	}
}

// serve loads the profiles it is given (and says which it serves); one
// profile given twice is refused, a broken one stops serve with its
// diagnostics, before anything listens.
func TestServeProfiles(t *testing.T) {
	w := newFakeWorld(t)
	r := w.run(cliOpts{timeout: 300 * time.Millisecond}, "serve", "--web-dir", "web", "examples/lab", "examples/quickstart")
	if r.code != 0 || !strings.Contains(r.err, "profiles=lab,quickstart") {
		t.Errorf("serve two profiles: exit %d\n%s", r.code, r.err)
	}
	r = w.run(cliOpts{}, "serve", "--web-dir", "web", "examples/lab", "./examples/lab/")
	if r.code == 0 || !strings.Contains(r.err, `are both profile "lab"`) {
		t.Errorf("one profile twice: exit %d\n%s", r.code, r.err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "examples/lab/broken.hcl"), []byte("vm \"x\" {\n  nope = 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = w.run(cliOpts{}, "serve", "--web-dir", "web", "examples/lab")
	if r.code == 0 || !strings.Contains(r.err, "broken.hcl line 2") {
		t.Errorf("broken profile: exit %d\n%s", r.code, r.err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.listened) != 1 {
		t.Errorf("listened %v; only the first serve should have", w.listened)
	}
}
