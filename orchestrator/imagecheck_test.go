package orchestrator

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/legacyvm/legacyvm/profiles"
)

// TestCheckLocalImage: only readable regular files that look like disk
// images, outside system directories (also through a link), are golden
// images; /dev, /etc and /proc files are refused.
func TestCheckLocalImage(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mbr := make([]byte, 4096)
	mbr[510], mbr[511] = 0x55, 0xaa
	qcow := append([]byte{'Q', 'F', 'I', 0xfb, 0, 0, 0, 3}, make([]byte, 1000)...)
	link := filepath.Join(dir, "to-shadow.qcow2")
	if err := os.Symlink("/etc/shadow", link); err != nil {
		t.Fatal(err)
	}
	devLink := filepath.Join(dir, "to-null.qcow2")
	if err := os.Symlink("/dev/null", devLink); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.qcow2")
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{write("g.qcow2", qcow), ""},
		{write("g.raw", mbr), ""},
		{filepath.Join(dir, "missing.qcow2"), ""},
		{write("notes.txt", bytes.Repeat([]byte("text\n"), 200)), "Golden image is not a disk image"},
		{link, "Golden image in a system directory"},
		{devLink, "Golden image in a system directory"},
		{"/dev/null", "Golden image in a system directory"},
		{"/etc/hostname", "Golden image in a system directory"},
		{"/proc/self/mem", "Golden image in a system directory"},
		{fifo, "Golden image is not a file"},
		{dir, "Golden image is not a file"},
	}
	for _, tt := range tests {
		got, detail := checkLocalImage(statLocalFile(tt.path), tt.path)
		if got != tt.want {
			t.Errorf("checkLocalImage(%s) = %q (%s), want %q", tt.path, got, detail, tt.want)
		}
	}
}

// TestPlanRefusesSystemImages: the profile loader refuses images and ISOs
// in system directories before anything touches the host.
func TestPlanRefusesSystemImages(t *testing.T) {
	for _, img := range []string{"/dev/sda", "/etc/shadow", "/proc/self/mem", "/run/x.qcow2", "/boot/vmlinuz", "/"} {
		dir := filepath.Join(t.TempDir(), "sysimg")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		src := "vm \"x\" {\n  os = \"win7-x64\"\n  disk {\n    image = \"" + img + "\"\n    prepare = \"none\"\n  }\n}\n"
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		_, diags := profiles.Load(dir, profiles.LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
		found := false
		for _, d := range diags {
			found = found || d.Summary == "Path in a system directory" && d.Subject != nil
		}
		if !found {
			t.Errorf("image = %q: %v", img, diags)
		}
	}
}

// TestCheckLocalISOThroughLink: an ISO path that is a link into a system
// directory is refused (the guest would read that file as a CD).
func TestCheckLocalISOThroughLink(t *testing.T) {
	link := filepath.Join(t.TempDir(), "win7.iso")
	if err := os.Symlink("/etc/hostname", link); err != nil {
		t.Fatal(err)
	}
	if got, detail := checkLocalISO(statLocalFile(link), link, "qemu:///system"); got != "Installation ISO in a system directory" {
		t.Errorf("checkLocalISO(link to /etc/hostname) = %q (%s)", got, detail)
	}
}
