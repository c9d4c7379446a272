package libvirt_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/testenv"
	"github.com/legacyvm/legacyvm/internal/virt"
	lv "github.com/legacyvm/legacyvm/internal/virt/libvirt"
	"github.com/legacyvm/legacyvm/internal/virt/virttest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// connect opens the adapter on the test binary's private libvirtd.
func connect(t *testing.T, env *testenv.Env) *lv.Hypervisor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := lv.Connect(ctx, env.URI)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestConformance runs the suite the fake also passes against a real
// libvirtd with the stand-in guest (256 MiB, TCG unless KVM really works).
func TestConformance(t *testing.T) {
	env := testenv.Libvirt(t)
	guest := testenv.Guest(t)
	poolDir := env.PoolDir(t)
	golden := guest.GoldenCopy(t, env.PoolDir(t))
	virttest.Run(t, func(t *testing.T) virttest.Harness {
		return virttest.Harness{
			HV:                connect(t, env),
			Pool:              "vt-pool",
			PoolDir:           poolDir,
			Golden:            golden,
			GoldenPool:        "vt-golden",
			Accel:             virt.Accel(env.Accel),
			Boots:             true,
			Timeout:           90 * time.Second,
			WriteDisk:         virttest.QemuWriteDisk,
			ReadDisk:          virttest.QemuReadDisk,
			InternalSnapshots: virttest.QemuInternalSnapshots,
		}
	})
}
