package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/relay"
	"github.com/legacyvm/legacyvm/internal/virt"
)

const doorsProfile = `
network "lab" {
  subnet = "10.80.0.0/24"
  dhcp   = true
  egress "db" {
    to   = "db.corp:1433"
    port = 11433
  }
}
vm "app" {
  os     = "win7-x64"
  memory = "2GiB"
  disk {
    image   = "%IMAGE%"
    prepare = "none"
  }
  network = network.lab
  publish "rdp" {
    listen = "0.0.0.0:13389"
    port   = 3389
    from   = [%FROM%]
  }
}
`

func doorChanges(p *Plan) map[string]Change {
	out := map[string]Change{}
	for _, c := range p.Changes {
		if c.Kind == KindDoor {
			out[c.Name] = c
		}
	}
	return out
}

// Doors are planned as objects of their own, recorded in the VM's
// metadata, opened in the network's guard, and changed without touching
// the VM; the relay's view (hostDoors) is read back from libvirt alone.
func TestDoorsArePlannedRecordedAndRelayed(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "doors", doorsProfile, "%FROM%", `"192.0.2.0/24"`)
	hp := plan(t, p, h)
	dc := doorChanges(hp.Plan)
	if len(dc) != 2 || dc["app/publish/rdp"].Action != ActionCreate || dc["app/egress/db"].Action != ActionCreate {
		t.Fatalf("door changes %+v", dc)
	}
	if d := strings.Join(dc["app/publish/rdp"].Details, ";"); !strings.Contains(d, "listens on 0.0.0.0:13389 for 192.0.2.0/24") {
		t.Errorf("publish details %q", d)
	}
	var guard *virt.FilterSpec
	for _, dn := range hp.desired.Networks {
		guard = &dn.Filter
	}
	if len(guard.Doors) != 2 || guard.Doors[0].Kind != virt.DoorEgress || guard.Doors[0].GuestIP.IsValid() ||
		guard.Doors[1].Kind != virt.DoorPublish || guard.Doors[1].Port != 3389 || !guard.Doors[1].GuestIP.IsValid() {
		t.Fatalf("filter doors %+v", guard.Doors)
	}
	apply(t, hp)
	d, _ := h.GetDomain(ctx, "app")
	if len(d.Metadata.Doors) != 2 {
		t.Fatalf("metadata doors %+v", d.Metadata.Doors)
	}
	if hp2 := plan(t, p, h); hp2.Plan.HasChanges() {
		t.Fatalf("second plan has changes: %+v", hp2.Plan.Changes)
	}

	doors, probs, err := hostDoors(ctx, h)
	if err != nil || len(probs) != 0 || len(doors) != 2 {
		t.Fatalf("HostDoors = %+v, %v, %v", doors, probs, err)
	}
	n, _ := h.GetNetwork(ctx, "lvm-lab")
	ip := reservedIP(n, d.Interfaces[0].MAC)
	for _, door := range doors {
		switch door.Key {
		case "publish/app/rdp":
			if door.Listen != "0.0.0.0:13389" || door.Target != ip.String()+":3389" || door.LocalAddr != n.HostAddress ||
				len(door.From) != 1 || door.From[0] != netip.MustParsePrefix("192.0.2.0/24") {
				t.Errorf("publish door %+v", door)
			}
		case "egress/lvm-lab/db":
			if door.Listen != n.HostAddress.String()+":11433" || door.Target != "db.corp:1433" || door.From[0] != n.Subnet {
				t.Errorf("egress door %+v", door)
			}
		default:
			t.Errorf("unexpected door %+v", door)
		}
	}

	// from changes: the door is updated, the VM is not touched.
	p2 := loadProfile(t, "doors", doorsProfile, "%FROM%", `"192.0.2.0/24", "198.51.100.7"`)
	hp3 := plan(t, p2, h)
	c := doorChanges(hp3.Plan)["app/publish/rdp"]
	if c.Action != ActionUpdate || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "from [192.0.2.0/24] -> [192.0.2.0/24, 198.51.100.7/32]") {
		t.Fatalf("door change %+v", c)
	}
	if vc := changesByName(hp3.Plan)["vm/app"]; vc.Action != ActionNoop {
		t.Fatalf("vm change %+v", vc)
	}
	apply(t, hp3)
	d2, _ := h.GetDomain(ctx, "app")
	if got := d2.Metadata.Doors[0].From; len(got) != 2 || d2.UUID != d.UUID || d2.State != virt.StateRunning {
		t.Fatalf("after the update: doors %+v, state %s", d2.Metadata.Doors, d2.State)
	}

	// A door removed from the profile is planned as a delete.
	src := doorsProfile[:strings.Index(doorsProfile, "  publish")] + "}\n"
	hp4 := plan(t, loadProfile(t, "doors", src), h)
	if c := doorChanges(hp4.Plan)["app/publish/rdp"]; c.Action != ActionDelete {
		t.Fatalf("removed door planned as %+v", c)
	}
	apply(t, hp4)
	if d3, _ := h.GetDomain(ctx, "app"); len(d3.Metadata.Doors) != 1 || d3.Metadata.Doors[0].Name != "db" {
		t.Fatalf("after the delete: %+v", d3.Metadata.Doors)
	}
}

// A listen port someone else holds is a located diagnostic at plan time;
// the relay's own listener is not.
func TestDoorListenPortTaken(t *testing.T) {
	h := newFakeHost(t)
	p := loadProfile(t, "doors", doorsProfile, "%FROM%", `"192.0.2.0/24"`)
	busy := func(addr string) error {
		if addr == "0.0.0.0:13389" {
			return errors.New("listen tcp 0.0.0.0:13389: bind: address already in use")
		}
		return syscall.EADDRNOTAVAIL
	}
	opts := Options{DefaultURI: "test:///fake", ProbeListen: busy}
	_, diags, err := planProfile(context.Background(), p, connector(h), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 || diags[0].Summary != "Listen port already taken" || diags[0].Subject == nil ||
		!strings.HasSuffix(diags[0].Subject.Filename, "main.hcl") || !strings.Contains(diags[0].Detail, "address already in use") {
		t.Fatalf("diagnostics %v", diags)
	}
	opts.OwnListeners = map[string]bool{"0.0.0.0:13389": true}
	if _, diags, err := planProfile(context.Background(), p, connector(h), opts); err != nil || len(diags) != 0 {
		t.Fatalf("with the relay holding the port: %v, %v", diags, err)
	}
}

// hexAddr writes addr:port the way /proc/net/tcp does (IPv4, each 32-bit
// word little-endian).
func hexAddr(a netip.Addr, port uint16) string {
	b := a.As4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], port)
}

// verify's door checks: the relay listens with the declared from, nothing
// else listens on the bridge address, the bridge does not forward.
func TestVerifyDoors(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	p := loadProfile(t, "doors", doorsProfile, "%FROM%", `"192.0.2.0/24"`)
	apply(t, plan(t, p, h))
	doors, _, err := hostDoors(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := h.GetNetwork(ctx, "lvm-lab")
	root := t.TempDir()
	write := func(path, s string) {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	header := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	line := func(sl int, a netip.Addr, port uint16, st string) string {
		return fmt.Sprintf("  %d: %s 00000000:0000 %s 00000000:00000000 00:00000000 00000000     0        0 1%d 1 0000000000000000 100 0 0 10 0\n", sl, hexAddr(a, port), st, sl)
	}
	write("sys/class/net/lvm-lab/address", "52:54:00:00:00:01\n")
	write("proc/sys/net/ipv4/ip_forward", "0\n")
	write("proc/sys/net/ipv4/conf/lvm-lab/forwarding", "0\n")
	write("proc/net/tcp", header+
		line(0, n.HostAddress, 11433, "0A")+ // the relay's egress port
		line(1, netip.MustParseAddr("0.0.0.0"), 13389, "0A")+ // the relay's publish listener
		line(2, n.HostAddress, 8080, "01")) // an established connection, not a listener
	state := &daemonstate.State{PID: os.Getpid()}
	for _, d := range doors {
		state.Doors = append(state.Doors, relay.DoorStatus{Door: d, Listening: true})
	}
	opts := VerifyOptions{URI: "test:///fake", Profile: p, System: hostcheck.System{Root: root},
		DaemonState: func() (*daemonstate.State, error) { return state, nil }}
	run := func() *Verification {
		t.Helper()
		v, err := verifyHost(ctx, h, opts)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := run()
	for _, c := range []string{checkDoorsCheck, checkBridgeListeners, checkForwarding} {
		if st, why := status(v, "app", c); st != CheckPass {
			t.Errorf("%s = %s (%s), want pass", c, st, why)
		}
	}
	if _, why := status(v, "app", checkDoorsCheck); !strings.Contains(why, "publish/app/rdp on 0.0.0.0:13389 from 192.0.2.0/24") {
		t.Errorf("doors check says %q", why)
	}

	// Something else listening on the bridge address fails.
	write("proc/net/tcp", header+line(0, n.HostAddress, 11433, "0A")+line(1, n.HostAddress, 22, "0A"))
	if st, why := status(run(), "app", checkBridgeListeners); st != CheckFail || !strings.Contains(why, n.HostAddress.String()+":22/tcp") {
		t.Errorf("bridge-listeners = %s (%s), want fail naming :22", st, why)
	}
	// Forwarding turned on for the bridge fails.
	write("proc/sys/net/ipv4/conf/lvm-lab/forwarding", "1\n")
	if st, why := status(run(), "app", checkForwarding); st != CheckFail || !strings.Contains(why, "forwards packets arriving on lvm-lab") {
		t.Errorf("no-forwarding = %s (%s), want fail", st, why)
	}
	// A relay that accepts more than the profile says fails.
	for i := range state.Doors {
		if state.Doors[i].Key == "publish/app/rdp" {
			state.Doors[i].From = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
		}
	}
	if st, why := status(run(), "app", checkDoorsCheck); st != CheckFail || !strings.Contains(why, "accepts [0.0.0.0/0], the profile says [192.0.2.0/24]") {
		t.Errorf("doors = %s (%s), want fail", st, why)
	}
	// No daemon: the doors are closed, a warning.
	opts.DaemonState = nil
	if st, why := status(run(), "app", checkDoorsCheck); st != CheckWarn || !strings.Contains(why, "closed") {
		t.Errorf("doors without daemon = %s (%s), want warn", st, why)
	}
}
