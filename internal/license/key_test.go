package license

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// fakeKey is an obviously fake key that matches the Windows 7 format.
const fakeKey = "BCDFG-HJKMP-QRTVW-XY234-6789B"

func TestParseKey(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // normalised key when ok
		problem KeyProblem
		pos     int
		length  int
	}{
		{name: "canonical 29 chars", in: fakeKey, want: fakeKey},
		{name: "no dashes 25 chars", in: "BCDFGHJKMPQRTVWXY2346789B", want: fakeKey},
		{name: "lower case", in: "bcdfg-hjkmp-qrtvw-xy234-6789b", want: fakeKey},
		{name: "mixed case", in: "bCdFg-HjKmP-qRtVw-Xy234-6789b", want: fakeKey},
		{name: "spaces instead of dashes", in: "BCDFG HJKMP QRTVW XY234 6789B", want: fakeKey},
		{name: "surrounding whitespace and newline", in: "  " + fakeKey + "\r\n", want: fakeKey},
		{name: "tabs and stray dashes", in: "\tBCDFG--HJKMP-QRTVW-XY234-6789B-", want: fakeKey},
		{name: "every alphabet character", in: "BCDFGHJKMPQRTVWXY23467899", want: "BCDFG-HJKMP-QRTVW-XY234-67899"},

		{name: "empty", in: "", problem: KeyEmpty},
		{name: "only separators", in: " - - ", problem: KeyEmpty},
		{name: "24 chars", in: "BCDFG-HJKMP-QRTVW-XY234-6789", problem: KeyLength, length: 24},
		{name: "26 chars", in: "BCDFG-HJKMP-QRTVW-XY234-6789BB", problem: KeyLength, length: 26},
		{name: "four groups", in: "BCDFG-HJKMP-QRTVW-XY234", problem: KeyLength, length: 20},
		{name: "six groups", in: fakeKey + "-BCDFG", problem: KeyLength, length: 30},
		{name: "multibyte counts as one character", in: "BCDFG-HJKMP-QRTVW-XY234-6789é", problem: KeyNotAlphanumeric, pos: 25, length: 25},
		{name: "windows 8 key has N", in: "BCDFG-HJKMP-QRTVW-XY234-6789N", problem: KeyWindows8, pos: 25, length: 25},
		{name: "N wins over other problems", in: "ACDFG-HJKMP-NRTVW-XY234-6789B", problem: KeyWindows8, pos: 11, length: 25},
		{name: "lower-case n", in: "bcdfn-hjkmp-qrtvw-xy234-6789b", problem: KeyWindows8, pos: 5, length: 25},
		{name: "separator in group", in: "BCDFG-HJKMP-QRTVW-XY234-678_B", problem: KeyNotAlphanumeric, pos: 24, length: 25},
		{name: "dot", in: "BCDFG.HJKMP.QRTVW.XY234.6789B", problem: KeyLength, length: 29},
	}
	// Each excluded character, at a known position.
	for _, c := range "AEIOU" {
		tests = append(tests, struct {
			name    string
			in      string
			want    string
			problem KeyProblem
			pos     int
			length  int
		}{name: "vowel " + string(c), in: "BCDFG-HJ" + string(c) + "MP-QRTVW-XY234-6789B", problem: KeyVowel, pos: 8, length: 25})
	}
	for _, c := range "LSZ" {
		tests = append(tests, struct {
			name    string
			in      string
			want    string
			problem KeyProblem
			pos     int
			length  int
		}{name: "letter " + string(c), in: "BCDFG-HJKMP-QRTVW-XY234-6789" + string(c), problem: KeyExcludedLetter, pos: 25, length: 25})
	}
	for _, c := range "015" {
		tests = append(tests, struct {
			name    string
			in      string
			want    string
			problem KeyProblem
			pos     int
			length  int
		}{name: "digit " + string(c), in: string(c) + "CDFG-HJKMP-QRTVW-XY234-6789B", problem: KeyExcludedDigit, pos: 1, length: 25})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if tt.problem == 0 {
				if err != nil {
					t.Fatalf("ParseKey: unexpected error: %v", err)
				}
				if k.Reveal() != tt.want {
					t.Fatalf("ParseKey = %s (last group), want a different key", k.LastGroup())
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseKey accepted an invalid key (problem %d expected)", tt.problem)
			}
			if !errors.Is(err, ErrKeyFormat) {
				t.Errorf("error does not wrap ErrKeyFormat: %v", err)
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error is %T, want *KeyError", err)
			}
			if ke.Problem != tt.problem || ke.Position != tt.pos || ke.Length != tt.length {
				t.Errorf("KeyError{Problem:%d Position:%d Length:%d}, want {%d %d %d}; message: %v",
					ke.Problem, ke.Position, ke.Length, tt.problem, tt.pos, tt.length, err)
			}
			if !k.IsZero() {
				t.Errorf("a rejected key is not zero")
			}
			checkKeyErrorSecret(t, tt.in, err)
		})
	}
}

func TestParseKeyMessages(t *testing.T) {
	// The messages are what users read: check the important words.
	tests := []struct {
		in   string
		want []string
	}{
		{"BCDFG-HJKMP-QRTVW-XY234-6789N", []string{"Windows 8 or later", "character 25 (group 5, place 5)"}},
		{"BCDFG-HJKMP-QRTVW-XY234", []string{"20 characters", "want 25"}},
		{"BCDFG-HJOMP-QRTVW-XY234-6789B", []string{"character 8 (group 2, place 3)", "vowel"}},
		{"BCDFG-HJKMP-QRTVW-XY234-6789Z", []string{"L, S or Z"}},
		{"BCDFG-HJKMP-QRTVW-XY234-67890", []string{"0, 1 or 5"}},
		{"", []string{"empty"}},
	}
	for _, tt := range tests {
		_, err := ParseKey(tt.in)
		if err == nil {
			t.Fatalf("ParseKey accepted an invalid key")
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("message %q does not contain %q", err, w)
			}
		}
	}
}

func TestKeyNeverPrintsItself(t *testing.T) {
	k, err := ParseKey(fakeKey)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(struct{ K Key }{k})
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := k.MarshalText()
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x %d", k, k, k, k, k, k, k),
		fmt.Sprintf("%v", []Key{k}), fmt.Sprintf("%+v", struct{ K Key }{k}), fmt.Sprintf("%#v", struct{ K Key }{k}),
		k.String(), k.GoString(), string(js), string(txt), k.Redacted(),
	}
	for _, o := range outs {
		for _, g := range strings.Split(fakeKey, "-")[:4] {
			if strings.Contains(o, g) {
				t.Errorf("output %q shows a hidden group of the key", o)
			}
		}
		if strings.Contains(o, fakeKey) {
			t.Errorf("output %q shows the key", o)
		}
	}
	if got, want := k.Redacted(), "XXXXX-XXXXX-XXXXX-XXXXX-6789B"; got != want {
		t.Errorf("Redacted = %q, want %q", got, want)
	}
	if k.LastGroup() != "6789B" {
		t.Errorf("LastGroup = %q", k.LastGroup())
	}
	var zero Key
	if zero.Redacted() != "" || zero.LastGroup() != "" || !zero.IsZero() {
		t.Errorf("zero key: Redacted %q LastGroup %q", zero.Redacted(), zero.LastGroup())
	}
}

// checkKeyErrorSecret asserts the secrecy properties of a ParseKey error for
// input in: it contains no 5-character group of the normalised input, not
// the input itself, and it depends only on the shape of the input (the
// class of each character), never on which characters were typed.
func checkKeyErrorSecret(t *testing.T, in string, err error) {
	t.Helper()
	msg := err.Error()
	norm := normaliseForTest(in)
	for i := 0; i+5 <= len(norm); i += 5 {
		if g := string(norm[i : i+5]); strings.Contains(msg, g) {
			t.Fatalf("error contains group %d of the input: %s", i/5+1, redactForTest(msg, g))
		}
	}
	// Inputs with lower-case letters are covered by the shape check below;
	// the message is English and naturally contains lower-case words.
	if tr := strings.TrimSpace(in); utf8.RuneCountInString(tr) >= 5 && !hasLower(tr) && strings.Contains(msg, tr) {
		t.Fatalf("error contains the input")
	}
	_, err2 := ParseKey(shiftClasses(in))
	if err2 == nil || err2.Error() != msg {
		t.Fatalf("error depends on the characters of the input, not only on their classes")
	}
}

func normaliseForTest(s string) []rune {
	var out []rune
	for _, r := range s {
		if isSeparator(r) {
			continue
		}
		out = append(out, unicode.ToUpper(r))
	}
	return out
}

func hasLower(s string) bool {
	for _, r := range s {
		if r >= 'a' && r <= 'z' {
			return true
		}
	}
	return false
}

func redactForTest(msg, g string) string { return strings.ReplaceAll(msg, g, "<group>") }

// shiftClasses replaces every character by the next one of its class, so
// the result has the same shape (length, separators, positions of vowels,
// excluded letters and digits, N) but different characters.
func shiftClasses(s string) string {
	classes := []string{
		"BCDFGHJKMPQRTVWXY2346789", "bcdfghjkmpqrtvwxy", "AEIOU", "aeiou",
		"LSZ", "lsz", "015", "N", "n",
	}
	var b strings.Builder
	for _, r := range s {
		if isSeparator(r) {
			b.WriteRune(r)
			continue
		}
		done := false
		for _, c := range classes {
			if i := strings.IndexRune(c, r); i >= 0 {
				rs := []rune(c)
				b.WriteRune(rs[(i+1)%len(rs)])
				done = true
				break
			}
		}
		if !done {
			// Anything else (punctuation, non-ASCII, invalid UTF-8) is
			// "not alphanumeric"; the other letters are vowels or L/S/Z.
			b.WriteRune('#')
		}
	}
	return b.String()
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		fakeKey, "BCDFGHJKMPQRTVWXY2346789B", "bcdfg-hjkmp-qrtvw-xy234-6789b",
		"BCDFG HJKMP QRTVW XY234 6789B", "", "-", "BCDFG-HJKMP-QRTVW-XY234-6789N",
		"BCDFG-HJKMP-QRTVW-XY234-6789", "BCDFG-HJKMP-QRTVW-XY234-6789BB",
		"ACDFG-HJKMP-QRTVW-XY234-6789B", "BCDFG-HJKMP-QRTVW-XY234-67890",
		"BCDFG-HJKMP-QRTVW-XY234-6789é", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec\xeb\xea\xe9\xe8\xe7",
		"WINDOWS 7 PRODUCT KEY", "characters", "L, S or Z", "0, 1 or 5 ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParseKey(in)
		if err != nil {
			if !errors.Is(err, ErrKeyFormat) {
				t.Fatalf("error does not wrap ErrKeyFormat")
			}
			checkKeyErrorSecret(t, in, err)
			return
		}
		v := k.Reveal()
		if len(v) != 29 {
			t.Fatalf("parsed key has %d characters", len(v))
		}
		for i, r := range v {
			if (i+1)%6 == 0 {
				if r != '-' {
					t.Fatalf("no dash at %d", i)
				}
			} else if !strings.ContainsRune(Alphabet, r) {
				t.Fatalf("parsed key has a character outside the alphabet at %d", i)
			}
		}
		k2, err := ParseKey(v)
		if err != nil || k2 != k {
			t.Fatalf("a parsed key does not re-parse to itself (err %v)", err)
		}
		if s := fmt.Sprint(k); strings.Contains(s, v[:5]) && v[:5] != v[24:] {
			t.Fatalf("printing the key shows its first group")
		}
	})
}
