package libvirt_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	lv "github.com/legacyvm/legacyvm/internal/virt/libvirt"
	"github.com/legacyvm/legacyvm/internal/virt/virttest"
)

// TestConformance runs the suite the fake also passes against a real
// libvirtd with the stand-in guest (TCG, 256 MiB).
func TestConformance(t *testing.T) {
	uri, guest := devLibvirt(t)
	poolDir := filepath.Join(os.TempDir(), "legacyvm-virttest-pool")
	virttest.Run(t, func(t *testing.T) virttest.Harness {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h, err := lv.Connect(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		return virttest.Harness{
			HV:                h,
			Pool:              "vt-pool",
			PoolDir:           poolDir,
			Golden:            guest,
			GoldenPool:        "vt-golden",
			Accel:             virt.AccelTCG,
			Boots:             true,
			Timeout:           90 * time.Second,
			WriteDisk:         virttest.QemuWriteDisk,
			ReadDisk:          virttest.QemuReadDisk,
			InternalSnapshots: virttest.QemuInternalSnapshots,
		}
	})
}
