package multihost

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/testenv"
	"github.com/legacyvm/legacyvm/internal/virt"
	lvlibvirt "github.com/legacyvm/legacyvm/internal/virt/libvirt"
)

// pair is two linked libvirt hosts: A (unix socket) and B (TLS), a pool
// "mh" on each, the stand-in golden image on A's side, and the state
// directories of one legacyvm user.
type pair struct {
	A, B        *testenv.Env
	HVA, HVB    virt.Hypervisor // setup and checks, over the unix sockets
	Golden      string
	PoolA       string
	PoolB       string
	LogDir      string
	LockDir     string
	StateDir    string
	Accel       string
	fingerprint string
}

const (
	addrA = "10.251.0.1"
	addrB = "10.251.0.2"
)

func newPair(t *testing.T) *pair {
	t.Helper()
	g := testenv.Guest(t)
	a := testenv.StartInstance(t, testenv.Options{})
	b := testenv.StartInstance(t, testenv.Options{TLS: &testenv.TLSOptions{Addr: netip.MustParseAddr(addrB)}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testenv.Link(ctx, a, b, netip.MustParsePrefix(addrA+"/30"), netip.MustParsePrefix(addrB+"/30")); err != nil {
		t.Fatal(err)
	}
	p := &pair{A: a, B: b, Accel: a.Accel}
	p.PoolA, p.PoolB = a.PoolDir(t), b.PoolDir(t)
	p.Golden = g.GoldenCopy(t, a.PoolDir(t))
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	p.LogDir = filepath.Join(base, "logs")
	p.LockDir = filepath.Join(base, "locks")
	p.StateDir = filepath.Join(base, "state")
	for _, d := range []string{p.LogDir, p.StateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Lock directories must be the caller's own, mode 0700.
	if err := os.Mkdir(p.LockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p.fingerprint = filepath.Join(p.StateDir, "fingerprint.key")
	for _, x := range []struct {
		env  *testenv.Env
		dir  string
		dest *virt.Hypervisor
	}{{a, p.PoolA, &p.HVA}, {b, p.PoolB, &p.HVB}} {
		hv, err := lvlibvirt.Connect(ctx, x.env.URI)
		if err != nil {
			t.Fatalf("connect %s: %v", x.env.URI, err)
		}
		t.Cleanup(func() { _ = hv.Close() })
		if _, err := hv.EnsurePool(ctx, "mh", x.dir); err != nil {
			t.Fatalf("pool on %s: %v", x.env.NetNS, err)
		}
		*x.dest = hv
	}
	return p
}

// hostBlocks declares A and B with labels for placement.
func (p *pair) hostBlocks() string {
	accel := "tcg"
	if p.Accel == "kvm" {
		accel = "auto"
	}
	return fmt.Sprintf(`
host "a" {
  uri          = %q
  accelerator  = %q
  storage_pool = "mh"
  labels       = { site = "lab" }
}

host "b" {
  uri          = %q
  accelerator  = %q
  storage_pool = "mh"
  max_vms      = 4
  labels       = { site = "lab" }
}
`, p.A.URI, accel, p.B.TLSURI(), accel)
}

func (p *pair) environ(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + p.StateDir,
		"LEGACYVM_SERIAL_LOG_DIR=" + p.LogDir,
		"LEGACYVM_LOCK_DIR=" + p.LockDir,
		"LEGACYVM_FINGERPRINT_KEY=" + p.fingerprint,
	}
	return append(env, extra...)
}

// command runs the legacyvm binary inside A's network namespace.
func (p *pair) command(t testing.TB, extra []string, args ...string) *exec.Cmd {
	cmd := p.A.Command(e2eutil.Binary(t), args...)
	cmd.Env = p.environ(extra...)
	return cmd
}

func (p *pair) run(t testing.TB, extra []string, args ...string) e2eutil.Result {
	t.Helper()
	cmd := p.command(t, extra, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := e2eutil.Result{Args: args, Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run legacyvm %v: %v", args, err)
	}
	return r
}

func (p *pair) mustRun(t testing.TB, extra []string, args []string, want int) e2eutil.Result {
	t.Helper()
	r := p.run(t, extra, args...)
	if r.Code != want {
		t.Fatalf("want exit %d\n%s", want, r)
	}
	return r
}

// domainsOn lists the names of the domains of profile on hv.
func domainsOn(t testing.TB, hv virt.Hypervisor, profile string) []string {
	t.Helper()
	doms, err := hv.ListDomains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range doms {
		if d.Metadata != nil && d.Metadata.Profile == profile {
			out = append(out, d.Name)
		}
	}
	return out
}

// reconnectB opens a new setup connection to B after its daemon was
// stopped and started again.
func (p *pair) reconnectB(t testing.TB) {
	t.Helper()
	hv, err := lvlibvirt.Connect(context.Background(), p.B.URI)
	if err != nil {
		t.Fatalf("connect %s: %v", p.B.URI, err)
	}
	t.Cleanup(func() { _ = hv.Close() })
	p.HVB = hv
}

func joined(s []string) string { return strings.Join(s, ",") }
