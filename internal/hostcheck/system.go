package hostcheck

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/legacyvm/legacyvm/internal/event"
)

// Severity of a finding.
type Severity string

const (
	SeverityOK   Severity = "ok"
	SeverityInfo Severity = "info"
	SeverityWarn Severity = "warning"
	SeverityFail Severity = "error"
)

// Finding is one host check: what was checked, what was found and, when
// something is wrong, how to fix it.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
	// Hint names what the user can do next (event.HintVerifyOnHost: check
	// on the libvirt host itself); front ends word it.
	Hint event.Hint `json:"hint,omitempty"`
}

// System reads the local system: the machine legacyvm runs on, which is
// the libvirt host when the URI is local. Tests substitute a fake root.
type System struct {
	// Root prefixes every path read (e.g. a test directory holding
	// proc/sys/...); "" is the real root.
	Root string
	// LookPath finds programs (nil: exec.LookPath).
	LookPath func(string) (string, error)
}

// path is the absolute path of a root-relative path ("proc/sys/...").
func (h System) path(p string) string {
	root := h.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

// Read returns the trimmed content of a root-relative file ("proc/sys/..."),
// false when it cannot be read.
func (h System) Read(path string) (string, bool) {
	b, err := os.ReadFile(h.path(path))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// Exists reports whether a root-relative path exists.
func (h System) Exists(path string) bool {
	_, err := os.Stat(h.path(path))
	return err == nil
}

// Has reports whether a program is installed.
func (h System) Has(name string) bool {
	lp := h.LookPath
	if lp == nil {
		lp = exec.LookPath
	}
	_, err := lp(name)
	return err == nil
}

// IsLocal reports whether a libvirt URI names this machine (no host
// part), so local files describe the libvirt host.
func IsLocal(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	return u.Host == "" || u.Hostname() == "localhost"
}
