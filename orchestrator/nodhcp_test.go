package orchestrator

import (
	"strings"
	"testing"
)

// Issue 10: a network with a subnet but no DHCP planned an update after
// every apply (drift that never converged).
func TestSubnetWithoutDHCPConverges(t *testing.T) {
	h := newFakeHost(t)
	// No DHCP and no allow rule from the host: the network needs no host
	// address, so libvirt's definition has no <ip> at all.
	src := strings.Replace(labProfile, "dhcp   = true", "dhcp   = false", 1)
	i, j := strings.Index(src, "  allow \"rdp\""), strings.Index(src, "snapshot_policy")
	src = src[:i] + "}\n" + src[j:]
	p := loadProfile(t, "lab", src)
	apply(t, plan(t, p, h))
	hp := plan(t, p, h)
	if hp.Plan.HasChanges() {
		t.Fatalf("second plan has changes: %+v", hp.Plan.Changes)
	}
}
