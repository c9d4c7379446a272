package license

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func mustKey(t *testing.T, s string) Key {
	t.Helper()
	k, err := ParseKey(s)
	if err != nil {
		t.Fatalf("ParseKey: %v", err)
	}
	return k
}

func TestOpenFingerprinterCreatesPrivateSecret(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "state", "legacyvm", "fingerprint.key")
	f, err := OpenFingerprinter(path, nil)
	if err != nil {
		t.Fatalf("OpenFingerprinter: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != SecretSize {
		t.Errorf("secret file mode %04o size %d, want 0600 and %d", st.Mode().Perm(), st.Size(), SecretSize)
	}
	for _, d := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		dst, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if dst.Mode().Perm() != 0o700 {
			t.Errorf("directory %s mode %04o, want 0700", d, dst.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the secret (temporary file left behind?)", len(entries))
	}

	k := mustKey(t, fakeKey)
	fp := f.Fingerprint(k)
	if !regexp.MustCompile(`^hmac1:[0-9a-f]{32}$`).MatchString(fp) {
		t.Errorf("fingerprint %q does not look like hmac1:<32 hex>", fp)
	}
	for _, g := range strings.Split(fakeKey, "-") {
		if strings.Contains(strings.ToUpper(fp), g) {
			t.Errorf("fingerprint contains a key group")
		}
	}

	// Reopening reads the same secret: fingerprints are stable.
	f2, err := OpenFingerprinter(path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if got := f2.Fingerprint(k); got != fp {
		t.Errorf("fingerprint changed after reopening: %q vs %q", got, fp)
	}
	// Same key written differently: same fingerprint.
	if got := f2.Fingerprint(mustKey(t, strings.ToLower(strings.ReplaceAll(fakeKey, "-", " ")))); got != fp {
		t.Errorf("normalised forms of one key have different fingerprints")
	}
	// Another key: another fingerprint.
	if f2.Fingerprint(mustKey(t, "BCDFG-HJKMP-QRTVW-XY234-6789C")) == fp {
		t.Errorf("two keys share a fingerprint")
	}
	if f2.Fingerprint(Key{}) != "" {
		t.Errorf("the zero key has a fingerprint")
	}
}

func TestFingerprintDependsOnSecret(t *testing.T) {
	a, err := NewFingerprinter(bytes.Repeat([]byte{1}, SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewFingerprinter(bytes.Repeat([]byte{2}, SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKey(t, fakeKey)
	if a.Fingerprint(k) == b.Fingerprint(k) {
		t.Errorf("different secrets give the same fingerprint")
	}
	// A fixed vector pins the scheme: changing it would orphan every
	// stored fingerprint, so it needs a new prefix instead.
	if got, want := a.Fingerprint(k), "hmac1:"+fixedVector(t); got != want {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}
	if _, err := NewFingerprinter(make([]byte, 16)); err == nil {
		t.Errorf("NewFingerprinter accepted a 16-byte secret")
	}
}

// fixedVector is HMAC-SHA256(32 bytes of 0x01, fakeKey) truncated to 16
// bytes, computed independently with
//
//	printf %s "$KEY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:0101...01
func fixedVector(t *testing.T) string {
	t.Helper()
	return "4e945dc15d596c2e6dbc73c53b0047fe"
}

func TestOpenFingerprinterRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{"group readable", func(t *testing.T, p string) { writeFile(t, p, make([]byte, SecretSize), 0o640) }, "chmod 600"},
		{"world readable", func(t *testing.T, p string) { writeFile(t, p, make([]byte, SecretSize), 0o604) }, "readable by group or others"},
		{"wrong size", func(t *testing.T, p string) { writeFile(t, p, make([]byte, 31), 0o600) }, "31 bytes, want 32"},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"symlink", func(t *testing.T, p string) {
			target := p + ".real"
			writeFile(t, target, make([]byte, SecretSize), 0o600)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fingerprint.key")
			tt.setup(t, path)
			before, _ := os.ReadFile(path)
			_, err := OpenFingerprinter(path, nil)
			if err == nil {
				t.Fatalf("OpenFingerprinter accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Errorf("a refused secret was modified")
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile is subject to umask
		t.Fatal(err)
	}
}

func TestOpenFingerprinterConcurrentFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fingerprint.key")
	k := mustKey(t, fakeKey)
	const n = 8
	fps := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := OpenFingerprinter(path, nil)
			if err != nil {
				errs[i] = err
				return
			}
			fps[i] = f.Fingerprint(k)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("opener %d: %v", i, errs[i])
		}
		if fps[i] != fps[0] {
			t.Fatalf("concurrent first uses disagree on the secret")
		}
	}
}

func TestDefaultFingerprintPath(t *testing.T) {
	home := func() (string, error) { return "/home/u", nil }
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	tests := []struct {
		name string
		env  map[string]string
		euid int
		home func() (string, error)
		want string
		err  bool
	}{
		{"root", nil, 0, home, "/var/lib/legacyvm/fingerprint.key", false},
		{"override wins for root", map[string]string{FingerprintKeyEnv: "/srv/fp.key"}, 0, home, "/srv/fp.key", false},
		{"override wins for user", map[string]string{FingerprintKeyEnv: "/srv/fp.key", "XDG_STATE_HOME": "/x"}, 1000, home, "/srv/fp.key", false},
		{"xdg state", map[string]string{"XDG_STATE_HOME": "/x/state"}, 1000, home, "/x/state/legacyvm/fingerprint.key", false},
		{"relative xdg ignored", map[string]string{"XDG_STATE_HOME": "state"}, 1000, home, "/home/u/.local/state/legacyvm/fingerprint.key", false},
		{"home fallback", nil, 1000, home, "/home/u/.local/state/legacyvm/fingerprint.key", false},
		{"no home", nil, 1000, noHome, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := defaultFingerprintPath(func(k string) string { return tt.env[k] }, tt.euid, tt.home)
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), FingerprintKeyEnv) {
					t.Fatalf("err = %v, want an error naming %s", err, FingerprintKeyEnv)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// A lost secret is not silently replaced while VMs hold fingerprints made
// with it: a new secret would never match them.
func TestOpenFingerprinterRefusesToReplaceALostSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "fingerprint.key")
	f, err := OpenFingerprinter(path, nil) // first use: created
	if err != nil {
		t.Fatal(err)
	}
	id := f.SecretID()
	key, err := ParseKey("BCDFG-HJKMP-QRTVW-XY234-6789B")
	if err != nil {
		t.Fatal(err)
	}
	held := []FingerprintHolder{{VM: "acct-1", SecretID: id}, {VM: "acct-2", SecretID: id}, {VM: "old-1"}, {VM: "old-2"}}

	// The same secret opens fine with holders.
	again, err := OpenFingerprinter(path, held)
	if err != nil || again.SecretID() != id || again.Fingerprint(key) != f.Fingerprint(key) {
		t.Fatalf("reopening with holders: %v", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFingerprinter(path, held)
	var miss *MissingSecretError
	if !errors.As(err, &miss) {
		t.Fatalf("a lost secret with VMs holding fingerprints: err = %v, want *MissingSecretError", err)
	}
	if _, serr := os.Stat(path); !errors.Is(serr, fs.ErrNotExist) {
		t.Fatalf("a new secret was created at %s: %v", path, serr)
	}
	msg := err.Error()
	for _, want := range []string{path, "acct-1", "and 1 more", id, "unrecorded", "Restore the file from a backup", FingerprintKeyEnv, "/var/lib/legacyvm/fingerprint.key", "head -c 32 /dev/urandom"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}

	// Restoring the file brings the same id and fingerprints back.
	// Without holders a new secret is created, with another id.
	g, err := OpenFingerprinter(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.SecretID() == id {
		t.Errorf("a new random secret has the old id %s", id)
	}
}

func TestSecretIDRevealsNothingAndIsStable(t *testing.T) {
	a, _ := NewFingerprinter(bytes.Repeat([]byte{1}, SecretSize))
	b, _ := NewFingerprinter(bytes.Repeat([]byte{1}, SecretSize))
	c, _ := NewFingerprinter(bytes.Repeat([]byte{2}, SecretSize))
	if a.SecretID() != b.SecretID() || a.SecretID() == c.SecretID() {
		t.Fatalf("ids: %s %s %s", a.SecretID(), b.SecretID(), c.SecretID())
	}
	if !strings.HasPrefix(a.SecretID(), SecretIDPrefix) || len(a.SecretID()) != len(SecretIDPrefix)+12 {
		t.Fatalf("id %q: want %s and 12 hex digits", a.SecretID(), SecretIDPrefix)
	}
	key, _ := ParseKey("BCDFG-HJKMP-QRTVW-XY234-6789B")
	if strings.Contains(a.Fingerprint(key), strings.TrimPrefix(a.SecretID(), SecretIDPrefix)) {
		t.Fatal("the secret id is part of a fingerprint")
	}
}
