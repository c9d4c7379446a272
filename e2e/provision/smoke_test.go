package provision

import (
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

func TestSmokeApplyBootDestroy(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := e2eutil.Profile(t, "smoke", map[string]string{"main.hcl": h.HostBlock() + `
network "smk" {
  subnet = "10.91.0.0/24"
  dhcp   = true
}
vm "smk" {
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image   = "` + h.Golden + `"
    prepare = "none"
  }
  network = network.smk
}
`})
	h.MustRun(t, []string{"plan", dir}, 2)
	r := h.MustRun(t, []string{"apply", "--auto-approve", dir})
	if !strings.Contains(r.Stderr, "smk: done") {
		t.Errorf("no progress line for smk:\n%s", r)
	}
	line := h.WaitSerial(t, "smk", `RIG net .*ip=10\.91\.0\.`, 90*time.Second)
	t.Logf("guest: %s", line)
	h.MustRun(t, []string{"plan", dir}, 0)
	h.MustRun(t, []string{"destroy", "--auto-approve", dir})
}
