package orchestrator

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

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
// the VM; the relay's view (HostDoors) is read back from libvirt alone.
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
	for _, dn := range hp.Desired.Networks {
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

	doors, probs, err := HostDoors(ctx, h)
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
	if c.Action != ActionUpdate || !strings.Contains(strings.Join(c.Reasons, ";"), "from [192.0.2.0/24] -> [192.0.2.0/24, 198.51.100.7/32]") {
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
	_, diags, err := PlanProfile(context.Background(), p, connector(h), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 || diags[0].Summary != "Listen port already taken" || diags[0].Subject == nil ||
		!strings.HasSuffix(diags[0].Subject.Filename, "main.hcl") || !strings.Contains(diags[0].Detail, "address already in use") {
		t.Fatalf("diagnostics %v", diags)
	}
	opts.OwnListeners = map[string]bool{"0.0.0.0:13389": true}
	if _, diags, err := PlanProfile(context.Background(), p, connector(h), opts); err != nil || len(diags) != 0 {
		t.Fatalf("with the relay holding the port: %v, %v", diags, err)
	}
}
