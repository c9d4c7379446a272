// Package isolation proves legacyvm's network isolation from the inside
// and from the outside, on a real libvirtd (started by internal/testenv in
// its own network namespace) with stand-in guests:
//
//   - the probe matrix: guests on applied profiles (a shared network, a
//     port-isolated network, two networks side by side) try every flow the
//     design forbids and every flow it allows, driven over their control
//     port once their peers are up, and report on their serial consoles;
//   - tamper detection: what someone does by hand with virsh (a filter
//     reference removed, a <forward> added, a guard rule edited, an uplink
//     enslaved) makes `legacyvm verify` fail, `plan` shows the drift and
//     `apply` repairs it;
//   - host conditions (rp_filter, bridge-nf-call-iptables) flagged by
//     doctor and verify, with their fixes.
//
// All traffic stays inside the harness's network namespace: host-side
// commands run there through testenv.Env.Run.
package isolation

import (
	"os"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
