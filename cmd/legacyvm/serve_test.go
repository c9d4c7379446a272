package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

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
		o := &ServeOptions{IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &errb}, Connect: connect, URI: "test:///x", Listen: c.listen, WebDir: t.TempDir()}
		if err := serveRun(context.Background(), o); !errors.Is(err, noHost) {
			t.Fatalf("%s: %v", c.listen, err)
		}
		if got := strings.Contains(errb.String(), "without TLS on a non-loopback address"); got != c.warn {
			t.Errorf("%s: warning %v, want %v:\n%s", c.listen, got, c.warn, errb.String())
		}
	}
	o := &ServeOptions{IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, Connect: connect, Listen: "0.0.0.0:8443", TLSCert: "web.crt", WebDir: t.TempDir()}
	if err := serveRun(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("a certificate without key: %v", err)
	}
}
