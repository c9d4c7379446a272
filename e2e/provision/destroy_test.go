package provision

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

const destroyProfile = `
variable "golden" {}
variable "n" {
  default = 1
}

license "dst" {
  product_key = env("DST_KEY")
  edition     = "professional"
  channel     = "mak"
  seats       = 2
}

network "dst" {
  subnet = "10.94.0.0/24"
  dhcp   = true
}

snapshot_policy "p" {}

vm "dst" {
  count  = var.n
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image = var.golden
  }
  licenses        = [license.dst]
  network         = network.dst
  snapshot_policy = snapshot_policy.p
}
`

// clashProfile names objects that exist on the host but are not its own.
// The line numbers matter: the test expects diagnostics at these blocks.
const clashProfile = `variable "golden" {}

network "dstx" {
  subnet = "10.95.0.0/24"
}

network "dsty" {
  subnet = "10.96.0.0/24"
}

vm "dst-3" {
  os     = "win7-x64"
  memory = "256MiB"
  disk {
    image   = var.golden
    prepare = "none"
  }
  network = network.dstx
}

vm "dst-9" {
  os     = "win7-x64"
  memory = "256MiB"
  disk {
    image   = var.golden
    prepare = "none"
  }
  network = network.dsty
}

vm "dst-4" {
  os     = "win7-x64"
  memory = "256MiB"
  disk {
    image   = var.golden
    prepare = "none"
  }
}
`

// TestDestroy: destroy removes everything the profile owns (an unfinished
// VM with its answer media included, snapshots with their disks) and
// nothing else; objects with similar names that legacyvm does not own, or
// that another profile owns, survive untouched, and a profile that names
// them gets located diagnostics at plan and changes nothing.
func TestDestroy(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	dir := e2eutil.Profile(t, "dst", map[string]string{"main.hcl": h.HostBlock() + destroyProfile})
	env := []string{"DST_KEY=" + keyMisc}
	golden := []string{"--var", "golden=" + h.Golden}
	outputs := map[string]string{}
	run := func(want int, args ...string) e2eutil.Result {
		t.Helper()
		r := h.RunEnv(t, env, args...)
		outputs[fmt.Sprintf("%s #%d", strings.Join(args, " "), len(outputs))] = r.Stdout + r.Stderr
		if r.Code != want {
			t.Fatalf("exit %d, want %d\n%s", r.Code, want, r)
		}
		return r
	}

	// Objects legacyvm does not own, named like its own.
	foreign := makeForeignObjects(t, h)
	before := foreign.dump(t, h)

	// dst-1 provisioned, with its baseline and a manual snapshot; dst-2
	// caught in setup (answer media attached) by a SIGKILL.
	run(0, append([]string{"apply", "--auto-approve", dir}, golden...)...)
	run(0, "snapshot", "create", "dst-1", "manual-1")
	cmd, stdout, stderr := h.Start(t, env, append([]string{"apply", "--auto-approve", dir, "--var", "n=2"}, golden...)...)
	waitOutputN(t, cmd, stderr, `dst-2: starting specialize pass`, 1, 3*time.Minute)
	killGroup(t, cmd)
	outputs["killed apply"] = stdout.String() + stderr.String()

	sys1 := filepath.Join(h.PoolDir, "lvm-dst-1-system.qcow2")
	answer2 := filepath.Join(h.PoolDir, "lvm-dst-2-answer.iso")
	if out, err := exec.Command("qemu-img", "snapshot", "-U", "-l", sys1).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "clean") || !strings.Contains(string(out), "manual-1") {
		t.Fatalf("qemu-img snapshot -l %s before destroy: %v\n%s", sys1, err, out)
	}
	if _, err := os.Stat(answer2); err != nil {
		t.Fatalf("the killed setup left no answer media to destroy: %v", err)
	}
	scope := regexp.MustCompile(`^(lvm-)?dst`)
	// dst-2 runs its setup, or has just powered off at its end. The
	// killed apply may have left libvirtd in the middle of starting it
	// (paused while its traffic filter is set up, then running): wait
	// until that start is over, or the state read here and the inventory
	// read below see two moments of it.
	d2, err := h.HV.GetDomain(ctxT(t, time.Minute), "dst-2")
	for deadline := time.Now().Add(time.Minute); err == nil && d2.State == virt.StatePaused && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		d2, err = h.HV.GetDomain(ctxT(t, time.Minute), "dst-2")
	}
	if err != nil {
		t.Fatal(err)
	}
	inv := wantInv{profile: "dst", domains: []string{"dst-1"}, snapshots: []string{"clean", "manual-1"}, networks: []string{"dst"},
		extra: append(foreign.lines(), "domain dst-2 "+string(d2.State)+" profile=dst unprovisioned", "volume pool/lvm-dst-2-system.qcow2",
			"file pool/lvm-dst-2-system.qcow2", "volume pool/lvm-dst-2-answer.iso", "file pool/lvm-dst-2-answer.iso")}
	checkInventory(t, "before destroy", inventory(t, h, scope, "dst", "dstother"), inv.lines(h))

	r := run(0, append([]string{"destroy", "--auto-approve", dir}, golden...)...)
	for _, want := range []string{"dst-1", "dst-2", "lvm-dst"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("destroy did not list %s:\n%s", want, r)
		}
	}
	checkInventory(t, "after destroy", inventory(t, h, scope, "dst", "dstother"), wantInv{profile: "dst", extra: foreign.lines(), unpooled: true}.lines(h))
	for _, f := range []string{sys1, answer2} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s survived destroy (%v)", f, err)
		}
	}
	if out, err := exec.Command("qemu-img", "snapshot", "-U", "-l", sys1).CombinedOutput(); err == nil {
		t.Errorf("qemu-img still finds snapshots of %s after destroy:\n%s", sys1, out)
	}
	if after := foreign.dump(t, h); after != before {
		t.Errorf("destroy changed objects legacyvm does not own:\n%s", lineDiff(before, after))
	}

	// A filter named like the profile's own, made by hand after its network
	// is gone: a second destroy leaves it alone, and plan refuses to take it
	// over.
	define(t, h, "nwfilter-define", "lvm-dst-guard", handFilter("lvm-dst-guard"))
	t.Cleanup(func() { _, _ = h.Env.Virsh(ctxT(t, time.Minute), "nwfilter-undefine", "lvm-dst-guard") })
	foreign.filters = append(foreign.filters, "lvm-dst-guard")
	before = foreign.dump(t, h)
	run(0, append([]string{"destroy", "--auto-approve", dir}, golden...)...)
	r = run(1, append([]string{"plan", dir}, golden...)...)
	if at := lineOf(t, filepath.Join(dir, "main.hcl"), `network "dst" {`); !diagnosticAt(r.Stderr, "A traffic filter named lvm-dst-guard already exists", at) {
		t.Errorf("plan does not refuse the hand-made lvm-dst-guard at the network block:\n%s", r.Stderr)
	}
	if after := foreign.dump(t, h); after != before {
		t.Errorf("destroy changed a hand-made filter named like the profile's:\n%s", lineDiff(before, after))
	}
	virsh(t, h, "nwfilter-undefine", "lvm-dst-guard")
	foreign.filters = foreign.filters[:len(foreign.filters)-1]
	before = foreign.dump(t, h)

	// A profile whose names clash with them: located diagnostics, nothing
	// touched, by plan and by apply.
	clash := e2eutil.Profile(t, "clash", map[string]string{"main.hcl": clashProfile, "host.hcl": h.HostBlock()})
	main := filepath.Join(clash, "main.hcl")
	for _, args := range [][]string{{"plan"}, {"apply", "--auto-approve"}} {
		r := run(1, append(append(args, clash), golden...)...)
		for _, d := range []struct{ summary, at string }{
			{"A network named lvm-dstx already exists", main + " line 3"},
			{"A traffic filter named lvm-dsty-guard already exists", main + " line 7"},
			{"A domain named dst-3 already exists", main + " line 11"},
			{"A domain named dst-9 already exists", main + " line 21"},
			{"Disk volume exists without its VM", main + " line 31"},
		} {
			if !diagnosticAt(r.Stderr, d.summary, d.at) {
				t.Errorf("%s: no diagnostic %q at %s:\n%s", args[0], d.summary, d.at, r.Stderr)
			}
		}
		if regexp.MustCompile(`(?m)^\[ *\d+\.\ds\]`).MatchString(r.Stderr) {
			t.Errorf("%s of a clashing profile started working:\n%s", args[0], r.Stderr)
		}
	}
	checkInventory(t, "after the clashing profile", inventory(t, h, scope, "dst", "dstother", "clash"), wantInv{profile: "dst", extra: foreign.lines(), unpooled: true}.lines(h))
	if after := foreign.dump(t, h); after != before {
		t.Errorf("the clashing profile changed objects it does not own:\n%s", lineDiff(before, after))
	}
	noSecrets(t, outputs)
}

// lineOf is "FILE line N" for the first line of file that holds text.
func lineOf(t *testing.T, file, text string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, text) {
			return fmt.Sprintf("%s line %d", file, i+1)
		}
	}
	t.Fatalf("%s has no line with %q", file, text)
	return ""
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out strings.Builder
	for _, l := range strings.Split(a+"\n"+b, "\n") {
		switch n := count[l]; {
		case n > 0:
			fmt.Fprintf(&out, "- %s\n", l)
		case n < 0:
			fmt.Fprintf(&out, "+ %s\n", l)
		}
		delete(count, l)
	}
	return out.String()
}

// diagnosticAt reports whether text holds an error diagnostic whose summary
// contains summary and whose location line starts with "on <at>".
func diagnosticAt(text, summary, at string) bool {
	for _, block := range strings.Split(text, "Error: ")[1:] {
		lines := strings.Split(block, "\n")
		if !strings.Contains(lines[0], summary) {
			continue
		}
		for _, l := range lines[1:] {
			if strings.HasPrefix(strings.TrimSpace(l), "on "+at+",") {
				return true
			}
		}
	}
	return false
}

// foreignObjects are objects made by hand on the host, with names like
// legacyvm's.
type foreignObjects struct {
	domains, networks, filters, volumes []string
}

func (f foreignObjects) lines() []string {
	return []string{
		"domain dst-3 shutoff profile=dstother",
		"domain dst-9 shutoff unmanaged",
		"network lvm-dstx unmanaged",
		"filter lvm-dstx-guard",
		"filter lvm-dsty-guard",
		"volume pool/lvm-dst-4-system.qcow2", "file pool/lvm-dst-4-system.qcow2",
		"volume pool/user-data.img", "file pool/user-data.img",
	}
}

// dump is every foreign object's definition, for before/after comparisons.
func (f foreignObjects) dump(t *testing.T, h *e2eutil.Host) string {
	t.Helper()
	var b strings.Builder
	for _, d := range f.domains {
		b.WriteString(virsh(t, h, "dumpxml", "--inactive", d))
	}
	for _, n := range f.networks {
		b.WriteString(virsh(t, h, "net-dumpxml", n))
		b.WriteString(virsh(t, h, "net-info", n))
	}
	for _, n := range f.filters {
		b.WriteString(virsh(t, h, "nwfilter-dumpxml", n))
	}
	for _, v := range f.volumes {
		// Timestamps change when the file is read; its content must not.
		var vol libvirtxml.StorageVolume
		if err := vol.Unmarshal(virsh(t, h, "vol-dumpxml", "--pool", h.Pool, v)); err != nil {
			t.Fatal(err)
		}
		vol.Target.Timestamps = nil
		vol.Target.ClusterSize = nil // reported after a pool refresh only
		x, err := vol.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(vol.Target.Path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s\nsha256 %x\n", x, sha256.Sum256(data))
	}
	return b.String()
}

// define writes the XML of x to a file and runs virsh cmd on it.
func define(t *testing.T, h *e2eutil.Host, cmd, name string, x interface{ Marshal() (string, error) }) {
	t.Helper()
	s, err := x.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	virsh(t, h, cmd, p)
}

// handFilter is an nwfilter someone wrote by hand.
func handFilter(name string) *libvirtxml.NWFilter {
	return &libvirtxml.NWFilter{Name: name, Chain: "ipv4", Entries: []libvirtxml.NWFilterEntry{{
		Rule: &libvirtxml.NWFilterRule{Action: "drop", Direction: "out", Priority: 500,
			IP: &libvirtxml.NWFilterRuleIP{Protocol: libvirtxml.NWFilterField{Str: "udp"}}},
	}}}
}

// makeForeignObjects defines, with virsh and XML from libvirtxml structs:
// a domain dst-3 owned by another legacyvm profile (dstother), a domain
// dst-9 without any metadata, a running network lvm-dstx, nwfilters
// lvm-dstx-guard and lvm-dsty-guard, and two volumes in the host's pool,
// one named like a legacyvm system disk.
func makeForeignObjects(t *testing.T, h *e2eutil.Host) foreignObjects {
	t.Helper()
	define := func(cmd, name string, x interface{ Marshal() (string, error) }) {
		t.Helper()
		define(t, h, cmd, name, x)
	}
	domain := func(name string, m *virt.Metadata) *libvirtxml.Domain {
		d := &libvirtxml.Domain{
			Type:   h.Env.Accel,
			Name:   name,
			Memory: &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"},
			OS:     &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"}},
		}
		if m != nil {
			meta, err := domainxml.MetadataXML(m)
			if err != nil {
				t.Fatal(err)
			}
			d.Metadata = &libvirtxml.DomainMetadata{XML: meta}
		}
		return d
	}
	define("define", "dst-3", domain("dst-3", &virt.Metadata{Profile: "dstother", VM: "dst", Instance: "dst-3", SpecHash: "0123456789abcdef", Provisioned: true}))
	define("define", "dst-9", domain("dst-9", nil))
	define("net-define", "lvm-dstx", &libvirtxml.Network{Name: "lvm-dstx", Bridge: &libvirtxml.NetworkBridge{Name: "lvm-dstx"}})
	virsh(t, h, "net-start", "lvm-dstx")
	for _, name := range []string{"lvm-dstx-guard", "lvm-dsty-guard"} {
		define("nwfilter-define", name, handFilter(name))
	}
	virsh(t, h, "vol-create-as", h.Pool, "lvm-dst-4-system.qcow2", "1M", "--format", "qcow2")
	virsh(t, h, "vol-create-as", h.Pool, "user-data.img", "1M", "--format", "raw")
	t.Cleanup(func() {
		for _, d := range []string{"dst-3", "dst-9"} {
			_, _ = h.Env.Virsh(ctxT(t, time.Minute), "undefine", d)
		}
		_, _ = h.Env.Virsh(ctxT(t, time.Minute), "net-destroy", "lvm-dstx")
		_, _ = h.Env.Virsh(ctxT(t, time.Minute), "net-undefine", "lvm-dstx")
		for _, f := range []string{"lvm-dstx-guard", "lvm-dsty-guard"} {
			_, _ = h.Env.Virsh(ctxT(t, time.Minute), "nwfilter-undefine", f)
		}
	})
	return foreignObjects{
		domains:  []string{"dst-3", "dst-9"},
		networks: []string{"lvm-dstx"},
		filters:  []string{"lvm-dstx-guard", "lvm-dsty-guard"},
		volumes:  []string{"lvm-dst-4-system.qcow2", "user-data.img"},
	}
}
