package multihost

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// orgKey is a format-valid product key that belongs to nobody.
const orgKey = "QRTVW-HJKMP-BCDFG-XY234-6789B"

// licenceProfile: one VM fixed on host, using a retail licence whose key
// comes from ORG_KEY; fingerprintKey, when not empty, is the profile's
// fingerprint_key line.
func (p *pair) licenceProfile(vm, host, fingerprintKey string) string {
	return p.hostBlocks() + fingerprintKey + fmt.Sprintf(`
license "retail" {
  product_key = env("ORG_KEY")
  edition     = "professional"
  channel     = "retail"
}

vm %q {
  os       = "win7-x64"
  cpus     = 1
  memory   = "256MiB"
  host     = host.%s
  licenses = [license.retail]
  disk {
    image   = %q
    prepare = "none"
  }
  oem_strings = ["rig.ip=none"]
}
`, vm, host, p.Golden)
}

// user is the environment of one person running legacyvm: a home and a
// fingerprint secret of their own.
func user(t *testing.T, name string) []string {
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return []string{"HOME=" + dir, "LEGACYVM_FINGERPRINT_KEY=" + filepath.Join(dir, "fingerprint.key"), "ORG_KEY=" + orgKey}
}

// The same retail key applied by two users, through two profiles, on two
// hosts: with the organisation's shared fingerprint secret the second
// apply is refused before anything changes.
func TestSharedFingerprintSecretAcrossHostsAndUsers(t *testing.T) {
	p := newPair(t)
	texts := map[string]string{}
	orgFile := filepath.Join(t.TempDir(), "org-fingerprint.key")
	if err := os.WriteFile(orgFile, []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := fmt.Sprintf("\nfingerprint_key = file(%q)\n\nfiles {\n  allow_dirs = [%q]\n}\n", orgFile, filepath.Dir(orgFile))
	alice, bob := user(t, "alice"), user(t, "bob")

	x := e2eutil.Profile(t, "orgx", map[string]string{"main.hcl": p.licenceProfile("ox", "a", shared)})
	y := e2eutil.Profile(t, "orgy", map[string]string{"main.hcl": p.licenceProfile("oy", "b", shared)})
	r := p.mustRun(t, alice, []string{"apply", "--auto-approve", x}, 0)
	texts["alice apply"] = r.Stdout + r.Stderr
	r = p.run(t, bob, "apply", "--auto-approve", y)
	texts["bob apply"] = r.Stdout + r.Stderr
	if r.Code != 1 || !strings.Contains(r.Stderr, "Licence key already in use") || !strings.Contains(r.Stderr, "ox") {
		t.Errorf("bob's apply of the same retail key on b: want a refusal naming ox\n%s", r)
	}
	if got := domainsOn(t, p.HVB, "orgy"); len(got) != 0 {
		t.Errorf("bob's VM was created on b: %v", got)
	}
	// Neither user's own secret file was made: the profile's was used.
	for _, u := range [][]string{alice, bob} {
		path := strings.TrimPrefix(u[1], "LEGACYVM_FINGERPRINT_KEY=")
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s was created although the profile names a shared secret", path)
		}
	}
	e2eutil.NoSecret(t, orgKey, texts)
	for where, s := range texts {
		if strings.Contains(s, strings.Repeat("5a", 32)) {
			t.Errorf("the shared fingerprint secret appears in %s", where)
		}
	}
}
