package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// Fake product keys and passwords: valid in form, never real, used by no
// other package. Every group holds a letter outside the hex digits.
const (
	key1 = "QRTVW-XY2K4-GHJKM-P6T8B-CDFGX"
	key2 = "MPQRT-VWXY3-BCDFK-H7J9M-KTPWY"
	pwVM = "Lvm9ImageCloneAdminNotReal"
)

// secretWatch collects every text a test sees, to check it for secrets.
type secretWatch struct {
	mu    sync.Mutex
	texts map[string]string
}

func newSecretWatch() *secretWatch { return &secretWatch{texts: map[string]string{}} }

func (w *secretWatch) add(name, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := name
	for i := 2; ; i++ {
		if _, ok := w.texts[key]; !ok {
			break
		}
		key = fmt.Sprintf("%s #%d", name, i)
	}
	w.texts[key] = text
}

func (w *secretWatch) check(t *testing.T, secrets ...string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range secrets {
		e2eutil.NoSecret(t, s, w.texts)
	}
}

// run runs legacyvm, records both outputs and fails unless the exit code
// is want.
func run(t *testing.T, h *e2eutil.Host, w *secretWatch, env []string, want int, args ...string) e2eutil.Result {
	t.Helper()
	r := h.RunEnv(t, env, args...)
	name := "legacyvm " + strings.Join(args, " ")
	w.add(name+" (stdout)", r.Stdout)
	w.add(name+" (stderr)", r.Stderr)
	if r.Code != want {
		t.Fatalf("want exit %d\n%s", want, r)
	}
	return r
}

func inOrder(t *testing.T, what, s string, needles ...string) {
	t.Helper()
	at := 0
	for _, n := range needles {
		i := strings.Index(s[at:], n)
		if i < 0 {
			t.Errorf("%s: %q missing (or out of order):\n%s", what, n, s)
			return
		}
		at += i + len(n)
	}
}

// serialRecorder keeps every run of a domain's serial log (the log starts
// over whenever QEMU starts).
type serialRecorder struct {
	path    string
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	history []string
	cur     string
}

func recordSerial(path string) *serialRecorder {
	r := &serialRecorder{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			r.poll()
			select {
			case <-r.stop:
				r.poll()
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *serialRecorder) poll() {
	b, err := os.ReadFile(r.path)
	if err != nil {
		return
	}
	s := string(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !strings.HasPrefix(s, r.cur) {
		r.history = append(r.history, r.cur)
	}
	r.cur = s
}

func (r *serialRecorder) all() string {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(append(append([]string(nil), r.history...), r.cur), "\n-----\n")
}

func virsh(t *testing.T, h *e2eutil.Host, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := h.Env.Virsh(ctx, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(out)
}

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
	for _, d := range strings.Fields(virsh(t, h, "list", "--all", "--name")) {
		if d == "lvm-build-"+image {
			out = append(out, "domain "+d)
		}
	}
	for _, l := range strings.Split(virsh(t, h, "vol-list", "--pool", h.Pool), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (strings.HasPrefix(f[0], "lvm-build-"+image) || strings.HasPrefix(f[0], "lvm-image-"+image+"-")) {
			out = append(out, "volume "+f[0])
		}
	}
	sort.Strings(out)
	return out
}
