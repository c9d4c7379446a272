package orchestrator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/license"
)

// fileFingerprinter fingerprints with the secret file at path, as the CLI
// does (license.OpenFingerprinter).
func fileFingerprinter(path string) FingerprintFunc {
	return func(k license.Key, held []license.FingerprintHolder) (string, string, error) {
		f, err := license.OpenFingerprinter(path, held)
		if err != nil {
			return "", "", err
		}
		return f.Fingerprint(k), f.SecretID(), nil
	}
}

// Losing the fingerprint secret must not silently switch off licence-reuse
// detection: each fingerprint is stored with the id of its secret, and a
// missing secret is not recreated while VMs hold fingerprints.
func TestLostFingerprintSecretIsNotSilentlyReplaced(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	path := filepath.Join(t.TempDir(), "fingerprint.key")
	fp := fileFingerprinter(path)

	a := loadProfile(t, "alpha", seatProfile("office", "KEY_A", "retail", 0, "acct", 1))
	hps, diags, err := planWith(t, a, h, sourceKeys(seatGetenv, fp))
	if err != nil || diags.HasErrors() {
		t.Fatalf("plan: %v %s", err, diags.Error())
	}
	e := &engine{HV: h, Parallelism: 1, PollInterval: 1, Getenv: seatGetenv, Fingerprint: fp}
	if _, err := e.Apply(ctx, hps[0].Plan); err != nil {
		t.Fatal(err)
	}
	secret, err := license.OpenFingerprinter(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	dom, err := h.GetDomain(ctx, "acct")
	if err != nil {
		t.Fatal(err)
	}
	if l := dom.Metadata.License; l == nil || l.Fingerprint == "" || l.SecretID != secret.SecretID() {
		t.Fatalf("recorded licence %+v, want a fingerprint with secret id %s", l, secret.SecretID())
	}

	// The secret file is lost. Another profile reusing the same key must
	// not get a fresh secret (whose fingerprints never match acct's).
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	b := loadProfile(t, "beta", seatProfile("spare", "KEY_A_AGAIN", "retail", 0, "tester", 1))
	_, _, err = planWith(t, b, h, sourceKeys(seatGetenv, fp))
	var miss *license.MissingSecretError
	if !errors.As(err, &miss) {
		t.Fatalf("plan with the secret lost: err = %v, want a MissingSecretError", err)
	}
	if len(miss.Held) != 1 || miss.Held[0].VM != "acct" || miss.Held[0].SecretID != secret.SecretID() {
		t.Errorf("held = %+v", miss.Held)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "Restore the file") {
		t.Errorf("error does not say where the secret lives and how to restore it: %v", err)
	}
	assertNoKeyIn(t, "error", err.Error(), seatKeyA)
	if _, serr := os.Stat(path); serr == nil {
		t.Fatal("a new secret was created")
	}

	// Apply of a new VM refuses too (the engine asks with the host's
	// holders), and leaves nothing behind.
	hpsNoKeys, _, err := planWith(t, b, h, keyIdentifier{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(ctx, hpsNoKeys[0].Plan); err == nil || !strings.Contains(err.Error(), "fingerprint secret "+path+" does not exist, but 1 VMs (acct)") {
		t.Fatalf("apply with the secret lost: err = %v, want the missing secret refused", err)
	}
	if _, err := h.GetDomain(ctx, "tester"); err == nil {
		t.Error("apply left the domain tester behind")
	}

	// Metadata written before secret ids were stored still counts.
	md := *dom.Metadata
	lr := *md.License
	lr.SecretID = ""
	md.License = &lr
	if err := h.SetMetadata(ctx, "acct", &md); err != nil {
		t.Fatal(err)
	}
	if _, _, err = planWith(t, b, h, sourceKeys(seatGetenv, fp)); !errors.As(err, &miss) || miss.Held[0].SecretID != "" {
		t.Fatalf("old metadata without a secret id: err = %v", err)
	}
	if !strings.Contains(err.Error(), "unrecorded") {
		t.Errorf("error does not say the secret id is unrecorded: %v", err)
	}

	// Restoring the secret brings detection back: beta's reuse of
	// acct's retail key is found again.
	if err := os.WriteFile(path, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	_, diags, err = planWith(t, b, h, sourceKeys(seatGetenv, fp))
	if err != nil || !diags.HasErrors() || !strings.Contains(diagText(diags), "acct") {
		t.Fatalf("plan with the secret restored: %v, diagnostics:\n%s", err, diagText(diags))
	}
}
