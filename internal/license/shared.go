package license

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// ParseSharedSecret reads an organisation's shared fingerprint secret as
// written in a file, an environment variable or a command's output:
// SecretSize bytes as 2*SecretSize hexadecimal characters (make one with
// `openssl rand -hex 32`). Errors never include the value.
func ParseSharedSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) != 2*SecretSize {
		return nil, fmt.Errorf("the shared fingerprint secret must be %d hexadecimal characters (%d random bytes, made with: openssl rand -hex %d), not %d characters", 2*SecretSize, SecretSize, SecretSize, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the shared fingerprint secret must be %d hexadecimal characters (made with: openssl rand -hex %d); it has other characters", 2*SecretSize, SecretSize)
	}
	return b, nil
}
