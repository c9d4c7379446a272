package fake_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
	"github.com/legacyvm/legacyvm/internal/virt/virttest"
)

// TestConformance runs the suite the libvirt adapter also passes.
func TestConformance(t *testing.T) {
	virttest.Run(t, func(t *testing.T) virttest.Harness {
		const golden = "/var/lib/legacyvm/golden/guest.qcow2"
		h := fake.New(fake.WithFile(golden, "qcow2", 24<<20))
		gen := func(_ context.Context, path string) (string, error) {
			g, err := h.DiskGeneration(path)
			return strconv.FormatUint(g, 10), err
		}
		return virttest.Harness{
			HV:         h,
			Pool:       "vt-pool",
			PoolDir:    "/var/lib/legacyvm/pool",
			Golden:     golden,
			GoldenPool: "vt-golden",
			Accel:      virt.AccelTCG,
			WriteDisk: func(ctx context.Context, path string) (string, error) {
				if err := h.WriteFile(path); err != nil {
					return "", err
				}
				return gen(ctx, path)
			},
			ReadDisk: gen,
			InternalSnapshots: func(_ context.Context, path string) ([]string, error) {
				return h.InternalSnapshots(path)
			},
		}
	})
}
