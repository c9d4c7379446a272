package provision

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// onceProfile declares two VMs prepared by specialize (their answer media
// hold the key) whose licence key comes from a command.
const onceProfile = `
license "once" {
  product_key = command([%q])
  edition     = "professional"
  channel     = "mak"
  seats       = 2
}

vm "once" {
  count  = 2
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image   = %q
    prepare = "specialize"
  }
  licenses = [license.once]
}
`

// TestSecretCommandRunsOnce: a product key from command() is read once
// per command, by plan --check-keys and by an apply that provisions two
// VMs with answer media (it used to run for the seat check, the pre-check
// and each VM's setup); destroy reads none. No output shows it.
func TestSecretCommandRunsOnce(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	dir := t.TempDir()
	counter := filepath.Join(dir, "runs")
	script := filepath.Join(dir, "key.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\necho run >> %q\necho %q\n", counter, keyOnce)), 0o700); err != nil {
		t.Fatal(err)
	}
	runs := func() int {
		b, err := os.ReadFile(counter)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Count(string(b), "run\n")
	}
	prof := e2eutil.Profile(t, "once", map[string]string{"main.hcl": h.HostBlock() + fmt.Sprintf(onceProfile, script, h.Golden)})
	texts := map[string]string{}
	run := func(want int, args ...string) {
		t.Helper()
		r := h.Run(t, args...)
		texts["legacyvm "+strings.Join(args, " ")] = r.Stdout + r.Stderr
		if r.Code != want {
			t.Fatalf("exit %d, want %d\n%s", r.Code, want, r)
		}
	}
	t.Cleanup(func() { h.Run(t, "destroy", "--auto-approve", prof) })

	run(2, "plan", "--check-keys", prof)
	if n := runs(); n != 1 {
		t.Errorf("plan --check-keys ran the key command %d times, want 1", n)
	}
	run(0, "apply", "--auto-approve", "--parallelism", "2", prof)
	if n := runs() - 1; n != 1 {
		t.Errorf("apply of two VMs with answer media ran the key command %d times, want 1", n)
	}
	run(0, "plan", prof)
	run(0, "destroy", "--auto-approve", prof)
	if n := runs(); n != 2 {
		t.Errorf("plan and destroy ran the key command: %d runs in all, want 2", n)
	}
	noSecrets(t, texts)
}
