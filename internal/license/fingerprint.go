package license

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretSize is the size in bytes of the fingerprint secret.
const SecretSize = 32

// FingerprintPrefix starts every fingerprint; it names the scheme so that a
// later scheme can coexist with stored fingerprints.
const FingerprintPrefix = "hmac1:"

// fingerprintBytes is how much of the HMAC a fingerprint keeps (128 bits).
const fingerprintBytes = 16

// FingerprintKeyEnv overrides DefaultFingerprintPath.
const FingerprintKeyEnv = "LEGACYVM_FINGERPRINT_KEY"

// Fingerprinter computes keyed fingerprints of product keys: the same key
// gives the same fingerprint on one host (one secret), and a fingerprint
// reveals nothing about the key without the secret. Fingerprints, never
// keys, are what legacyvm stores to detect reuse. A Fingerprinter is safe
// for concurrent use.
type Fingerprinter struct {
	secret []byte
}

// NewFingerprinter returns a Fingerprinter for a secret held in memory
// (tests, or callers that keep the secret elsewhere). The secret must be
// SecretSize bytes; it is copied.
func NewFingerprinter(secret []byte) (*Fingerprinter, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("fingerprint secret has %d bytes, want %d", len(secret), SecretSize)
	}
	return &Fingerprinter{secret: append([]byte(nil), secret...)}, nil
}

// OpenFingerprinter loads the secret from path. When the file does not
// exist it is created (SecretSize random bytes in a file with mode 0600,
// parent directories with mode 0700) only if held is empty: held lists the
// VMs whose recorded licence fingerprints were made with some secret, and a
// new secret would never match them, which would silently switch off
// licence-reuse detection. With held not empty a missing secret is a
// *MissingSecretError that says how to restore it. Creation is atomic:
// concurrent first uses agree on one secret. A secret file that group or
// others can access, that is not a regular file, or that has the wrong size
// is refused, never replaced.
func OpenFingerprinter(path string, held []FingerprintHolder) (*Fingerprinter, error) {
	if path == "" {
		return nil, errors.New("open fingerprint secret: no path given")
	}
	secret, err := readSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		if len(held) > 0 {
			return nil, &MissingSecretError{Path: path, Held: held}
		}
		secret, err = createSecret(path)
	}
	if err != nil {
		return nil, err
	}
	return &Fingerprinter{secret: secret}, nil
}

// FingerprintHolder is a VM that records a licence fingerprint, with the
// id of the secret that made it (Fingerprinter.SecretID; "" for
// fingerprints recorded before secret ids were stored).
type FingerprintHolder struct {
	VM       string
	SecretID string
}

// MissingSecretError is OpenFingerprinter refusing to create a secret while
// VMs hold fingerprints made with another one.
type MissingSecretError struct {
	// Path is where the secret was looked for.
	Path string
	// Held are the VMs holding fingerprints.
	Held []FingerprintHolder
}

func (e *MissingSecretError) Error() string {
	var vms, ids []string
	seen := map[string]bool{}
	for _, h := range e.Held {
		if len(vms) < 3 {
			vms = append(vms, h.VM)
		}
		id := h.SecretID
		if id == "" {
			id = "unrecorded"
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	more := ""
	if len(e.Held) > len(vms) {
		more = fmt.Sprintf(" and %d more", len(e.Held)-len(vms))
	}
	return fmt.Sprintf("fingerprint secret %s does not exist, but %d VMs (%s%s) hold licence fingerprints made with a secret (id %s): "+
		"a new secret would never match them and licence-reuse detection would silently stop, so none is created. "+
		"Restore the file from a backup (%d bytes, mode 0600, owned by the user running legacyvm; root's lives in /var/lib/legacyvm/fingerprint.key, "+
		"other users' in ~/.local/state/legacyvm/fingerprint.key), or set %s to the file that made them. "+
		"If it is lost for good, create a new one on purpose: (umask 077; head -c %d /dev/urandom > %s); those VMs' licences are then matched by label only until they are provisioned again",
		e.Path, len(e.Held), strings.Join(vms, ", "), more, strings.Join(ids, ", "), SecretSize, FingerprintKeyEnv, SecretSize, e.Path)
}

func readSecret(path string) ([]byte, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("open fingerprint secret: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open fingerprint secret %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("open fingerprint secret %s: readable by group or others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open fingerprint secret: %w", err)
	}
	if len(b) != SecretSize {
		return nil, fmt.Errorf("open fingerprint secret %s: it has %d bytes, want %d; the file is damaged (restore it from a backup: a new secret changes every fingerprint)", path, len(b), SecretSize)
	}
	return b, nil
}

func createSecret(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create fingerprint secret directory: %w", err)
	}
	secret := make([]byte, SecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("create fingerprint secret: %w", err)
	}
	// Write a private temporary file, then link it into place: the secret
	// appears complete or not at all, and a concurrent creator that wins
	// the race is respected (link never replaces an existing file).
	tmp, err := os.CreateTemp(dir, ".fingerprint-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create fingerprint secret: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create fingerprint secret: %w", err)
	}
	if _, err := tmp.Write(secret); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create fingerprint secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create fingerprint secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("create fingerprint secret: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecret(path)
		}
		return nil, fmt.Errorf("create fingerprint secret: %w", err)
	}
	return secret, nil
}

// Fingerprint returns FingerprintPrefix followed by the hex form of the
// first 16 bytes of HMAC-SHA256(secret, normalised key). The zero Key has
// the fingerprint "".
func (f *Fingerprinter) Fingerprint(k Key) string {
	if k.IsZero() {
		return ""
	}
	m := hmac.New(sha256.New, f.secret)
	m.Write([]byte(k.Reveal()))
	return FingerprintPrefix + hex.EncodeToString(m.Sum(nil)[:fingerprintBytes])
}

// SecretIDPrefix starts every secret id; it names the scheme.
const SecretIDPrefix = "sid1:"

// SecretID identifies the secret without revealing it: SecretIDPrefix and
// the hex form of the first 6 bytes of HMAC-SHA256(secret, a fixed label).
// It is stored beside each fingerprint so that a missing or replaced
// secret is noticed (fingerprints made with different secrets never
// match) instead of silently disabling reuse detection.
func (f *Fingerprinter) SecretID() string {
	m := hmac.New(sha256.New, f.secret)
	m.Write([]byte("legacyvm fingerprint secret id v1"))
	return SecretIDPrefix + hex.EncodeToString(m.Sum(nil)[:6])
}

// DefaultFingerprintPath returns where the fingerprint secret lives:
// $LEGACYVM_FINGERPRINT_KEY when set; /var/lib/legacyvm/fingerprint.key for
// root; otherwise $XDG_STATE_HOME/legacyvm/fingerprint.key, or
// ~/.local/state/legacyvm/fingerprint.key when XDG_STATE_HOME is unset or
// not absolute.
func DefaultFingerprintPath() (string, error) {
	return defaultFingerprintPath(os.Getenv, os.Geteuid(), os.UserHomeDir)
}

func defaultFingerprintPath(getenv func(string) string, euid int, home func() (string, error)) (string, error) {
	if p := strings.TrimSpace(getenv(FingerprintKeyEnv)); p != "" {
		return p, nil
	}
	if euid == 0 {
		return "/var/lib/legacyvm/fingerprint.key", nil
	}
	if s := getenv("XDG_STATE_HOME"); s != "" && filepath.IsAbs(s) {
		return filepath.Join(s, "legacyvm", "fingerprint.key"), nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("locate fingerprint secret: %w (set %s)", err, FingerprintKeyEnv)
	}
	return filepath.Join(h, ".local", "state", "legacyvm", "fingerprint.key"), nil
}
