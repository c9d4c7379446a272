// Package multihost proves issue 15's acceptance list end to end: the real
// legacyvm binary against two private libvirtds, each in a network and
// mount namespace of its own (internal/testenv.StartInstance), joined by a
// veth pair. Host A is reached through its unix socket, host B over
// qemu+tls:// with certificates the harness generates; the binary runs
// inside A's network namespace (ip netns exec), so it reaches B across the
// link exactly as a remote client does. Nothing is put in the root
// namespace.
//
//   - TestSpreadAcrossTwoHosts: a profile spread over both: VMs land where
//     plan said, the golden image is uploaded to B once and its SHA-256
//     checked, status, licenses and verify show both hosts; B's libvirtd
//     stopped in the middle of an apply: A's VMs complete, exit status 3
//     and the summary name what was skipped; B back, apply converges.
//
// Product keys are fake and every output is searched for them.
package multihost

import (
	"os"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
