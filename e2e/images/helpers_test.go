package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// Fake product keys and passwords: valid in form, never real, used by no
// other package. Every group holds a letter outside the hex digits.
const (
	key1 = "QRTVW-XY2K4-GHJKM-P6T8B-CDFGX"
	key2 = "MPQRT-VWXY3-BCDFK-H7J9M-KTPWY"
	// key3 and key4 are TestGoldenImageExample's: the package's tests
	// share one host and its fingerprint secret, where one retail key in
	// two profiles is refused (a seat each).
	key3 = "K7TQB-3WHMF-XJ9RC-D4PGV-8YM2H"
	key4 = "PQ4XD-G8KTW-2JVHR-M6CFB-9TY3K"
	pwVM = "Lvm9ImageCloneAdminNotReal"
)

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sector reads one 512-byte sector of a qcow2 image (read-only).
func sector(t *testing.T, path string, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", path, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", path, err, out)
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	if _, err := f.ReadAt(buf, int64(n)*512); err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(buf), "\x00")
}

// fileHolds reports whether the file's bytes contain any of the secrets
// (whole or any 5-character group but the last, in ASCII or UTF-16LE).
func fileHolds(t *testing.T, path string, secrets ...string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, s := range secrets {
		needles := []string{s}
		g := strings.Split(s, "-")
		needles = append(needles, g[:len(g)-1]...)
		for _, n := range needles {
			u := make([]byte, 0, 2*len(n))
			for i := 0; i < len(n); i++ {
				u = append(u, n[i], 0)
			}
			if strings.Contains(string(b), n) || strings.Contains(string(b), string(u)) {
				found = append(found, n[:2]+"...")
			}
		}
	}
	return found
}

// scanDirs fails the test for any file under dirs that holds a secret.
func scanDirs(t *testing.T, secrets []string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil
			}
			if f := fileHolds(t, p, secrets...); len(f) > 0 {
				t.Errorf("%s holds a secret (%v)", p, f)
			}
			return nil
		})
	}
}

// leftovers lists the build domain and every build or image volume of
// image in the host's pool.
func leftovers(t *testing.T, h *e2eutil.Host, image string) []string {
	t.Helper()
	var out []string
	for _, d := range strings.Fields(h.MustVirsh(t, "list", "--all", "--name")) {
		if d == "lvm-build-"+image {
			out = append(out, "domain "+d)
		}
	}
	for _, l := range strings.Split(h.MustVirsh(t, "vol-list", "--pool", h.Pool), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (strings.HasPrefix(f[0], "lvm-build-"+image) || strings.HasPrefix(f[0], "lvm-image-"+image+"-")) {
			out = append(out, "volume "+f[0])
		}
	}
	sort.Strings(out)
	return out
}
