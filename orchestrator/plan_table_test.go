package orchestrator

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// tableProfile is the world of the plan tables: one network with an
// allow rule and a network egress door, and one VM on it with a memory
// baseline and a publish door.
const tableProfile = `
network "lab" {
  subnet = "10.80.0.0/24"
  dhcp   = true
  allow "rdp" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 3389
  }
  egress "db" {
    to   = "db.corp:1433"
    port = 11433
  }
}
snapshot_policy "p" {
  memory = true
}
vm "web" {
  os     = "win7-x64"
  cpus   = 2
  memory = "%MEM%"
  %AGENT%
  disk {
    image   = "%IMAGE%"
    prepare = "none"
  }
  network         = network.lab
  snapshot_policy = snapshot_policy.p
  publish "rdp" {
    listen = "0.0.0.0:13389"
    port   = 3389
    from   = ["192.0.2.0/24"]
  }
}
`

// tableImageProfile is tableProfile with its VM cloning the newest
// version of an image block.
var tableImageProfile = strings.Replace(tableProfile, `image   = "%IMAGE%"`, `image   = image.w7t
    image_version = "latest"`, 1) + `
image "w7t" {
  source {
    iso     = "/isos/w7.iso"
    sha256  = "` + strings.Repeat("ab", 32) + `"
    edition = "professional"
  }
  step "one" {
    command = "cmd /c echo one"
  }
  size    = "2GiB"
  timeout = "1m"
}
`

// tableOnlyOther declares neither the network nor web: another VM, alone.
const tableOnlyOther = `
vm "other" {
  os     = "win7-x64"
  memory = "1GiB"
  disk {
    image   = "/images/golden.qcow2"
    prepare = "none"
  }
}
`

// observeProfile runs the observer for p's only host, as planProfile does.
func observeProfile(t *testing.T, p *profiles.Profile, h virt.Hypervisor, opts Options) (*profiles.Profile, *observation) {
	t.Helper()
	ctx := context.Background()
	conns := connectHosts(ctx, p, connector(h), opts)
	observeDomains(ctx, conns)
	place(p, conns)
	part := split(p)[0]
	o, err := observeHost(ctx, conns[0].HV, part, part.Hosts[0], conns[0].URI, opts, conns[0].Domains)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return part, o
}

// editDomain changes an observed domain (on copies: the observation may
// share slices with the fake).
func editDomain(o *observation, name string, f func(d *virt.Domain, m *virt.Metadata)) {
	d := o.Domains[name]
	m := *d.Metadata
	m.Doors = slices.Clone(m.Doors)
	d.Interfaces = slices.Clone(d.Interfaces)
	for i := range d.Interfaces {
		d.Interfaces[i].FilterParams = slices.Clone(d.Interfaces[i].FilterParams)
	}
	d.Disks = slices.Clone(d.Disks)
	f(&d, &m)
	d.Metadata = &m
	o.Domains[name] = d
}

func editNetwork(o *observation, name string, f func(n *virt.Network)) {
	n := o.Networks[name]
	if n.Metadata != nil {
		m := *n.Metadata
		n.Metadata = &m
	}
	n.DHCPHosts = slices.Clone(n.DHCPHosts)
	f(&n)
	o.Networks[name] = n
}

func editBindings(o *observation, f func(b *virt.FilterBinding)) {
	o.Bindings = slices.Clone(o.Bindings)
	for i := range o.Bindings {
		o.Bindings[i].Params = slices.Clone(o.Bindings[i].Params)
		if o.Bindings[i].Owner == "web" {
			f(&o.Bindings[i])
		}
	}
}

// want is an expected change: its action and the codes of its reasons in
// order.
type want struct {
	action  Action
	reasons []ReasonCode
}

func codes(rs []Reason) []ReasonCode {
	out := []ReasonCode{}
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

// checkChanges compares a plan's changes with wants (by "kind/name");
// every change not listed must be a no-op. It returns the reason codes
// seen.
func checkChanges(t *testing.T, plan *Plan, wants map[string]want) []ReasonCode {
	t.Helper()
	var seen []ReasonCode
	got := map[string]Change{}
	for _, c := range plan.Changes {
		key := string(c.Kind) + "/" + c.Name
		got[key] = c
		seen = append(seen, codes(c.Reasons)...)
		for _, r := range c.Reasons {
			if r.String() == "" {
				t.Errorf("%s: reason %d has no wording", key, r.Code)
			}
		}
		w, listed := wants[key]
		if !listed {
			if c.Action != ActionNoop {
				t.Errorf("%s: unexpected %s (because %q)", key, c.Action, reasonStrings(c.Reasons))
			}
			continue
		}
		if c.Action != w.action || !slices.Equal(codes(c.Reasons), append([]ReasonCode{}, w.reasons...)) {
			t.Errorf("%s: %s because %q (codes %v), want %s with codes %v", key, c.Action, reasonStrings(c.Reasons), codes(c.Reasons), w.action, w.reasons)
		}
	}
	for key := range wants {
		if _, ok := got[key]; !ok {
			t.Errorf("%s: not planned (plan: %s)", key, planKeys(plan))
		}
	}
	return seen
}

func planKeys(p *Plan) string {
	var ks []string
	for _, c := range p.Changes {
		ks = append(ks, fmt.Sprintf("%s/%s=%s", c.Kind, c.Name, c.Action))
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// TestMakePlanTable plans from observations edited row by row: every
// action of every kind makePlan plans, and every reason it gives. The base
// observation is the host right after the table profile was applied (a
// plan of nothing); a row may plan another profile, observe a fresh host
// or a remote one, and edit the observation before planning. makePlan is
// pure, so editing the observation is all it takes.
func TestMakePlanTable(t *testing.T) {
	base := newFakeHost(t)
	apply(t, plan(t, loadProfile(t, "tbl", tableProfile, "%AGENT%", ""), base))
	dir := t.TempDir()
	localGolden := filepath.Join(dir, "golden.qcow2")
	if err := os.WriteFile(localGolden, append([]byte("QFI\xfb"), make([]byte, 508)...), 0o644); err != nil {
		t.Fatal(err)
	}
	const web, net, filter = "vm/web", "network/lvm-lab", "filter/lvm-lab"
	const rdp, db = "door/web/publish/rdp", "door/web/egress/db"
	type row struct {
		name     string
		src      string   // default tableProfile
		repl     []string // replacements in src
		fresh    bool     // observe a new, empty host instead of the base one
		uri      string   // default test:///fake (this machine)
		edit     func(o *observation)
		settings planSettings
		want     map[string]want
		text     string // a reason must be worded so
	}
	upd := func(cs ...ReasonCode) want { return want{ActionUpdate, cs} }
	rep := func(cs ...ReasonCode) want { return want{ActionReplace, cs} }
	rows := []row{
		{name: "nothing changed", want: map[string]want{}},
		{name: "fresh host: everything created", fresh: true, want: map[string]want{
			"pool/" + imagePoolName("/images"): {ActionCreate, nil},
			net:                                {ActionCreate, nil}, filter: {ActionCreate, nil}, web: {ActionCreate, nil},
			rdp: {ActionCreate, nil}, db: {ActionCreate, nil}}},
		{name: "default pool missing", edit: func(o *observation) { o.PoolFound = false },
			want: map[string]want{"pool/default": {ActionCreate, nil}}},
		{name: "remote host lacks the golden image", fresh: true, uri: remoteURI, repl: []string{"%IMAGE%", localGolden},
			want: map[string]want{"image/" + UploadedImageName(localGolden): {ActionCreate, []ReasonCode{ReasonImageNotOnHost}},
				net: {ActionCreate, nil}, filter: {ActionCreate, nil}, web: {ActionCreate, nil}, rdp: {ActionCreate, nil}, db: {ActionCreate, nil}},
			text: "golden image " + localGolden + " is not on this host"},
		{name: "forward mode added", edit: func(o *observation) { editNetwork(o, "lvm-lab", func(n *virt.Network) { n.ForwardMode = "nat" }) },
			want: map[string]want{net: upd(ReasonForwardAdded)}, text: `has <forward mode="nat"> (added outside legacyvm): guests could reach other networks`},
		{name: "port isolation", edit: func(o *observation) { editNetwork(o, "lvm-lab", func(n *virt.Network) { n.PortIsolated = true }) },
			want: map[string]want{net: upd(ReasonPortIsolation)}, text: "port isolation true -> false"},
		{name: "subnet", edit: func(o *observation) {
			editNetwork(o, "lvm-lab", func(n *virt.Network) { n.Subnet = netip.MustParsePrefix("10.99.0.0/24") })
		}, want: map[string]want{net: upd(ReasonSubnet)}, text: "subnet 10.99.0.0/24 -> 10.80.0.0/24"},
		{name: "dhcp", edit: func(o *observation) { editNetwork(o, "lvm-lab", func(n *virt.Network) { n.DHCP = false }) },
			want: map[string]want{net: upd(ReasonDHCP)}, text: "dhcp false -> true"},
		{name: "dns", edit: func(o *observation) { editNetwork(o, "lvm-lab", func(n *virt.Network) { n.DNS = true }) },
			want: map[string]want{net: upd(ReasonDNS)}, text: "dns true -> false"},
		{name: "ipv6", edit: func(o *observation) { editNetwork(o, "lvm-lab", func(n *virt.Network) { n.IPv6 = true }) },
			want: map[string]want{net: upd(ReasonIPv6Enabled)}},
		{name: "reservations", edit: func(o *observation) { editNetwork(o, "lvm-lab", func(n *virt.Network) { n.DHCPHosts = nil }) },
			want: map[string]want{net: upd(ReasonReservations)}},
		{name: "network stopped, not autostart", edit: func(o *observation) {
			editNetwork(o, "lvm-lab", func(n *virt.Network) { n.Active, n.Autostart = false, false })
		}, want: map[string]want{net: upd(ReasonNetworkInactive, ReasonNoAutostart)}},
		{name: "network definition", edit: func(o *observation) { editNetwork(o, "lvm-lab", func(n *virt.Network) { n.Metadata.SpecHash = "0" }) },
			want: map[string]want{net: upd(ReasonDefinitionChanged)}},
		{name: "filter rules", edit: func(o *observation) { o.FilterDiffs["lvm-lab"] = []string{"rule 3 differs"} },
			want: map[string]want{filter: upd(ReasonFilterRules, ReasonFilterRule)}, text: "rule 3 differs"},
		{name: "profile declares neither web nor its network", src: tableOnlyOther, want: map[string]want{
			"vm/other": {ActionCreate, nil}, web: {ActionDelete, []ReasonCode{ReasonNotInProfile}},
			net: {ActionDelete, []ReasonCode{ReasonNotInProfile}}}},
		{name: "left-over answer media", edit: func(o *observation) {
			o.Volumes[answerVolumeName("web")] = virt.Volume{Pool: "default", Name: answerVolumeName("web"), Path: "/var/lib/libvirt/images/" + answerVolumeName("web")}
		}, want: map[string]want{"volume/" + answerVolumeName("web"): {ActionDelete, []ReasonCode{ReasonOrphanAnswers}}}},
		{name: "unprovisioned", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) { m.Provisioned = false })
		}, want: map[string]want{web: rep(ReasonUnprovisioned), rdp: {ActionCreate, nil}, db: {ActionCreate, nil}}},
		{name: "image version", src: tableImageProfile, edit: func(o *observation) {
			o.ImageVersions["w7t"] = []ImageVersion{{Name: "w7t", Version: 1, Path: "/var/lib/libvirt/images/w7t-v1.qcow2"}, {Name: "w7t", Version: 2, Path: "/var/lib/libvirt/images/w7t-v2.qcow2"}}
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) {
				m.ImageName, m.ImageVersion, m.Image = "w7t", 1, "/var/lib/libvirt/images/w7t-v1.qcow2"
			})
		}, want: map[string]want{web: rep(ReasonImageVersion), rdp: {ActionCreate, nil}, db: {ActionCreate, nil}},
			text: "image version changed: w7t v1 -> v2"},
		{name: "disk image", repl: []string{"%IMAGE%", "/images/other.qcow2"},
			want: map[string]want{web: rep(ReasonImage), rdp: {ActionCreate, nil}, db: {ActionCreate, nil},
				"pool/" + imagePoolName("/images"): {ActionCreate, nil}},
			text: "disk image changed: /images/golden.qcow2 -> /images/other.qcow2"},
		{name: "system disk moved", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) { d.Disks[0].Path = "/elsewhere/web.qcow2" })
		}, want: map[string]want{web: rep(ReasonSystemDiskMoved), rdp: {ActionCreate, nil}, db: {ActionCreate, nil}}},
		{name: "memory and cpus", repl: []string{"%MEM%", "4GiB", "cpus   = 2", "cpus   = 3"},
			want: map[string]want{web: upd(ReasonMemory, ReasonCPUs)}, text: "memory 2 GiB -> 4 GiB"},
		{name: "guest agent added", repl: []string{"%AGENT%", "guest_agent = true"},
			want: map[string]want{web: upd(ReasonGuestAgentAdded)}},
		{name: "guest agent removed", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) { d.GuestAgent = true })
		}, want: map[string]want{web: upd(ReasonGuestAgentRemoved)}},
		{name: "nic added", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) { d.Interfaces = nil })
		}, want: map[string]want{web: upd(ReasonNICAdded)}},
		{name: "nic removed", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) {
				d.Interfaces = append(d.Interfaces, virt.InterfaceSpec{MAC: "52:54:00:00:00:99", Network: "elsewhere"})
			})
		}, want: map[string]want{web: upd(ReasonNICRemoved)}, text: "network interface 52:54:00:00:00:99 on elsewhere removed"},
		{name: "nic network, model, isolation", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) {
				d.Interfaces[0].Network, d.Interfaces[0].Model, d.Interfaces[0].PortIsolated = "elsewhere", "virtio", true
			})
		}, want: map[string]want{web: upd(ReasonNICNetwork, ReasonNICModel, ReasonNICPortIsolation)}},
		{name: "nic filter removed", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) { d.Interfaces[0].Filter = "" })
		}, want: map[string]want{web: upd(ReasonNICFilterRemoved)}},
		{name: "nic filter changed", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) { d.Interfaces[0].Filter = "lvm-other" })
		}, want: map[string]want{web: upd(ReasonNICFilter)}},
		{name: "nic filter parameters", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) { d.Interfaces[0].FilterParams = nil })
		}, want: map[string]want{web: upd(ReasonNICFilterParams)}},
		{name: "nic overrides isolation", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) {
				d.XML = fmt.Sprintf("<domain><devices><interface type='network'><mac address='%s'/><port isolated='no'/></interface></devices></domain>", d.Interfaces[0].MAC)
			})
		}, want: map[string]want{web: upd(ReasonNICIsolationOff)}},
		{name: "binding missing", edit: func(o *observation) { o.Bindings = nil },
			want: map[string]want{web: upd(ReasonBindingMissing)}},
		{name: "bound to another filter", edit: func(o *observation) { editBindings(o, func(b *virt.FilterBinding) { b.Filter = "lvm-other" }) },
			want: map[string]want{web: upd(ReasonBindingFilter)}},
		{name: "bound for another address", edit: func(o *observation) {
			editBindings(o, func(b *virt.FilterBinding) { b.Params = []virt.FilterParam{{Name: "IP", Value: "10.80.0.250"}} })
		}, want: map[string]want{web: upd(ReasonBindingIP)}},
		{name: "baseline missing", edit: func(o *observation) { o.Snapshots["web"] = nil },
			want: map[string]want{web: upd(ReasonBaselineMissing)}, text: "baseline snapshot clean is missing: apply takes it now from the VM as it is (with memory, the VM runs)"},
		{name: "vm definition", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) { m.SpecHash = "0" })
		}, want: map[string]want{web: upd(ReasonDefinitionChanged)}},
		{name: "door drift", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) {
				for i := range m.Doors {
					switch m.Doors[i].Name {
					case "rdp":
						m.Doors[i].Listen, m.Doors[i].Port, m.Doors[i].From, m.Doors[i].MaxConnections = "0.0.0.0:1", 1, []string{"198.51.100.0/24"}, 1
					case "db":
						m.Doors[i].To, m.Doors[i].Scope = "old.corp:1433", "vm"
					}
				}
			})
		}, want: map[string]want{
			rdp: upd(ReasonDoorListen, ReasonDoorPort, ReasonDoorFrom, ReasonDoorMaxConnections),
			db:  upd(ReasonDoorTo, ReasonDoorMoved)}},
		{name: "door removed", edit: func(o *observation) {
			editDomain(o, "web", func(d *virt.Domain, m *virt.Metadata) {
				m.Doors = append(m.Doors, virt.DoorRef{Kind: virt.DoorPublish, Name: "old", Scope: "vm", Listen: "0.0.0.0:1", Port: 1, Protocol: "tcp"})
			})
		}, want: map[string]want{"door/web/publish/old": {ActionDelete, []ReasonCode{ReasonDoorRemoved}}}},
	}
	covered := map[ReasonCode]bool{}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if src == "" {
				src = tableProfile
			}
			repl := append([]string{"%AGENT%", ""}, tt.repl...)
			if len(tt.repl) > 0 && tt.repl[0] == "%AGENT%" {
				repl = tt.repl
			}
			p := loadProfile(t, "tbl", src, repl...)
			h := virt.Hypervisor(base)
			if tt.fresh {
				h = newFakeHost(t)
			}
			uri := tt.uri
			if uri == "" {
				uri = "test:///fake"
			}
			part, o := observeProfile(t, p, h, Options{DefaultURI: uri})
			if tt.edit != nil {
				tt.edit(o)
			}
			_, pl, diags, err := makePlan(part, part.Hosts[0], uri, o, tt.settings)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					t.Errorf("diagnostic: %s: %s", d.Summary, d.Detail)
				}
			}
			for _, c := range checkChanges(t, pl, tt.want) {
				covered[c] = true
			}
			if tt.text != "" {
				found := false
				for _, c := range pl.Changes {
					found = found || slices.Contains(reasonStrings(c.Reasons), tt.text)
				}
				if !found {
					t.Errorf("no reason worded %q", tt.text)
				}
			}
		})
	}
	for _, c := range destroyTableRows(t) {
		covered[c] = true
	}
	// Every reason code has a row: a code added without one fails here.
	for c := ReasonCode(1); c < reasonEnd; c++ {
		if !covered[c] {
			t.Errorf("reason %d (%q) has no table row", c, Reason{Code: c, Subject: "S", From: "A", To: "B"})
		}
	}
}

// destroyTableRows plans destroys from edited observations (planHostDestroy)
// and returns the reason codes they gave.
func destroyTableRows(t *testing.T) []ReasonCode {
	t.Helper()
	var seen []ReasonCode
	h := newFakeHost(t)
	p := loadProfile(t, "tbl", tableProfile, "%AGENT%", "")
	apply(t, plan(t, p, h))
	observe := func() *observation {
		o, err := observeForDestroy(context.Background(), h, p.Name, "default")
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	rows := []struct {
		name string
		edit func(o *observation)
		only []string
		want map[string]want
	}{
		{name: "everything", want: map[string]want{
			"vm/web": {ActionDelete, nil}, "network/lvm-lab": {ActionDelete, nil},
			"pool/" + imagePoolName("/images"): {ActionDelete, []ReasonCode{ReasonImagesUnused}}}},
		{name: "only web", only: []string{"web"}, want: map[string]want{
			"vm/web": {ActionDelete, nil}, "pool/" + imagePoolName("/images"): {ActionDelete, []ReasonCode{ReasonImagesUnused}}}},
		{name: "network gone, its filters left", edit: func(o *observation) { delete(o.Networks, "lvm-lab") }, want: map[string]want{
			"vm/web": {ActionDelete, nil}, "filter/lvm-lab": {ActionDelete, []ReasonCode{ReasonFilterLeftOver}},
			"filter/lvm-lab-guard":             {ActionDelete, []ReasonCode{ReasonFilterLeftOver}},
			"pool/" + imagePoolName("/images"): {ActionDelete, []ReasonCode{ReasonImagesUnused}}}},
	}
	for _, tt := range rows {
		t.Run("destroy "+tt.name, func(t *testing.T) {
			o := observe()
			if tt.edit != nil {
				tt.edit(o)
			}
			want := map[string]bool{}
			for _, n := range tt.only {
				want[n] = true
			}
			pl, err := planHostDestroy(p, split(p)[0], "test:///fake", "default", o, want, map[string]bool{})
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, checkChanges(t, pl, tt.want)...)
		})
	}
	return seen
}

// Every reason is worded, differently from the others.
func TestReasonWording(t *testing.T) {
	seen := map[string]ReasonCode{}
	for c := ReasonCode(1); c < reasonEnd; c++ {
		s := Reason{Code: c, Subject: "S", From: "A", To: "B"}.String()
		if s == "" {
			t.Errorf("reason %d has no wording", c)
		}
		if other, dup := seen[s]; dup {
			t.Errorf("reasons %d and %d are both worded %q", other, c, s)
		}
		seen[s] = c
	}
	if js, err := (Reason{Code: ReasonMemory, From: "2 GiB", To: "4 GiB"}).MarshalJSON(); err != nil || string(js) != `"memory 2 GiB -\u003e 4 GiB"` {
		t.Errorf("JSON %s %v, want the wording as a string", js, err)
	}
}
