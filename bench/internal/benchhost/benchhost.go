// Package benchhost holds what every benchmark under bench/ reports about
// the machine it ran on, and the small file helpers they share.
package benchhost

import (
	"io"
	"os"
	"regexp"
	"strings"
)

// CopyFile copies src to dst (mode 0644).
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// CPUModel is the CPU's model name from /proc/cpuinfo.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
		return strings.TrimSpace(string(m[1]))
	}
	return "unknown CPU"
}

// Versions shortens `virsh version` output to "libvirt X, QEMU Y".
func Versions(v string) string {
	lib := regexp.MustCompile(`Using library: (libvirt [0-9.]+)`).FindStringSubmatch(v)
	hv := regexp.MustCompile(`Running hypervisor: (QEMU [0-9.]+)`).FindStringSubmatch(v)
	if lib == nil || hv == nil {
		return strings.Join(strings.Fields(v), " ")
	}
	return lib[1] + ", " + hv[1]
}

// LoadAvg is the one-minute load average.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
