package atomicfile

import (
	"bytes"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "main.hcl")
	if err := os.WriteFile(name, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, 0o664); err != nil { // beyond the usual umask
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.hcl")
	if err := os.Symlink("main.hcl", link); err != nil {
		t.Fatal(err)
	}
	if err := Replace(link, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(name); string(b) != "new\n" {
		t.Errorf("content %q", b)
	}
	if st, _ := os.Stat(name); st.Mode().Perm() != 0o664 {
		t.Errorf("mode %v, want 0664", st.Mode().Perm())
	}
	if st, _ := os.Lstat(link); st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symbolic link was replaced by a file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2 (no temporary file left)", len(entries))
	}
	if err := Replace(filepath.Join(dir, "none.hcl"), []byte("x")); err == nil {
		t.Errorf("Replace created a missing file")
	}
}

// TestReplaceFailedWrite: a write that fails half way (here the file size
// limit, RLIMIT_FSIZE, as on a full disk) leaves the original intact and
// no temporary file. The limit is set in a child process.
func TestReplaceFailedWrite(t *testing.T) {
	if os.Getenv("ATOMICFILE_CHILD") != "" {
		signal.Ignore(syscall.SIGXFSZ) // EFBIG instead of being killed
		lim := syscall.Rlimit{Cur: 4096, Max: 4096}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		err := Replace(os.Getenv("ATOMICFILE_CHILD"), bytes.Repeat([]byte("new content\n"), 2000))
		if err == nil {
			t.Fatal("Replace succeeded beyond the file size limit")
		}
		t.Logf("Replace: %v", err)
		return
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "main.hcl")
	orig := bytes.Repeat([]byte("original line\n"), 1000) // larger than the limit
	if err := os.WriteFile(name, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplaceFailedWrite$", "-test.v")
	cmd.Env = append(os.Environ(), "ATOMICFILE_CHILD="+name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "file too large") {
		t.Errorf("child did not hit the file size limit:\n%s", out)
	}
	if b, _ := os.ReadFile(name); !bytes.Equal(b, orig) {
		t.Errorf("original changed: %d bytes, want %d", len(b), len(orig))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (no temporary file left)", len(entries))
	}
}
