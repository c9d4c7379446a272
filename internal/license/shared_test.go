package license

import (
	"strings"
	"testing"
)

func TestParseSharedSecret(t *testing.T) {
	good := strings.Repeat("0f", SecretSize)
	b, err := ParseSharedSecret("  " + good + "\n")
	if err != nil || len(b) != SecretSize || b[0] != 0x0f {
		t.Fatalf("ParseSharedSecret(good) = %x, %v", b, err)
	}
	for _, bad := range []string{"", good[:62], good + "00", strings.Repeat("zz", SecretSize)} {
		_, err := ParseSharedSecret(bad)
		if err == nil {
			t.Errorf("ParseSharedSecret(%q) accepted", bad)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("the error shows the value: %v", err)
		}
	}
	// Two users with the same shared secret make the same fingerprint.
	k, err := ParseKey("BCDFG-HJKMP-QRTVW-XY234-6789B")
	if err != nil {
		t.Fatal(err)
	}
	f1, _ := NewFingerprinter(b)
	f2, _ := NewFingerprinter(append([]byte(nil), b...))
	if f1.Fingerprint(k) != f2.Fingerprint(k) {
		t.Error("same shared secret, different fingerprints")
	}
}
