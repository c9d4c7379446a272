package orchestrator

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// While apply provisions a VM its guest powers itself off on purpose (the
// specialize pass, Windows Setup); apply then takes the baseline and starts
// the VM itself. The daemon must leave such a VM alone: reverting or
// starting it would race apply's own start.
func TestDaemonLeavesVMsBeingProvisionedAlone(t *testing.T) {
	h := newFakeHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hp := plan(t, loadProfile(t, "testers", revertProfile, "%MEMORY%", "false"), h)
	apply(t, hp)
	// The record as it is during provisioning.
	spec := hp.desired.VMs[0].Spec
	md := *spec.Metadata
	md.Provisioned = false
	spec.Metadata = &md
	if _, err := h.DefineDomain(ctx, spec); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	dm := &Daemon{Connect: func(ctx context.Context) (virt.Hypervisor, error) { return nopClose{h}, nil }, Tick: time.Hour, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	go func() { _ = dm.Run(ctx) }()
	waitFor(t, "daemon connected", func() bool { return strings.Contains(logs.String(), "connected to libvirt") })
	if err := h.GuestPowerOff("t"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // nothing to wait for: the daemon must do nothing
	d, _ := h.GetDomain(ctx, "t")
	if d.State != virt.StateShutoff || strings.Contains(logs.String(), "revert") {
		t.Errorf("a VM being provisioned was touched: state %s, logs:\n%s", d.State, logs.String())
	}
}
