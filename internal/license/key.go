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

// KeyProblem says why ParseKey rejected its input.
type KeyProblem int

const (
	// KeyEmpty: nothing but spaces and dashes.
	KeyEmpty KeyProblem = iota + 1
	// KeyLength: not 25 characters once spaces and dashes are removed.
	KeyLength
	// KeyWindows8: the key contains an N, which only Windows 8 and later
	// keys have.
	KeyWindows8
	// KeyVowel: a vowel (A E I O U), which product keys never use.
	KeyVowel
	// KeyExcludedLetter: L, S or Z, which product keys never use.
	KeyExcludedLetter
	// KeyExcludedDigit: 0, 1 or 5, which product keys never use.
	KeyExcludedDigit
	// KeyNotAlphanumeric: a character that is neither an ASCII letter nor
	// a digit (nor a space or dash, which are ignored).
	KeyNotAlphanumeric
)

// KeyError is the error ParseKey returns. It describes the problem by
// position and character class only: it never holds or prints any part of
// the input.
type KeyError struct {
	Problem KeyProblem
	// Length is the number of characters after removing spaces and
	// dashes.
	Length int
	// Position is the 1-based position of the offending character among
	// those Length characters (0 when the problem is not one character).
	Position int
}

// Error implements error. The text is built from constants and numbers
// only.
func (e *KeyError) Error() string {
	where := ""
	if e.Position > 0 {
		where = fmt.Sprintf("character %d (group %d, place %d) ", e.Position, (e.Position-1)/5+1, (e.Position-1)%5+1)
	}
	var why string
	switch e.Problem {
	case KeyEmpty:
		why = "the key is empty"
	case KeyLength:
		why = fmt.Sprintf("it has %d characters without dashes and spaces, want 25 (five groups of five)", e.Length)
	case KeyWindows8:
		why = where + "is the letter N: keys with an N are Windows 8 or later keys, and a Windows 7 key never has one"
	case KeyVowel:
		why = where + "is a vowel, and product keys use no vowels"
	case KeyExcludedLetter:
		why = where + "is one of the letters L, S or Z, which product keys never use"
	case KeyExcludedDigit:
		why = where + "is one of the digits 0, 1 or 5, which product keys never use"
	case KeyNotAlphanumeric:
		why = where + "is not a letter or digit (only dashes and spaces may separate the groups)"
	default:
		why = "unknown problem"
	}
	return ErrKeyFormat.Error() + ": " + why
}

// Unwrap makes errors.Is(err, ErrKeyFormat) true.
func (e *KeyError) Unwrap() error { return ErrKeyFormat }

// isSeparator reports whether ParseKey ignores r.
func isSeparator(r rune) bool {
	return r == '-' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
}

// ParseKey normalises s (ASCII case, spaces, tabs, newlines and dashes are
// ignored) and checks that it is 25 characters from Alphabet. A key with an
// N is rejected as a Windows 8 or later key. Errors are *KeyError values
// wrapping ErrKeyFormat and never contain the input or any part of it.
func ParseKey(s string) (Key, error) {
	raw := make([]rune, 0, 25)
	for _, r := range s {
		switch {
		case isSeparator(r):
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		raw = append(raw, r)
	}
	switch {
	case len(raw) == 0:
		return Key{}, &KeyError{Problem: KeyEmpty}
	case len(raw) != 25:
		return Key{}, &KeyError{Problem: KeyLength, Length: len(raw)}
	}
	// An N anywhere says more than any other problem: report it first.
	for i, r := range raw {
		if r == 'N' {
			return Key{}, &KeyError{Problem: KeyWindows8, Length: 25, Position: i + 1}
		}
	}
	for i, r := range raw {
		if strings.ContainsRune(Alphabet, r) {
			continue
		}
		e := &KeyError{Length: 25, Position: i + 1}
		switch {
		case strings.ContainsRune("AEIOU", r):
			e.Problem = KeyVowel
		case strings.ContainsRune("LSZ", r):
			e.Problem = KeyExcludedLetter
		case strings.ContainsRune("015", r):
			e.Problem = KeyExcludedDigit
		default:
			e.Problem = KeyNotAlphanumeric
		}
		return Key{}, e
	}
	v := string(raw)
	return Key{value: v[0:5] + "-" + v[5:10] + "-" + v[10:15] + "-" + v[15:20] + "-" + v[20:25]}, nil
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
