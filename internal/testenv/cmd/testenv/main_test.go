package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

// TestExec runs a command against a fresh instance: it sees the instance's
// URI and namespace, reaches the daemon, and its exit status comes back.
func TestExec(t *testing.T) {
	if err := testenv.Preflight(); err != nil {
		testenv.Unavailable(t, "libvirt", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	script := `echo "$LIBVIRT_DEFAULT_URI $LEGACYVM_NETNS $LEGACYVM_TEST_ACCEL" > ` + out + `
virsh -q net-list --all >/dev/null || exit 9
ip netns list | grep -q "^$LEGACYVM_NETNS" || exit 8
exit 3`
	if code := run([]string{"exec", "--", "sh", "-c", script}); code != 3 {
		t.Fatalf("testenv exec exit status = %d, want the command's 3", code)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || !strings.HasPrefix(f[0], "qemu:///system?socket=") || !strings.HasPrefix(f[1], testenv.NamePrefix) {
		t.Fatalf("command environment = %q", b)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", f[1])); err == nil {
		t.Errorf("namespace %s still exists after exec", f[1])
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"exec"}, {"nonsense"}, {"up", "extra"}, {"--accel", "xen", "reap", "x"}} {
		if code := run(args); code == 0 {
			t.Errorf("testenv %v: exit 0, want an error", args)
		}
	}
}
