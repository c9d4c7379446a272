// Package images proves golden-image builds end to end against a real
// libvirtd (internal/testenv) with the stand-in installer: legacyvm image
// build runs the install, media, steps and generalize phases in a build VM
// without a network, registers the result as a read-only volume with its
// metadata volume, VMs clone it by reference and go through their own
// specialize pass, a rebuild is only rolled out when asked for, an image in
// use cannot be deleted, and failed, timed-out or killed builds leave
// nothing registered and nothing behind. The fake product keys and
// passwords appear in no output, no libvirt XML and no byte of an image.
package images

import (
	"os"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
