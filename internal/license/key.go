package license

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Alphabet is the set of characters that can appear in a Windows 7 product
// key (base-24 digits; no vowels, no L N S Z, no 0 1 5).
const Alphabet = "BCDFGHJKMPQRTVWXY2346789"

// Key is a normalised Windows product key (five groups of five characters
// joined by dashes, upper case). The zero Key is empty. Printing a Key in
// any way shows only its redacted form; see Reveal.
type Key struct {
	value string
}

// ErrKeyFormat is wrapped by every error ParseKey returns.
var ErrKeyFormat = errors.New("not a Windows 7 product key")

// ParseKey normalises s (case, spaces and dashes are ignored) and checks that
// it is 25 characters from Alphabet. Errors never contain the input.
func ParseKey(s string) (Key, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '-' || r == ' ' || r == '\t' || r == '\n' || r == '\r':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		b.WriteRune(r)
	}
	raw := b.String()
	if len(raw) != 25 {
		return Key{}, fmt.Errorf("%w: it has %d characters after removing dashes and spaces, want 25 (five groups of five)", ErrKeyFormat, len([]rune(raw)))
	}
	for i, r := range raw {
		if !strings.ContainsRune(Alphabet, r) {
			return Key{}, fmt.Errorf("%w: character %d is not in the product-key alphabet %s", ErrKeyFormat, i+1, Alphabet)
		}
	}
	return Key{value: raw[0:5] + "-" + raw[5:10] + "-" + raw[10:15] + "-" + raw[15:20] + "-" + raw[20:25]}, nil
}

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return k.value == "" }

// Reveal returns the key itself. Call it only where the key must be written
// into answer media; never log, print or store the result.
func (k Key) Reveal() string { return k.value }

// LastGroup returns the last five characters, the only part legacyvm ever
// shows or stores.
func (k Key) LastGroup() string {
	if k.value == "" {
		return ""
	}
	return k.value[len(k.value)-5:]
}

// Redacted returns the key with all but the last group masked, e.g.
// "XXXXX-XXXXX-XXXXX-XXXXX-QT3H7".
func (k Key) Redacted() string { return Redact(k.LastGroup()) }

// Redact builds the display form from a stored last group.
func Redact(lastGroup string) string {
	if lastGroup == "" {
		return ""
	}
	return "XXXXX-XXXXX-XXXXX-XXXXX-" + lastGroup
}

// String implements fmt.Stringer with the redacted form.
func (k Key) String() string { return k.Redacted() }

// GoString implements fmt.GoStringer with the redacted form.
func (k Key) GoString() string { return fmt.Sprintf("license.Key(%q)", k.Redacted()) }

// Format makes every fmt verb print the redacted form.
func (k Key) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", k.Redacted())
		return
	}
	fmt.Fprint(f, k.Redacted())
}

// MarshalJSON encodes the redacted form.
func (k Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.Redacted()) }

// MarshalText encodes the redacted form.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.Redacted()), nil }
