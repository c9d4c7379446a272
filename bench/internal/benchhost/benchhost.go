// Package benchhost holds what every benchmark under bench/ reports about
// the machine it ran on, and the small file helpers they share.
package benchhost

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

// CPUModel is the CPU's model name from /proc/cpuinfo.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
		return strings.TrimSpace(string(m[1]))
	}
	return "unknown CPU"
}

// Versions shortens `virsh version` output to "libvirt X, QEMU Y".
func Versions(v string) string {
	lib := regexp.MustCompile(`Using library: (libvirt [0-9.]+)`).FindStringSubmatch(v)
	hv := regexp.MustCompile(`Running hypervisor: (QEMU [0-9.]+)`).FindStringSubmatch(v)
	if lib == nil || hv == nil {
		return strings.Join(strings.Fields(v), " ")
	}
	return lib[1] + ", " + hv[1]
}

// LoadAvg is the one-minute load average.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// Lab is a private libvirtd (in namespaces of its own) with the stand-in
// guest's golden image copied into a started directory pool "bench".
type Lab struct {
	Env    *testenv.Env
	Guest  *testenv.GuestImages
	Pool   string // the pool's directory
	Golden string // the golden image in it
}

// StartLab starts the private libvirtd, builds (or finds) the stand-in
// guest and prepares the pool. Stop the lab with Stop, also on error paths
// after a successful start.
func StartLab(ctx context.Context, logf func(string, ...any)) (*Lab, error) {
	logf("starting a private libvirtd")
	env, err := testenv.Start(context.WithoutCancel(ctx), testenv.Options{Logf: logf})
	if err != nil {
		return nil, err
	}
	l := &Lab{Env: env}
	if err := l.prepare(ctx, logf); err != nil {
		_ = l.Stop()
		return nil, err
	}
	return l, nil
}

func (l *Lab) prepare(ctx context.Context, logf func(string, ...any)) error {
	g, err := testenv.BuildGuest(ctx, testenv.GuestOptions{Logf: logf})
	if err != nil {
		return err
	}
	l.Guest = g
	if l.Pool, err = l.Env.NewPoolDir("bench"); err != nil {
		return err
	}
	l.Golden = filepath.Join(l.Pool, "golden.qcow2")
	if err := testenv.CopyFile(g.Disk, l.Golden, 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{{"pool-define-as", "bench", "dir", "--target", l.Pool}, {"pool-start", "bench"}} {
		if _, err := l.Env.Virsh(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// Stop tears the private libvirtd down (within two minutes).
func (l *Lab) Stop() error {
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return l.Env.Stop(sctx)
}
