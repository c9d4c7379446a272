package orchestrator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
	"github.com/legacyvm/legacyvm/profiles"
)

// fakeHV names the fake so that test hosts can embed it.
type fakeHV = fake.Hypervisor

// remoteURI keeps the local system out of the VM tests.
const remoteURI = "qemu+ssh://lab1/system"

// isoProfile has a port-isolated network with DNS and one VM on it.
const isoProfile = `
network "iso" {
  subnet         = "10.81.0.0/24"
  dhcp           = true
  dns            = true
  guest_to_guest = false
}
vm "box" {
  os     = "win7-x64"
  memory = "1GiB"
  disk {
    image   = "/images/golden.qcow2"
    prepare = "none"
  }
  network = network.iso
}
`

func verifyOK(t *testing.T, hv virt.Hypervisor, p *profiles.Profile) *Verification {
	t.Helper()
	v, err := verifyHost(context.Background(), hv, VerifyOptions{URI: remoteURI, Profile: p})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return v
}

// status returns the status and reason of check on vm ("" when absent).
func status(v *Verification, vm, check string) (CheckStatus, string) {
	for _, x := range v.VMs {
		if x.Name != vm {
			continue
		}
		for _, c := range x.Checks {
			if c.Check == check {
				return c.Status, c.Reason + " | fix: " + c.Fix + " | hint: " + string(c.Hint)
			}
		}
	}
	return "", ""
}

func TestVerifyAppliedProfilePasses(t *testing.T) {
	h := newFakeHost(t)
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))
	v := verifyOK(t, h, p)
	if !v.OK || v.Warnings() {
		t.Fatalf("verify of a freshly applied profile: %+v", v)
	}
	if len(v.VMs) != 3 {
		t.Fatalf("verified %d VMs, want web-1, web-2, solo", len(v.VMs))
	}
	for _, vm := range []string{"web-1", "web-2"} {
		for _, c := range []string{checkNetwork, checkNoForward, checkNoIPv6, checkDNS, checkPortIsolation, checkFilterRef, checkFilterBinding, checkFilterRules, checkNoUplink} {
			if st, why := status(v, vm, c); st != CheckPass {
				t.Errorf("%s %s = %s (%s), want pass", vm, c, st, why)
			}
		}
	}
	if st, why := status(v, "solo", checkNetwork); st != CheckPass || !strings.Contains(why, "no network interface") {
		t.Errorf("solo network = %s (%s)", st, why)
	}
	if st, why := status(v, "web-1", checkFilterBinding); !strings.Contains(why, "bound to lvm-lab with IP 10.80.0.") {
		t.Errorf("binding reason %s %q", st, why)
	}
	if len(v.HostChecks) != 1 || v.HostChecks[0].Severity != hostcheck.SeverityInfo {
		t.Errorf("remote host checks = %+v, want one note", v.HostChecks)
	}
}

func TestVerifyFailsOnTampering(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(t *testing.T, h *tamperHost, hp *HostPlan)
		check  string
		reason string
	}{
		{"filter reference removed", func(t *testing.T, h *tamperHost, hp *HostPlan) {
			d, _ := h.GetDomain(ctx, "web-1")
			spec := desiredSpec(hp, "web-1")
			spec.Interfaces = append([]virt.InterfaceSpec(nil), spec.Interfaces...)
			spec.Interfaces[0].Filter, spec.Interfaces[0].FilterParams = "", nil
			spec.Metadata = d.Metadata
			if _, err := h.DefineDomain(ctx, spec); err != nil {
				t.Fatal(err)
			}
		}, checkFilterRef, "no traffic filter"},
		{"wrong IP parameter", func(t *testing.T, h *tamperHost, hp *HostPlan) {
			d, _ := h.GetDomain(ctx, "web-1")
			spec := desiredSpec(hp, "web-1")
			spec.Interfaces = append([]virt.InterfaceSpec(nil), spec.Interfaces...)
			spec.Interfaces[0].FilterParams = []virt.FilterParam{{Name: "IP", Value: "10.80.0.250"}}
			spec.Metadata = d.Metadata
			if _, err := h.DefineDomain(ctx, spec); err != nil {
				t.Fatal(err)
			}
		}, checkFilterRef, "IP parameter is 10.80.0.250"},
		{"guard rule edited", func(t *testing.T, h *tamperHost, _ *HostPlan) {
			err := h.TamperFilter("lvm-lab-guard", func(f *libvirtxml.NWFilter) { f.Entries = f.Entries[:len(f.Entries)-1] })
			if err != nil {
				t.Fatal(err)
			}
		}, checkFilterRules, "differs from the profile"},
		{"forward added", func(t *testing.T, h *tamperHost, _ *HostPlan) {
			h.editNet = func(n *virt.Network) { n.ForwardMode = "nat" }
		}, checkNoForward, "<forward mode='nat'>"},
		{"running network forwards", func(t *testing.T, h *tamperHost, _ *HostPlan) {
			h.editNet = func(n *virt.Network) { r := *n; r.ForwardMode = "route"; n.Running = &r }
		}, checkNoForward, "running network forwards (mode route)"},
		{"ipv6 added", func(t *testing.T, h *tamperHost, _ *HostPlan) {
			h.editNet = func(n *virt.Network) { n.IPv6 = true }
		}, checkNoIPv6, "IPv6"},
		{"dns turned on", func(t *testing.T, h *tamperHost, _ *HostPlan) {
			h.editNet = func(n *virt.Network) { n.DNS = true }
		}, checkDNS, "DNS is on on lvm-lab, the profile says off"},
		{"uplink enslaved", func(t *testing.T, h *tamperHost, _ *HostPlan) {
			h.AttachToBridge("lvm-lab", "eth1", "52:54:00:99:99:99")
		}, checkNoUplink, "eth1 (52:54:00:99:99:99) is enslaved"},
		{"NIC moved to a foreign network", func(t *testing.T, h *tamperHost, _ *HostPlan) {
			h.editNet = func(n *virt.Network) { n.Metadata = nil }
		}, checkNetwork, "not managed by legacyvm"},
		{"binding gone", func(t *testing.T, h *tamperHost, _ *HostPlan) {
			h.dropBindings = true
		}, checkFilterBinding, "no traffic filter bound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &tamperHost{fakeHV: newFakeHost(t)}
			p := loadProfile(t, "lab", labProfile)
			hp := plan(t, p, h)
			apply(t, hp)
			tt.tamper(t, h, hp)
			v := verifyOK(t, h, p)
			if v.OK {
				t.Fatalf("verify passed after tampering")
			}
			st, why := status(v, "web-1", tt.check)
			if st != CheckFail || !strings.Contains(why, tt.reason) {
				t.Errorf("%s = %s (%s), want fail mentioning %q", tt.check, st, why, tt.reason)
			}
			if !strings.Contains(why, "fix: ") || strings.HasSuffix(why, "fix: ") {
				t.Errorf("%s failure without a fix: %s", tt.check, why)
			}
			for _, vm := range v.VMs {
				if vm.Name == "solo" && !vm.OK {
					t.Errorf("solo failed too: %+v", vm)
				}
			}
		})
	}
}

// tamperHost edits what the fake reports, for states the fake cannot
// produce (a <forward> element, a lost binding).
type tamperHost struct {
	*fakeHV
	editNet      func(*virt.Network)
	dropBindings bool
}

func (h *tamperHost) ListNetworks(ctx context.Context) ([]virt.Network, error) {
	ns, err := h.fakeHV.ListNetworks(ctx)
	if h.editNet != nil {
		for i := range ns {
			if ns[i].Name == "lvm-lab" {
				h.editNet(&ns[i])
			}
		}
	}
	return ns, err
}

func (h *tamperHost) FilterBindings(ctx context.Context) ([]virt.FilterBinding, error) {
	bs, err := h.fakeHV.FilterBindings(ctx)
	if h.dropBindings {
		var keep []virt.FilterBinding
		for _, b := range bs {
			if b.Owner != "web-1" {
				keep = append(keep, b)
			}
		}
		bs = keep
	}
	return bs, err
}

func TestVerifyPortIsolation(t *testing.T) {
	h := newFakeHost(t)
	p := loadProfile(t, "iso", isoProfile)
	apply(t, plan(t, p, h))
	v := verifyOK(t, h, p)
	if !v.OK {
		t.Fatalf("verify: %+v", v)
	}
	if st, why := status(v, "box", checkPortIsolation); st != CheckPass || !strings.Contains(why, "isolated from each other") {
		t.Errorf("port isolation = %s (%s)", st, why)
	}
	if st, why := status(v, "box", checkDNS); st != CheckPass || !strings.Contains(why, "DNS is on") {
		t.Errorf("dns = %s (%s)", st, why)
	}

	// An interface that overrides the network's isolation.
	d, err := h.GetDomain(context.Background(), "box")
	if err != nil {
		t.Fatal(err)
	}
	over := &xmlHost{fakeHV: h, domain: "box", edit: func(s string) string {
		return strings.Replace(s, "</interface>", "<port isolated='no'/></interface>", 1)
	}}
	if !strings.Contains(d.XML, "</interface>") {
		t.Fatalf("domain XML has no interface: %s", d.XML)
	}
	v = verifyOK(t, over, p)
	if st, why := status(v, "box", checkPortIsolation); st != CheckFail || !strings.Contains(why, "isolated='no'") {
		t.Errorf("port isolation with an override = %s (%s)", st, why)
	}
	c := changesByName(plan(t, p, over).Plan)["vm/box"]
	if c.Action != ActionUpdate || !strings.Contains(strings.Join(reasonStrings(c.Reasons), ";"), "overrides the network's port isolation") {
		t.Errorf("plan with an override: %+v", c)
	}

	// The profile turned guest_to_guest on, the host still isolates.
	p2 := loadProfile(t, "iso", strings.Replace(isoProfile, "guest_to_guest = false", "guest_to_guest = true", 1))
	v = verifyOK(t, h, p2)
	if st, why := status(v, "box", checkPortIsolation); st != CheckFail || !strings.Contains(why, "port isolation is on") {
		t.Errorf("port isolation against a changed profile = %s (%s)", st, why)
	}
}

type xmlHost struct {
	*fakeHV
	domain string
	edit   func(string) string
}

func (h *xmlHost) ListDomains(ctx context.Context) ([]virt.Domain, error) {
	ds, err := h.fakeHV.ListDomains(ctx)
	for i := range ds {
		if ds[i].Name == h.domain {
			ds[i].XML = h.edit(ds[i].XML)
		}
	}
	return ds, err
}

func TestVerifyAllWithoutProfile(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	apply(t, plan(t, loadProfile(t, "lab", labProfile), h))
	apply(t, plan(t, loadProfile(t, "iso", isoProfile), h))
	v, err := verifyHost(ctx, h, VerifyOptions{URI: remoteURI})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || len(v.VMs) != 4 {
		t.Fatalf("verify --all: ok=%v, %d VMs", v.OK, len(v.VMs))
	}
	if v.VMs[0].Profile != "iso" || v.VMs[1].Profile != "lab" {
		t.Errorf("order: %s/%s, %s/%s", v.VMs[0].Profile, v.VMs[0].Name, v.VMs[1].Profile, v.VMs[1].Name)
	}
	for _, c := range []string{checkDNS, checkPortIsolation, checkFilterRules} {
		if st, why := status(v, "web-1", c); st != CheckSkip || !strings.Contains(why, "profile") {
			t.Errorf("web-1 %s without profile = %s (%s), want skip", c, st, why)
		}
	}
	for _, c := range []string{checkFilterRef, checkFilterBinding, checkNoForward, checkNoUplink} {
		if st, why := status(v, "box", c); st != CheckPass {
			t.Errorf("box %s without profile = %s (%s), want pass", c, st, why)
		}
	}
	// The root filter no longer chains the guard: caught without a profile.
	if err := h.TamperFilter("lvm-lab", func(f *libvirtxml.NWFilter) { f.Entries = f.Entries[:1] }); err != nil {
		t.Fatal(err)
	}
	v, err = verifyHost(ctx, h, VerifyOptions{URI: remoteURI})
	if err != nil {
		t.Fatal(err)
	}
	if st, why := status(v, "web-2", checkFilterRules); v.OK || st != CheckFail || !strings.Contains(why, "does not reference lvm-lab-guard") {
		t.Errorf("tampered root filter without profile: ok=%v %s (%s)", v.OK, st, why)
	}
	if st, _ := status(v, "box", checkFilterRules); st != CheckSkip {
		t.Errorf("box filter rules = %s, want skip (its filter is intact)", st)
	}
}

func TestVerifyReportsMissingAndStoppedVMs(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))
	if err := h.DestroyDomain(ctx, "web-2"); err != nil {
		t.Fatal(err)
	}
	p3 := loadProfile(t, "lab", strings.Replace(labProfile, "count  = 2", "count  = 3", 1))
	v := verifyOK(t, h, p3)
	if !v.OK || !v.Warnings() {
		t.Fatalf("ok=%v warnings=%v, want ok with a warning", v.OK, v.Warnings())
	}
	if st, why := status(v, "web-3", checkExists); st != CheckWarn || !strings.Contains(why, "hint: apply") {
		t.Errorf("web-3 = %s (%s)", st, why)
	}
	if st, _ := status(v, "web-2", checkFilterBinding); st != CheckSkip {
		t.Errorf("binding of a shut-off VM = %s, want skip", st)
	}
	if st, _ := status(v, "web-2", checkFilterRef); st != CheckPass {
		t.Errorf("definition of a shut-off VM = %s, want pass", st)
	}
}

// TestHostConditionsWeakeningIsolation: a host with rp_filter 0 and
// bridge-nf-call-iptables off, and Docker's chains with FORWARD ACCEPT, is
// flagged by SystemFindings (doctor) and by Verify on a local URI, each
// with its fix.
func TestHostConditionsWeakeningIsolation(t *testing.T) {
	root := t.TempDir()
	for path, v := range map[string]string{
		"proc/sys/net/bridge/bridge-nf-call-iptables": "0",
		"proc/sys/net/ipv4/conf/all/rp_filter":        "0",
		"proc/sys/net/ipv4/conf/default/rp_filter":    "0",
		"proc/sys/net/ipv4/ip_forward":                "1",
	} {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, "iptables")
	script := "#!/bin/sh\n[ \"$1\" = -S ] || exit 2\nprintf -- '-P INPUT ACCEPT\\n-P FORWARD ACCEPT\\n-P OUTPUT ACCEPT\\n-N DOCKER\\n'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	sys := hostcheck.System{Root: root, LookPath: func(name string) (string, error) { return bin, nil }}
	want := map[string]string{
		"rp_filter":               "rp_filter=2",
		"bridge-nf-call-iptables": "bridge-nf-call-iptables=1",
		"forward-policy":          "iptables -P FORWARD DROP",
	}
	check := func(where string, fs []hostcheck.Finding) {
		t.Helper()
		for name, fix := range want {
			found := false
			for _, f := range fs {
				if f.Check == name {
					found = true
					if f.Severity != hostcheck.SeverityWarn || !strings.Contains(f.Fix, fix) {
						t.Errorf("%s: %s = %s %q fix %q, want a warning with fix %q", where, name, f.Severity, f.Message, f.Fix, fix)
					}
				}
			}
			if !found {
				t.Errorf("%s: no %s finding in %+v", where, name, fs)
			}
		}
	}
	check("SystemFindings", hostcheck.Findings(context.Background(), sys))

	h := newFakeHost(t)
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))
	v, err := verifyHost(context.Background(), h, VerifyOptions{URI: "qemu:///system", Profile: p, System: sys})
	if err != nil {
		t.Fatal(err)
	}
	check("Verify", v.HostChecks)
	if !v.OK || !v.Warnings() {
		t.Errorf("verify ok=%v warnings=%v: host warnings do not fail verify but are reported", v.OK, v.Warnings())
	}
}

// A running network that lacks a VM's reservation (a restart pending, the
// live update failed or was undone by hand) gives the VM another address:
// verify warns.
func TestVerifyWarnsAboutInactiveReservation(t *testing.T) {
	h := &tamperHost{fakeHV: newFakeHost(t)}
	p := loadProfile(t, "lab", labProfile)
	apply(t, plan(t, p, h))
	kept := ""
	h.editNet = func(n *virt.Network) {
		r := *n
		r.DHCPHosts = n.DHCPHosts[:1]
		kept = r.DHCPHosts[0].Name
		n.Running, n.Stale = &r, true
	}
	v := verifyOK(t, h, p)
	missing := map[string]string{"web-1": "web-2", "web-2": "web-1"}[kept]
	st, why := status(v, missing, checkNetwork)
	if st != CheckWarn || !strings.Contains(why, "lacks this VM's address reservation") {
		t.Errorf("%s network = %s (%s)", missing, st, why)
	}
	warned := 0
	for _, vm := range []string{"web-1", "web-2"} {
		if st, why := status(v, vm, checkNetwork); st == CheckWarn && strings.Contains(why, "older definition") {
			warned++
		}
	}
	if warned != 2 {
		t.Errorf("%d of 2 VMs warned about the stale network", warned)
	}
	if !v.OK {
		t.Errorf("a stale network alone fails verify: %+v", v)
	}
}
