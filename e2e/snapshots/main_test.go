// Package snapshots proves legacyvm's snapshot policies end to end (issue
// 4): baselines, reset, manual snapshots, schedules and retention, the
// daemon's revert on shutdown and its reconnect after a libvirtd restart,
// and destroy, against a real libvirtd (internal/testenv) with the
// stand-in guest.
package snapshots

import (
	"os"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
