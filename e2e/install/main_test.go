// Package install proves the licence flows end to end against a real
// libvirtd (internal/testenv) with the stand-in guest: installation from
// media with generated Autounattend.xml answer media, the specialize pass of
// a golden-image clone, seat accounting that refuses a retail key already
// used on the host before anything is created, the licence inventory, and
// that the product key and the administrator password appear nowhere
// outside the answer media: no command output, log, error, libvirt XML,
// metadata, snapshot description or file left on disk.
package install

import (
	"os"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
