package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TLSOptions make an instance's libvirtd listen for qemu+tls:// clients
// (libvirtd --listen, listen_tls = 1, port 16514) inside its network
// namespace, with certificates the harness generates: a test CA shared by
// every instance of the process, a server certificate for Addr, and a
// client certificate. Nothing is read from or written to /etc/pki.
type TLSOptions struct {
	// Addr is the address clients use (the server certificate names it);
	// it must be given to the instance's namespace with Link.
	Addr netip.Addr
}

// testCA is the process-wide test certificate authority and the client
// certificate it signed.
var testCA struct {
	once                 sync.Once
	err                  error
	cert                 *x509.Certificate
	key                  *rsa.PrivateKey
	certPEM              []byte
	clientPEM, clientKey []byte
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func loadTestCA() error {
	testCA.once.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			testCA.err = err
			return
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: "legacyvm testenv CA", Organization: []string{"legacyvm tests"}},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(48 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			testCA.err = err
			return
		}
		cert, _ := x509.ParseCertificate(der)
		testCA.cert, testCA.key, testCA.certPEM = cert, key, pemBlock("CERTIFICATE", der)
		testCA.clientPEM, testCA.clientKey, testCA.err = issue(pkix.Name{CommonName: "legacyvm-test-client", Organization: []string{"legacyvm tests"}}, nil, x509.ExtKeyUsageClientAuth)
	})
	return testCA.err
}

// issue signs a leaf certificate with the test CA.
func issue(subject pkix.Name, ips []netip.Addr, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, testCA.cert, &key.PublicKey, testCA.key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)), nil
}

// prepareTLS writes the server's and a client's certificates under
// Dir/pki and returns the libvirtd.conf lines that use them.
func (e *Env) prepareTLS(o *TLSOptions) (string, error) {
	if err := loadTestCA(); err != nil {
		return "", fmt.Errorf("test CA: %w", err)
	}
	if !o.Addr.IsValid() {
		return "", errors.New("TLS needs an address for the server certificate")
	}
	srvCert, srvKey, err := issue(pkix.Name{CommonName: o.Addr.String(), Organization: []string{"legacyvm tests"}}, []netip.Addr{o.Addr}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return "", fmt.Errorf("server certificate: %w", err)
	}
	server := filepath.Join(e.Dir, "pki", "server")
	client := filepath.Join(e.Dir, "pki", "client")
	for _, d := range []string{server, client} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", err
		}
	}
	files := map[string][]byte{
		filepath.Join(server, "cacert.pem"):     testCA.certPEM,
		filepath.Join(server, "servercert.pem"): srvCert,
		filepath.Join(server, "serverkey.pem"):  srvKey,
		// The layout libvirt's client expects in a ?pkipath= directory.
		filepath.Join(client, "cacert.pem"):     testCA.certPEM,
		filepath.Join(client, "clientcert.pem"): testCA.clientPEM,
		filepath.Join(client, "clientkey.pem"):  testCA.clientKey,
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return "", err
		}
	}
	e.PKIDir = client
	e.TLSAddr = o.Addr
	e.listen = true
	return fmt.Sprintf("listen_tls = 1\nauth_tls = \"none\"\nca_file = %q\ncert_file = %q\nkey_file = %q\n",
		filepath.Join(server, "cacert.pem"), filepath.Join(server, "servercert.pem"), filepath.Join(server, "serverkey.pem")), nil
}

// TLSURI is the qemu+tls:// URI that reaches this instance across a Link,
// with the client certificates the harness made (pkipath). It is only
// usable from a network namespace linked to this one (RunIn).
func (e *Env) TLSURI() string {
	if !e.TLSAddr.IsValid() {
		panic("testenv: TLSURI of an instance started without TLS")
	}
	return fmt.Sprintf("qemu+tls://%s/system?pkipath=%s", e.TLSAddr, e.PKIDir)
}

// Link joins the network namespaces of two instances with a veth pair
// (created inside a's namespace, its peer moved into b's: nothing in the
// root namespace) and gives each end an address of one /30 (or any
// prefix): aAddr in a, bAddr in b.
func Link(ctx context.Context, a, b *Env, aAddr, bAddr netip.Prefix) error {
	steps := [][]string{
		{"netns", "exec", a.NetNS, "ip", "link", "add", "lvt-peer", "type", "veth", "peer", "name", "lvt-peer", "netns", b.NetNS},
		{"netns", "exec", a.NetNS, "ip", "addr", "add", aAddr.String(), "dev", "lvt-peer"},
		{"netns", "exec", b.NetNS, "ip", "addr", "add", bAddr.String(), "dev", "lvt-peer"},
		{"netns", "exec", a.NetNS, "ip", "link", "set", "lvt-peer", "up"},
		{"netns", "exec", b.NetNS, "ip", "link", "set", "lvt-peer", "up"},
	}
	for _, s := range steps {
		if out, err := exec.CommandContext(ctx, "ip", s...).CombinedOutput(); err != nil {
			return fmt.Errorf("link %s and %s: ip %v: %w: %s", a.NetNS, b.NetNS, s, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// StartInstance starts an instance of its own for one test (not the
// shared one Libvirt returns) and stops it when the test ends. Use it for
// tests that need several libvirt hosts. If libvirt cannot be started, the
// test fails when CI=true and is skipped otherwise.
func StartInstance(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = func(f string, a ...any) { t.Logf(f, a...) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	start := time.Now()
	e, err := Start(ctx, opts)
	if err != nil {
		Unavailable(t, "libvirt", err)
		return nil
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("testenv: stop %s: %v", e.NetNS, err)
		}
	})
	t.Logf("testenv: %s started in %.2fs (URI %s, accel %s)", e.NetNS, time.Since(start).Seconds(), e.URI, e.Accel)
	return e
}

// Command returns a command that runs inside the instance's network
// namespace (as a client there: it reaches linked instances' addresses).
func (e *Env) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", e.NetNS, name}, args...)...)
}
