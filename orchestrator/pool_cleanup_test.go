package orchestrator

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// TestDestroyRemovesUnusedImagePools: apply makes an autostart storage
// pool for the golden image's directory; destroy removes it once no
// managed VM (of any profile) uses an image there, and only its
// definition: the image stays. A pool with that name but another
// directory is not legacyvm's and stays.
func TestDestroyRemovesUnusedImagePools(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	src := `
vm "%NAME%" {
  os = "win7-x64"
  disk {
    image   = "%IMAGE%"
    prepare = "none"
  }
}`
	a := loadProfile(t, "pa", src, "%NAME%", "va")
	b := loadProfile(t, "pb", src, "%NAME%", "vb")
	apply(t, plan(t, a, h))
	apply(t, plan(t, b, h))
	dir := filepath.Dir(golden)
	poolName := imagePoolName(dir)
	if p, err := h.GetPool(ctx, poolName); err != nil || p.Path != dir {
		t.Fatalf("after apply, pool %s = %+v, %v; want it at %s", poolName, p, err, dir)
	}

	destroy := func(t *testing.T, pName string) *Plan {
		t.Helper()
		p := a
		if pName == "pb" {
			p = b
		}
		hps, err := planProfileDestroy(ctx, p, connector(h), Options{DefaultURI: "test:///fake"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := &engine{HV: h, Parallelism: 2, PollInterval: 1}
		if _, err := e.Apply(ctx, hps[0].Plan); err != nil {
			t.Fatal(err)
		}
		return hps[0].Plan
	}
	pl := destroy(t, "pa")
	if _, ok := changesByName(pl)["pool/"+poolName]; ok {
		t.Errorf("destroying pa plans to remove %s, which pb's VM still uses", poolName)
	}
	if _, err := h.GetPool(ctx, poolName); err != nil {
		t.Fatalf("pool %s removed while pb uses it: %v", poolName, err)
	}
	pl = destroy(t, "pb")
	c, ok := changesByName(pl)["pool/"+poolName]
	if !ok || c.Action != ActionDelete {
		t.Errorf("destroying the last user does not plan to remove %s: %+v", poolName, pl.Changes)
	}
	if _, err := h.GetPool(ctx, poolName); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("pool %s after the last destroy: %v, want not found", poolName, err)
	}
	// The image itself stays: a pool at its directory shows it again.
	if _, err := h.EnsurePool(ctx, "check", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := h.VolumeByPath(ctx, golden); err != nil {
		t.Errorf("golden image after destroy: %v", err)
	}
}

// TestDestroyKeepsPoolsItDidNotMake: a pool with legacyvm's name for a
// directory but another path is not touched.
func TestDestroyKeepsPoolsItDidNotMake(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	dir := filepath.Dir(golden)
	if _, err := h.EnsurePool(ctx, imagePoolName(dir), dir); err != nil {
		t.Fatal(err)
	}
	p := loadProfile(t, "pc", `
vm "vc" {
  os = "win7-x64"
  disk {
    image   = "%IMAGE%"
    prepare = "none"
  }
}`)
	apply(t, plan(t, p, h))
	// Someone redefines the pool at another directory.
	if err := h.RemovePool(ctx, imagePoolName(dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.EnsurePool(ctx, imagePoolName(dir), "/elsewhere"); err != nil {
		t.Fatal(err)
	}
	hps, err := planProfileDestroy(ctx, p, connector(h), Options{DefaultURI: "test:///fake"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := changesByName(hps[0].Plan)["pool/"+imagePoolName(dir)]; ok {
		t.Errorf("destroy plans to remove a pool at another directory")
	}
}
