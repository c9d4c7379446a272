// Package provision proves plan, apply, destroy and status against a real
// libvirtd (started by internal/testenv in its own network namespace) with
// the stand-in guest.
package provision

import (
	"os"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
