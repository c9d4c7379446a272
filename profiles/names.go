package profiles

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
)

// Name limits. Names become parts of libvirt object names and Linux
// interface names.
const (
	// MaxInstanceNameLen bounds a VM instance (libvirt domain) name.
	MaxInstanceNameLen = 50
	// MaxNetworkNameLen bounds a network name: the bridge is named
	// BridgePrefix+name and Linux interface names have at most 15
	// characters.
	MaxNetworkNameLen = 15 - len(BridgePrefix)
	// MaxNameLen bounds every other name.
	MaxNameLen = 50
	// MaxComputerNameLen is the Windows (NetBIOS) computer name limit.
	MaxComputerNameLen = 15
)

// BridgePrefix is prepended to a network name to form its Linux bridge name.
const BridgePrefix = "lvm-"

// CheckName reports whether name is usable as a legacyvm object name:
// lower-case letters, digits and hyphens, starting with a letter, not
// ending with a hyphen, no "--", at most max characters. The error is a
// sentence fit for a diagnostic detail.
func CheckName(name string, max int) error {
	if name == "" {
		return fmt.Errorf("the name is empty")
	}
	if len(name) > max {
		return fmt.Errorf("%q has %d characters; the limit is %d", name, len(name), max)
	}
	if c := name[0]; c < 'a' || c > 'z' {
		return fmt.Errorf("%q must start with a lower-case letter", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%q contains %q; use only lower-case letters, digits and hyphens", name, c)
		}
	}
	if strings.HasSuffix(name, "-") {
		return fmt.Errorf("%q ends with a hyphen", name)
	}
	if strings.Contains(name, "--") {
		return fmt.Errorf("%q contains \"--\"", name)
	}
	return nil
}

// suggestName turns an invalid name into a valid one when that is easy
// (lower-casing, replacing other characters by hyphens); "" if not.
func suggestName(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	s = strings.Trim(s, "-")
	for s != "" && (s[0] < 'a' || s[0] > 'z') {
		s = strings.TrimLeft(s[1:], "-")
	}
	if s == name || CheckName(s, MaxNameLen) != nil {
		return ""
	}
	return s
}

// CheckComputerName reports whether name is a valid Windows computer name:
// at most 15 characters, letters, digits and hyphens, not only digits, not
// starting or ending with a hyphen. "*" (Windows picks a random name) is
// accepted.
func CheckComputerName(name string) error {
	if name == "*" {
		return nil
	}
	if name == "" {
		return fmt.Errorf("the computer name is empty")
	}
	if len(name) > MaxComputerNameLen {
		return fmt.Errorf("computer name %q has %d characters; Windows allows at most %d", name, len(name), MaxComputerNameLen)
	}
	digits := true
	for _, c := range name {
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
			digits = false
		default:
			return fmt.Errorf("computer name %q contains %q; use only letters, digits and hyphens", name, c)
		}
	}
	if digits {
		return fmt.Errorf("computer name %q has only digits; Windows needs at least one letter or hyphen", name)
	}
	if strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return fmt.Errorf("computer name %q starts or ends with a hyphen", name)
	}
	return nil
}

// defaultComputerName derives a Windows computer name from an instance:
// the upper-cased instance name, shortened to 15 characters by cutting the
// VM name and keeping the "-N" suffix.
func defaultComputerName(vmName string, index int, counted bool) string {
	suffix := ""
	if counted {
		suffix = fmt.Sprintf("-%d", index)
	}
	base := vmName
	if len(base)+len(suffix) > MaxComputerNameLen {
		base = strings.TrimRight(base[:MaxComputerNameLen-len(suffix)], "-")
	}
	return strings.ToUpper(base + suffix)
}

// didYouMean returns ` Did you mean "x"?` when one of options is close to
// given (Levenshtein distance below 3, the threshold HCL uses), else "".
func didYouMean(given string, options []string) string {
	best, bestDist := "", 3
	for _, o := range options {
		if d := levenshtein.Distance(given, o, nil); d < bestDist {
			best, bestDist = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// quoteList renders options as "a", "b" or "c".
func quoteList(options []string) string {
	q := make([]string, len(options))
	for i, o := range options {
		q[i] = fmt.Sprintf("%q", o)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// plural renders "1 VM", "2 VMs" and so on; pl is the plural form.
func plural(n int, sing, pl string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, sing)
	}
	return fmt.Sprintf("%d %s", n, pl)
}

func sortStable(s []string, less func(a, b string) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}
