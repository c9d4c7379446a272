// Package provision proves issue 3's acceptance list end to end: the real
// legacyvm binary (internal/e2eutil) against a private libvirtd that
// internal/testenv starts in its own network namespace, with the stand-in
// guest in place of Windows.
//
//   - TestExamples: every example applied; libvirt's live XML parsed and
//     checked object by object; answer media, computer name, baseline;
//     second apply, status, destroy.
//   - TestChanges: idempotent plan/apply (also after a reset), memory as an
//     in-place update, a new golden image as a confirmed replace.
//   - TestKillConvergence: SIGKILL at five points of an apply of 3 VMs.
//   - TestDestroy: nothing owned is left, nothing foreign is touched;
//     clashing names are located diagnostics.
//   - TestConcurrentApplies: the profile lock.
//   - TestGuestAddress: DHCP address from the reservation, status.
//   - TestDoctor: hosts with something missing.
//
// Tests run in parallel, each on its own e2eutil.Host (pool, golden image,
// lock and log directories) of the process's one libvirtd; they use
// distinct VM names, networks and subnets. Product keys are fake and every
// output is searched for them.
package provision

import (
	"os"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
