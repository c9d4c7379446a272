package provision

import (
	"context"
	"encoding/xml"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// domainWant is what a provisioned instance's live XML must say.
type domainWant struct {
	name    string
	profile string
	vm      string // vm block name
	memMiB  uint
	vcpus   int
	network string // profile network name ("" = none)
	// golden is the backing image of a linked clone; "" for a full copy or
	// an installed disk (no backing store at all).
	golden string
	oem    []string
	// license is the licence label ("" = none); keyTail the last group of
	// its key, which is all metadata may hold of it.
	license string
	keyTail string
	// memoryBaseline: the VM runs on the layer of its memory baseline.
	memoryBaseline bool
}

// checkDomain parses the live and persistent XML of a running instance and
// checks the Windows 7 preset, its system disk, CD-ROM, NIC, display and
// ownership metadata. It returns the NIC's MAC and filter IP parameter.
func checkDomain(t *testing.T, h *e2eutil.Host, w domainWant) (mac string, ip netip.Addr) {
	t.Helper()
	d := liveDomain(t, h, w.name, false)
	what := "domain " + w.name
	if d.Type != h.Env.Accel {
		t.Errorf("%s: domain type %q, want %q (the harness's accelerator)", what, d.Type, h.Env.Accel)
	}
	if d.OS == nil || d.OS.Type == nil {
		t.Fatalf("%s: no <os><type>", what)
	}
	if d.OS.Loader != nil || d.OS.NVRam != nil || d.OS.Firmware == "efi" {
		t.Errorf("%s: firmware is not SeaBIOS (loader %+v, firmware %q)", what, d.OS.Loader, d.OS.Firmware)
	}
	if !regexp.MustCompile(`^pc-i440fx-\d+\.\d+$`).MatchString(d.OS.Type.Machine) {
		t.Errorf("%s: machine %q, want a pinned pc-i440fx-N.M type", what, d.OS.Type.Machine)
	}
	if inactive := liveDomain(t, h, w.name, true); inactive.OS.Type.Machine != d.OS.Type.Machine {
		t.Errorf("%s: persistent machine %q differs from the running %q (not pinned)", what, inactive.OS.Type.Machine, d.OS.Type.Machine)
	}
	if d.Memory == nil || d.Memory.Value*kibOf(d.Memory.Unit) != w.memMiB*1024 {
		t.Errorf("%s: memory %+v, want %d MiB", what, d.Memory, w.memMiB)
	}
	if d.VCPU == nil || int(d.VCPU.Value) != w.vcpus {
		t.Errorf("%s: vcpus %+v, want %d", what, d.VCPU, w.vcpus)
	}
	if d.Devices == nil {
		t.Fatalf("%s: no devices", what)
	}
	if d.Devices.MemBalloon == nil || d.Devices.MemBalloon.Model != "none" {
		t.Errorf("%s: memballoon %+v, want none", what, d.Devices.MemBalloon)
	}

	// System disk: SATA qcow2 in the host's pool, overlay of the golden image.
	var disks, cds []libvirtxml.DomainDisk
	for _, dk := range d.Devices.Disks {
		switch dk.Device {
		case "disk":
			disks = append(disks, dk)
		case "cdrom":
			cds = append(cds, dk)
		}
	}
	if len(disks) != 1 {
		t.Fatalf("%s: %d disks, want 1", what, len(disks))
	}
	sys := disks[0]
	wantPath := filepath.Join(h.PoolDir, "lvm-"+w.name+"-system.qcow2")
	if w.memoryBaseline {
		// A memory baseline is layered: the VM runs on its layer, whose
		// backing file is the system disk (frozen at the baseline); the
		// system disk is checked below as the layer's backing store.
		layer := filepath.Join(h.PoolDir, "lvm-"+w.name+"-live.qcow2")
		if sys.Source == nil || sys.Source.File == nil || sys.Source.File.File != layer {
			t.Errorf("%s: system disk source %+v, want the layer %s", what, sys.Source, layer)
		}
		if bs := sys.BackingStore; bs == nil || bs.Source == nil || bs.Source.File == nil || bs.Source.File.File != wantPath {
			t.Errorf("%s: the layer's backing store is %+v, want the system disk %s", what, bs, wantPath)
		} else {
			sys.Source, sys.BackingStore = bs.Source, bs.BackingStore
		}
	}
	if sys.Target == nil || sys.Target.Bus != "sata" || sys.Target.Dev != "sda" {
		t.Errorf("%s: system disk target %+v, want sata sda", what, sys.Target)
	}
	if sys.Driver == nil || sys.Driver.Type != "qcow2" {
		t.Errorf("%s: system disk driver %+v, want qcow2", what, sys.Driver)
	}
	if sys.Source == nil || sys.Source.File == nil || sys.Source.File.File != wantPath {
		t.Errorf("%s: system disk source %+v, want %s", what, sys.Source, wantPath)
	}
	bs := sys.BackingStore
	if w.golden != "" {
		if bs == nil || bs.Source == nil || bs.Source.File == nil || bs.Source.File.File != w.golden {
			t.Errorf("%s: system disk backing store %+v, want the golden image %s", what, bs, w.golden)
		} else if bs.Format == nil || bs.Format.Type != "qcow2" {
			t.Errorf("%s: backing store format %+v, want qcow2", what, bs.Format)
		} else if bs.BackingStore != nil && bs.BackingStore.Source != nil && bs.BackingStore.Source.File != nil {
			t.Errorf("%s: the golden image has a backing store of its own: %s", what, bs.BackingStore.Source.File.File)
		}
	} else if bs != nil && bs.Source != nil && bs.Source.File != nil {
		t.Errorf("%s: system disk has a backing store %s, want a standalone disk", what, bs.Source.File.File)
	}
	if len(cds) == 0 {
		t.Errorf("%s: no CD-ROM drive", what)
	}
	for _, cd := range cds {
		if cd.Target == nil || cd.Target.Bus != "sata" {
			t.Errorf("%s: CD-ROM target %+v, want sata", what, cd.Target)
		}
		if cd.Source != nil && cd.Source.File != nil && cd.Source.File.File != "" {
			t.Errorf("%s: CD-ROM %s still holds %s after provisioning", what, cd.Target.Dev, cd.Source.File.File)
		}
	}

	// Windows 7 hardware: USB 2 (EHCI + UHCI, never xHCI) with a tablet,
	// standard VGA, local-time clock.
	ehci := false
	for _, c := range d.Devices.Controllers {
		if c.Type == "usb" && strings.Contains(c.Model, "xhci") {
			t.Errorf("%s: USB controller %s (Windows 7 has no xHCI driver)", what, c.Model)
		}
		ehci = ehci || c.Type == "usb" && c.Model == "ich9-ehci1"
	}
	if !ehci {
		t.Errorf("%s: no ich9-ehci1 USB controller", what)
	}
	tablet := false
	for _, in := range d.Devices.Inputs {
		tablet = tablet || in.Type == "tablet" && in.Bus == "usb"
	}
	if !tablet {
		t.Errorf("%s: no USB tablet", what)
	}
	if len(d.Devices.Videos) != 1 || d.Devices.Videos[0].Model.Type != "vga" {
		t.Errorf("%s: video %+v, want one std VGA", what, d.Devices.Videos)
	}
	if d.Clock == nil || d.Clock.Offset != "localtime" {
		t.Errorf("%s: clock %+v, want localtime", what, d.Clock)
	}
	if d.Metadata == nil || osinfoID(d.Metadata.XML) != "http://microsoft.com/win/7" {
		t.Errorf("%s: no libosinfo win/7 annotation in <metadata>", what)
	}

	// Display: VNC on loopback only.
	if len(d.Devices.Graphics) != 1 || d.Devices.Graphics[0].VNC == nil {
		t.Errorf("%s: graphics %+v, want one VNC display", what, d.Devices.Graphics)
	} else {
		vnc := d.Devices.Graphics[0].VNC
		if vnc.Listen != "127.0.0.1" {
			t.Errorf("%s: VNC listens on %q, want 127.0.0.1", what, vnc.Listen)
		}
		for _, l := range vnc.Listeners {
			if l.Address == nil || l.Address.Address != "127.0.0.1" {
				t.Errorf("%s: VNC listener %+v, want address 127.0.0.1", what, l)
			}
		}
		if vnc.Port <= 0 {
			t.Errorf("%s: VNC port %d on a running domain", what, vnc.Port)
		}
	}

	// OEM strings.
	var oem []string
	for _, si := range d.SysInfo {
		if si.SMBIOS != nil && si.SMBIOS.OEMStrings != nil {
			oem = append(oem, si.SMBIOS.OEMStrings.Entry...)
		}
	}
	if strings.Join(oem, "\n") != strings.Join(w.oem, "\n") {
		t.Errorf("%s: OEM strings %q, want %q", what, oem, w.oem)
	}

	// Ownership metadata in legacyvm's namespace, in the running domain and
	// in its persistent definition (which alone records that provisioning
	// finished: the flag is set after the guest started).
	if d.Metadata == nil {
		t.Fatalf("%s: no <metadata>", what)
	}
	if lm := ourMetadata(t, what+" (live)", d.Metadata.XML); lm.Profile != w.profile || lm.Instance != w.name {
		t.Errorf("%s: live metadata profile=%q instance=%q, want %q %q", what, lm.Profile, lm.Instance, w.profile, w.name)
	}
	pd := liveDomain(t, h, w.name, true)
	if pd.Metadata == nil {
		t.Fatalf("%s: no <metadata> in the persistent definition", what)
	}
	m := ourMetadata(t, what, pd.Metadata.XML)
	if m.Profile != w.profile || m.Instance != w.name || m.VM != w.vm || !m.Provisioned {
		t.Errorf("%s: metadata profile=%q vm=%q instance=%q provisioned=%v, want %q %q %q true", what, m.Profile, m.VM, m.Instance, m.Provisioned, w.profile, w.vm, w.name)
	}
	var vols []string
	for _, v := range m.Volumes {
		vols = append(vols, v.Role+"="+v.Name)
	}
	if len(vols) == 0 || vols[0] != "system=lvm-"+w.name+"-system.qcow2" {
		t.Errorf("%s: metadata volumes %v, want the system volume first", what, vols)
	}
	if w.license != "" {
		if m.License == nil || m.License.Label != w.license || m.License.LastGroup != w.keyTail || m.License.Fingerprint == "" {
			t.Errorf("%s: metadata licence %+v, want label %s, last group %s and a fingerprint", what, m.License, w.license, w.keyTail)
		}
	} else if m.License != nil {
		t.Errorf("%s: metadata licence %+v, want none", what, m.License)
	}

	// NIC: e1000 on the profile's network, with the network's filter and
	// the reserved address as its IP parameter.
	if w.network == "" {
		if len(d.Devices.Interfaces) != 0 {
			t.Errorf("%s: %d interfaces, want none", what, len(d.Devices.Interfaces))
		}
		return "", netip.Addr{}
	}
	if len(d.Devices.Interfaces) != 1 {
		t.Fatalf("%s: %d interfaces, want 1", what, len(d.Devices.Interfaces))
	}
	nic := d.Devices.Interfaces[0]
	lvnet := "lvm-" + w.network
	if nic.Model == nil || nic.Model.Type != "e1000" {
		t.Errorf("%s: NIC model %+v, want e1000", what, nic.Model)
	}
	if nic.Source == nil || nic.Source.Network == nil || nic.Source.Network.Network != lvnet || nic.Source.Network.Bridge != lvnet {
		t.Errorf("%s: NIC source %+v, want network and bridge %s", what, nic.Source, lvnet)
	}
	if nic.FilterRef == nil || nic.FilterRef.Filter != lvnet {
		t.Fatalf("%s: NIC filterref %+v, want filter %s", what, nic.FilterRef, lvnet)
	}
	for _, p := range nic.FilterRef.Parameters {
		if p.Name == "IP" {
			a, err := netip.ParseAddr(p.Value)
			if err != nil {
				t.Errorf("%s: filter parameter IP=%q: %v", what, p.Value, err)
			}
			ip = a
		}
	}
	if !ip.IsValid() {
		t.Errorf("%s: filterref has no IP parameter: %+v", what, nic.FilterRef.Parameters)
	}
	if nic.MAC == nil {
		t.Fatalf("%s: NIC without MAC", what)
	}
	if inactive := liveDomain(t, h, w.name, true); len(inactive.Devices.Interfaces) != 1 || inactive.Devices.Interfaces[0].MAC == nil ||
		inactive.Devices.Interfaces[0].MAC.Address != nic.MAC.Address {
		t.Errorf("%s: the persistent definition does not pin the running MAC %s", what, nic.MAC.Address)
	}
	return nic.MAC.Address, ip
}

// osinfoID is the id of libosinfo's <os> element in the inner XML of a
// <metadata> element ("" if there is none).
func osinfoID(inner string) string {
	dec := xml.NewDecoder(strings.NewReader("<metadata>" + inner + "</metadata>"))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if e, ok := tok.(xml.StartElement); ok && e.Name.Local == "os" && e.Name.Space == "http://libosinfo.org/xmlns/libvirt/domain/1.0" {
			for _, a := range e.Attr {
				if a.Name.Local == "id" {
					return a.Value
				}
			}
		}
	}
}

func kibOf(unit string) uint {
	switch unit {
	case "", "KiB", "k", "K":
		return 1
	case "MiB", "M":
		return 1024
	case "GiB", "G":
		return 1024 * 1024
	}
	return 0
}

// networkWant is what a profile network's live XML must say.
type networkWant struct {
	name     string // profile network name
	profile  string
	subnet   string
	isolated bool // guest_to_guest = false
	// allowPorts are the TCP ports the profile's allow rules open.
	allowPorts []uint
	// hosts are the instance names that must hold a DHCP reservation.
	hosts []string
}

// checkNetwork checks an isolated network and its two filters, and returns
// its DHCP reservations by host name.
func checkNetwork(t *testing.T, h *e2eutil.Host, w networkWant) map[string]libvirtxml.NetworkDHCPHost {
	t.Helper()
	name := "lvm-" + w.name
	what := "network " + name
	n := liveNetwork(t, h, name)
	if n.Forward != nil {
		t.Errorf("%s: has <forward mode=%q>, want none (isolated)", what, n.Forward.Mode)
	}
	if n.Bridge == nil || n.Bridge.Name != name {
		t.Errorf("%s: bridge %+v, want %s", what, n.Bridge, name)
	}
	if n.MAC == nil || n.MAC.Address == "" {
		t.Errorf("%s: bridge MAC not pinned", what)
	}
	if n.Metadata == nil {
		t.Fatalf("%s: no <metadata>", what)
	}
	m := ourMetadata(t, what, n.Metadata.XML)
	if m.Profile != w.profile || m.Network != w.name {
		t.Errorf("%s: metadata profile=%q network=%q, want %q %q", what, m.Profile, m.Network, w.profile, w.name)
	}
	if strings.Join(m.Filters, ",") != name+","+name+"-guard" {
		t.Errorf("%s: metadata filters %v, want %s and %s-guard", what, m.Filters, name, name)
	}
	iso := n.PortOptions != nil && n.PortOptions.Isolated == "yes"
	if iso != w.isolated {
		t.Errorf("%s: <port isolated> %v, want %v", what, iso, w.isolated)
	}
	if n.DNS == nil || n.DNS.Enable != "no" {
		t.Errorf("%s: DNS %+v, want disabled", what, n.DNS)
	}
	prefix := netip.MustParsePrefix(w.subnet)
	if len(n.IPs) != 1 {
		t.Fatalf("%s: %d <ip> elements, want 1 (IPv4 only)", what, len(n.IPs))
	}
	ipe := n.IPs[0]
	host, err := netip.ParseAddr(ipe.Address)
	if err != nil || !prefix.Contains(host) || int(ipe.Prefix) != prefix.Bits() || ipe.Family == "ipv6" {
		t.Errorf("%s: host address %s/%d, want one in %s", what, ipe.Address, ipe.Prefix, prefix)
	}
	if ipe.DHCP == nil {
		t.Fatalf("%s: no DHCP", what)
	}
	res := map[string]libvirtxml.NetworkDHCPHost{}
	macs := map[string]bool{}
	for _, hh := range ipe.DHCP.Hosts {
		a, err := netip.ParseAddr(hh.IP)
		if err != nil || !prefix.Contains(a) || a == host {
			t.Errorf("%s: reservation %+v outside %s or on the host address", what, hh, prefix)
		}
		if macs[strings.ToLower(hh.MAC)] {
			t.Errorf("%s: MAC %s reserved twice", what, hh.MAC)
		}
		macs[strings.ToLower(hh.MAC)] = true
		res[hh.Name] = hh
	}
	if len(res) != len(w.hosts) {
		t.Errorf("%s: reservations %v, want one for each of %v", what, res, w.hosts)
	}
	for _, hn := range w.hosts {
		if _, ok := res[hn]; !ok {
			t.Errorf("%s: no reservation for %s", what, hn)
		}
	}

	// Root filter: the anti-spoofing rules in the root chain plus the
	// guard, merged into the same chain (no sub-chain).
	root := liveFilter(t, h, name)
	if root.Chain != domainxml.FilterChain {
		t.Errorf("filter %s: chain %q, want %s", name, root.Chain, domainxml.FilterChain)
	}
	var refs []string
	dropsRest := false
	for _, e := range root.Entries {
		if e.Ref != nil {
			refs = append(refs, e.Ref.Filter)
		}
		if r := e.Rule; r != nil && r.Action == "drop" && r.Direction == "inout" && r.Priority == 1000 {
			dropsRest = true
		}
	}
	if !slices.Equal(refs, []string{name + "-guard"}) {
		t.Errorf("filter %s: references %v, want only %s-guard", name, refs, name)
	}
	if !dropsRest {
		t.Errorf("filter %s: no final drop of every other frame", name)
	}
	guard := liveFilter(t, h, name+"-guard")
	if guard.Chain != domainxml.FilterChain {
		t.Errorf("filter %s-guard: chain %q, want %s", name, guard.Chain, domainxml.FilterChain)
	}
	if gu, err := domainxml.GuardUUID(root.UUID); err != nil || gu != guard.UUID {
		t.Errorf("filter %s-guard: UUID %s is not the one derived from its root filter (%s, %v)", name, guard.UUID, gu, err)
	}
	accepts := map[string]bool{}
	drops := 0
	for _, e := range guard.Entries {
		r := e.Rule
		if r == nil {
			continue
		}
		if r.Action == "drop" {
			drops++
		}
		// "return" ends the root chain: the frame passes.
		if r.IP != nil && r.IP.DstPortStart.Str != "" && (r.Action == "accept" || r.Action == "return") {
			accepts[r.IP.Protocol.Str+"/"+r.IP.DstPortStart.Str] = true
		}
	}
	if drops == 0 {
		t.Errorf("filter %s-guard: no drop rule", name)
	}
	if !accepts["udp/67"] {
		t.Errorf("filter %s-guard: DHCP (udp/67) not let through: %v", name, accepts)
	}
	for _, p := range w.allowPorts {
		if !accepts["tcp/"+itoa(p)] {
			t.Errorf("filter %s-guard: allow rule for tcp/%d missing: %v", name, p, accepts)
		}
	}
	return res
}

// checkBinding checks that the filter is bound, with the IP parameter, to
// the running interface with mac.
func checkBinding(t *testing.T, h *e2eutil.Host, domain, mac, filter string, ip netip.Addr) {
	t.Helper()
	bs, err := h.HV.FilterBindings(ctxT(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if strings.EqualFold(b.MAC, mac) {
			if b.Owner != domain || b.Filter != filter {
				t.Errorf("binding of %s: owner %s filter %s, want %s %s", mac, b.Owner, b.Filter, domain, filter)
			}
			for _, p := range b.Params {
				if p.Name == "IP" && p.Value == ip.String() {
					return
				}
			}
			t.Errorf("binding of %s (%s): params %v, want IP=%s", domain, mac, b.Params, ip)
			return
		}
	}
	t.Errorf("no nwfilter binding for %s's interface %s (the filter is not enforced)", domain, mac)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func itoa(u uint) string { return strconv.FormatUint(uint64(u), 10) }

// mediaWatch records, while apply runs, every medium the instance's
// CD-ROM drives hold, and whether its file existed at that moment.
type mediaWatch struct {
	mu   sync.Mutex
	seen map[string]string // "sdb=/path" -> "present"/"absent"
	stop context.CancelFunc
	done chan struct{}
}

func watchMedia(t *testing.T, h *e2eutil.Host, domain string) *mediaWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &mediaWatch{seen: map[string]string{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			if d, err := h.HV.GetDomain(ctx, domain); err == nil {
				for _, dk := range d.Disks {
					if dk.Device == virt.DeviceCDROM && dk.Path != "" {
						state := "absent"
						if _, err := os.Stat(dk.Path); err == nil {
							state = "present"
						}
						w.mu.Lock()
						if w.seen[dk.Target+"="+dk.Path] != "present" {
							w.seen[dk.Target+"="+dk.Path] = state
						}
						w.mu.Unlock()
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

// Stop ends the watch (idempotent) and returns what was seen.
func (w *mediaWatch) Stop() {
	w.stop()
	<-w.done
}

func (w *mediaWatch) Seen() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for k, v := range w.seen {
		out[k] = v
	}
	return out
}
