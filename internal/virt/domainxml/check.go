package domainxml

import (
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// keyShape matches a Windows product key written with dashes (any case) or
// as 25 upper-case characters in a row, both over the product-key alphabet
// (license.Alphabet, repeated here to keep this package free of the licence
// code).
var keyShape = regexp.MustCompile(`(?i:[BCDFGHJKMPQRTVWXY2346789]{5}(?:-[BCDFGHJKMPQRTVWXY2346789]{5}){4})|[BCDFGHJKMPQRTVWXY2346789]{25}`)

// looksLikeKey reports whether s contains something shaped like a product
// key. The redacted display form (XXXXX-XXXXX-XXXXX-XXXXX-ABCDE) is not a
// key.
func looksLikeKey(s string) bool {
	for _, m := range keyShape.FindAllString(s, -1) {
		raw := strings.ToUpper(strings.ReplaceAll(m, "-", ""))
		if raw[:20] != strings.Repeat("X", 20) {
			return true
		}
	}
	return false
}

// checkNoKey refuses a value that looks like a product key. Every free-text
// field that reaches libvirt XML passes through it: titles, SMBIOS strings,
// filter parameters, metadata, snapshot descriptions. The error never
// repeats the value.
func checkNoKey(what, s string) error {
	if looksLikeKey(s) {
		return fmt.Errorf("%s looks like a Windows product key; keys must never be written to libvirt XML", what)
	}
	return nil
}

// checkName checks a libvirt object name: not empty, no slash, no control
// characters or leading/trailing space.
func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty", kind)
	}
	if strings.TrimSpace(name) != name || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%s name %q: no slash or surrounding spaces allowed", kind, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s name %q: control characters are not allowed", kind, name)
		}
	}
	return nil
}

// checkUUID accepts the canonical 36-character form only, because libvirt
// echoes that form and callers compare UUIDs as strings.
func checkUUID(what, s string) error {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 || u.String() != strings.ToLower(s) {
		return fmt.Errorf("%s uuid %q is not a canonical UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", what, s)
	}
	return nil
}

// unicastMAC parses a 6-byte MAC and returns its lower-case colon form. It
// refuses group (multicast/broadcast) addresses and the zero address.
func unicastMAC(what, s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || !strings.Contains(s, ":") {
		return "", fmt.Errorf("%s MAC %q is not a colon-separated 6-byte MAC address", what, s)
	}
	if hw[0]&1 == 1 {
		return "", fmt.Errorf("%s MAC %q is a multicast or broadcast address", what, s)
	}
	if hw.String() == "00:00:00:00:00:00" {
		return "", fmt.Errorf("%s MAC %q is the zero address", what, s)
	}
	return hw.String(), nil
}

// bytesOf converts a libvirt scaled integer (value + unit) to bytes, with
// libvirt's rules: "b"/"bytes"; a letter k, m, g, t, p or e (any case)
// alone or followed by "iB" is a power of 1024, followed by "B" a power of
// 1000. An empty unit means def.
func bytesOf(value uint64, unit, def string) (uint64, error) {
	if unit == "" {
		unit = def
	}
	var m uint64
	switch lu := strings.ToLower(unit); {
	case lu == "b" || lu == "bytes":
		m = 1
	default:
		i := strings.IndexByte("kmgtpe", lu[0])
		if i < 0 {
			return 0, fmt.Errorf("unknown size unit %q", unit)
		}
		var base uint64
		switch lu[1:] {
		case "", "ib":
			base = 1024
		case "b":
			base = 1000
		default:
			return 0, fmt.Errorf("unknown size unit %q", unit)
		}
		m = 1
		for range i + 1 {
			m *= base
		}
	}
	if value != 0 && value > ^uint64(0)/m {
		return 0, fmt.Errorf("size %d %s overflows", value, unit)
	}
	return value * m, nil
}
