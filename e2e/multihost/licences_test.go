package multihost

import (
	"crypto/rand"
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
// apply is refused before anything changes. With each user's own secret it
// is not recognised, and licenses warns that the hosts hold fingerprints
// made with different secrets (the shared one, alice's and bob's).
func TestSharedFingerprintSecretAcrossHostsAndUsers(t *testing.T) {
	t.Parallel()
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
	// Without the shared secret each user fingerprints with their own: the
	// same key on b is not recognised (the fingerprints differ), and
	// licenses warns that the hosts hold fingerprints of two secrets.
	// legacyvm does not make a new secret while the hosts hold
	// fingerprints: each user makes theirs on purpose.
	for _, u := range [][]string{alice, bob} {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(strings.TrimPrefix(u[1], "LEGACYVM_FINGERPRINT_KEY="), secret, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	x2 := e2eutil.Profile(t, "orgx2", map[string]string{"main.hcl": p.licenceProfile("ox2", "a", "")})
	y2 := e2eutil.Profile(t, "orgy2", map[string]string{"main.hcl": p.licenceProfile("oy2", "b", "")})
	r = p.mustRun(t, alice, []string{"apply", "--auto-approve", x2}, 0)
	texts["alice apply own secret"] = r.Stdout + r.Stderr
	r = p.mustRun(t, bob, []string{"apply", "--auto-approve", y2}, 0)
	texts["bob apply own secret"] = r.Stdout + r.Stderr
	li := p.mustRun(t, bob, []string{"licenses", y2}, 0)
	texts["licenses"] = li.Stdout + li.Stderr
	if !strings.Contains(li.Stderr, "Warning: licence fingerprints here were made with 3 different secrets") ||
		!strings.Contains(li.Stderr, "ox2") || !strings.Contains(li.Stderr, "oy2") || !strings.Contains(li.Stderr, "fingerprint_key") {
		t.Errorf("licenses does not warn about fingerprints of different secrets:\n%s", li)
	}
	lj := p.mustRun(t, bob, []string{"licenses", "-o", "json", y2}, 0)
	texts["licenses json"] = lj.Stdout + lj.Stderr
	if strings.Count(lj.Stdout, `"id": "sid1:`) != 3 {
		t.Errorf("licenses -o json does not list the three secrets:\n%s", lj)
	}

	e2eutil.NoSecret(t, orgKey, texts)
	for where, s := range texts {
		if strings.Contains(s, strings.Repeat("5a", 32)) {
			t.Errorf("the shared fingerprint secret appears in %s", where)
		}
	}
}
