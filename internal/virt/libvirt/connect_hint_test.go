package libvirt

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Issue 10: a failed connection printed libvirt's raw text with no hint.
// No daemon is needed: the socket does not exist.
func TestConnectErrorSaysWhatToDo(t *testing.T) {
	_, err := Connect(context.Background(), "qemu:///system?socket=/nonexistent/legacyvm-test/libvirt-sock")
	if err == nil {
		t.Fatal("connected to a socket that does not exist")
	}
	if !errors.Is(err, virt.ErrConnection) {
		t.Errorf("error does not wrap ErrConnection: %v", err)
	}
	for _, want := range []string{"/nonexistent/legacyvm-test/libvirt-sock", "libvirtd is not running", "systemctl enable --now libvirtd", "libvirtd -d", "docs/install.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if h := ConnectHint("Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied"); !strings.Contains(h, "libvirt group") {
		t.Errorf("permission hint: %q", h)
	}
	if h := ConnectHint("some other failure"); h != "" {
		t.Errorf("hint for an unrelated failure: %q", h)
	}
}
