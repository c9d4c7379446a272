package snapshots

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// quietGuest are the stand-in guest settings every VM here starts from: no
// network services, no answer-CD scan (these VMs have no NIC and no answer
// media), so a boot is as short as the stand-in allows.
var quietGuest = []string{"rig.ip=none", "rig.listen=0", "rig.control=0", "rig.answercd=0"}

// vmSpec is a vm block for the stand-in guest: 1 vCPU, 256 MiB, a linked
// clone of the host's golden image, no answer media.
type vmSpec struct {
	name    string
	count   int    // > 1: count = N
	policy  string // snapshot_policy block name; "" for none
	network string // network block name; "" for no NIC
	// license names a license block: the VM then gets answer media
	// (prepare = "specialize") and the guest processes it.
	license string
	// rig are rig.KEY=VALUE words for the guest (see
	// internal/testenv/guest/init.sh), after quietGuest (later words win).
	rig []string
}

func (v vmSpec) hcl(h *e2eutil.Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vm %q {\n  os     = \"win7-x64\"\n  cpus   = 1\n  memory = \"256MiB\"\n", v.name)
	if v.count > 1 {
		fmt.Fprintf(&b, "  count  = %d\n", v.count)
	}
	prepare := "none"
	rig := v.rig
	if v.license != "" {
		prepare = "specialize"
		rig = append([]string{"rig.answercd=1"}, rig...)
		fmt.Fprintf(&b, "  licenses = [license.%s]\n", v.license)
	}
	fmt.Fprintf(&b, "  disk {\n    image   = %q\n    prepare = %q\n  }\n", h.Golden, prepare)
	if v.policy != "" {
		fmt.Fprintf(&b, "  snapshot_policy = snapshot_policy.%s\n", v.policy)
	}
	if v.network != "" {
		fmt.Fprintf(&b, "  network = network.%s\n", v.network)
	}
	words := append(append([]string(nil), quietGuest...), rig...)
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = strconv.Quote(w)
	}
	fmt.Fprintf(&b, "  oem_strings = [%s]\n}\n", strings.Join(q, ", "))
	return b.String()
}

// vmBlock is the vm block of vmSpec{name, count, policy, "", rig}.
func vmBlock(h *e2eutil.Host, name string, count int, policy string, rig ...string) string {
	return vmSpec{name: name, count: count, policy: policy, rig: rig}.hcl(h)
}

// controlNetwork is an isolated network with DHCP on which the host may
// reach the stand-in guest's control port (7778).
func controlNetwork(name, subnet string) string {
	return fmt.Sprintf(`network %q {
  subnet = %q
  dhcp   = true
  allow "control" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 7778
  }
}
`, name, subnet)
}

// controlGuest are the rig words for a guest reached through
// controlNetwork.
var controlGuest = []string{"rig.ip=dhcp", "rig.control=7778"}

// guestIP waits for the guest's network line and returns its address.
func guestIP(t *testing.T, h *e2eutil.Host, dom string) string {
	t.Helper()
	line := h.WaitSerial(t, dom, `RIG net .* ip=\d+\.\d+\.\d+\.\d+/`, 90*time.Second)
	m := regexp.MustCompile(` ip=(\d+\.\d+\.\d+\.\d+)/`).FindStringSubmatch(line)
	return m[1]
}

// control sends one command to the guest's control port from the host
// side of the test's network namespace and returns the guest's answer.
func control(t *testing.T, h *e2eutil.Host, ip, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A guest that powers off after answering never closes the connection:
	// timeout ends nc (and with it the pipe Run reads) once the answer is in.
	out, err := h.Env.Run(ctx, "sh", "-c", fmt.Sprintf("echo %s | timeout -s KILL 8 %s nc -w 5 %s 7778", cmd, h.Guest.Busybox, ip))
	answer, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if !strings.HasPrefix(answer, "RIG-OK") {
		t.Fatalf("control %s %s: %v\n%s", ip, cmd, err, out)
	}
	return answer
}

// writeProfile writes a one-file profile: the host block, then blocks.
func writeProfile(t *testing.T, h *e2eutil.Host, name string, blocks ...string) string {
	t.Helper()
	return e2eutil.Profile(t, name, map[string]string{"main.hcl": h.HostBlock() + strings.Join(blocks, "\n")})
}

// apply applies a profile and registers its destroy at the end of the test
// (a test that destroys it itself makes that a no-op).
func apply(t *testing.T, h *e2eutil.Host, dir string) e2eutil.Result {
	t.Helper()
	r := h.MustRun(t, []string{"apply", "--auto-approve", dir})
	t.Cleanup(func() { h.Run(t, "destroy", "--auto-approve", dir) })
	return r
}

// snapJSON is one snapshot as `legacyvm snapshot list -o json` prints it
// (docs/json.md): the description legacyvm stores is shown parsed (note,
// kind, policy, expires), never as its internal JSON.
type snapJSON struct {
	Name        string     `json:"name"`
	Description string     `json:"note"`
	Parent      string     `json:"parent"`
	Created     time.Time  `json:"created"`
	State       string     `json:"state"`
	Memory      bool       `json:"memory"`
	Current     bool       `json:"current"`
	Kind        string     `json:"kind"`
	Policy      string     `json:"policy"`
	Expires     *time.Time `json:"expires"`
}

// vmSnapsJSON is one VM of `legacyvm snapshot list -o json`.
type vmSnapsJSON struct {
	VM        string     `json:"vm"`
	Profile   string     `json:"profile"`
	Baseline  string     `json:"baseline"`
	Snapshots []snapJSON `json:"snapshots"`
}

// listJSON runs `snapshot list -o json VMS...` and decodes it strictly
// (an unknown field fails: the test then learns of a format change).
func listJSON(t *testing.T, h *e2eutil.Host, vms ...string) []vmSnapsJSON {
	t.Helper()
	r := h.MustRun(t, append([]string{"snapshot", "list", "-o", "json"}, vms...))
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	var doc struct {
		FormatVersion int               `json:"format_version"`
		VMs           []vmSnapsJSON     `json:"vms"`
		Skipped       []json.RawMessage `json:"skipped"`
	}
	if err := dec.Decode(&doc); err != nil || doc.FormatVersion != 1 {
		t.Fatalf("decode snapshot list: %v (format_version %d)\n%s", err, doc.FormatVersion, r)
	}
	out := doc.VMs
	// encoding/json matches names case-insensitively: check the keys as
	// printed, so scripts can rely on them.
	var raw struct {
		VMs []struct {
			Snapshots []map[string]any `json:"snapshots"`
		} `json:"vms"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &raw); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"name": true, "note": true, "parent": true, "created": true, "state": true,
		"memory": true, "current": true, "kind": true, "policy": true, "expires": true}
	bad := map[string]bool{}
	for _, vm := range raw.VMs {
		for _, s := range vm.Snapshots {
			for k := range s {
				if !allowed[k] {
					bad["unexpected key "+k] = true
				}
			}
			if d, ok := s["note"].(string); ok && strings.HasPrefix(d, "{") {
				bad["note holds legacyvm's internal JSON: "+d] = true
			}
			for _, k := range []string{"name", "created", "state", "kind", "expires"} {
				if _, ok := s[k]; !ok {
					bad["missing key "+k] = true
				}
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(bad)) {
		t.Errorf("snapshot list -o json: %s", k)
	}
	return out
}

// snapsOf returns the snapshots `snapshot list -o json VM` shows for vm.
func snapsOf(t *testing.T, h *e2eutil.Host, vm string) []snapJSON {
	t.Helper()
	l := listJSON(t, h, vm)
	if len(l) != 1 || l[0].VM != vm {
		t.Fatalf("snapshot list %s: got %+v", vm, l)
	}
	return l[0].Snapshots
}

// names returns the snapshot names, sorted.
func names(s []snapJSON) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		out = append(out, x.Name)
	}
	sort.Strings(out)
	return out
}

// virshSnapshots lists a domain's snapshots the way libvirt records them
// (virsh, not legacyvm's adapter), sorted.
func virshSnapshots(t *testing.T, h *e2eutil.Host, dom string) []string {
	t.Helper()
	out, err := h.Env.Virsh(context.Background(), "snapshot-list", dom, "--name")
	if err != nil {
		t.Fatalf("virsh snapshot-list %s: %v", dom, err)
	}
	return sortedFields(string(out))
}

// qcowSnapshots lists the internal snapshots inside a qcow2 image
// (qemu-img snapshot -l; -U reads an image a running QEMU holds), sorted.
func qcowSnapshots(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("qemu-img", "snapshot", "-l", "-U", path).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img snapshot -l %s: %v\n%s", path, err, out)
	}
	// Header lines, then "ID TAG VM-SIZE DATE VM-CLOCK ICOUNT".
	var tags []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] != "ID" && regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			tags = append(tags, f[1])
		}
	}
	sort.Strings(tags)
	return tags
}

func sortedFields(s string) []string {
	f := strings.Fields(s)
	sort.Strings(f)
	if f == nil {
		f = []string{}
	}
	return f
}

// systemDisk is the path of a VM's system volume in the host's pool.
func systemDisk(h *e2eutil.Host, vm string) string {
	return filepath.Join(h.PoolDir, "lvm-"+vm+"-system.qcow2")
}

// markerSector is where the stand-in guest writes its disk marker (see
// internal/testenv/guest/init.sh: sector 57345 of the system disk).
const markerSector = 57345

// diskMarker reads the stand-in's marker sector from a VM's disk image
// with qemu-io while the VM is off: the text there, "" when the sector
// holds no marker.
func diskMarker(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("qemu-io", "-r", "-f", "qcow2", "-c", fmt.Sprintf("read -v %d 64", markerSector*512), path).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-io read %s: %v\n%s", path, err, out)
	}
	// Lines: "01c00a00:  52 49 47 2d ...  RIG-MARKER.guest.."
	var text strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if m := regexp.MustCompile(`^[0-9a-f]{8}:\s+((?:[0-9a-f]{2} ){16})`).FindStringSubmatch(line); m != nil {
			for _, hx := range strings.Fields(m[1]) {
				v, _ := strconv.ParseUint(hx, 16, 8)
				if v >= 0x20 && v < 0x7f {
					text.WriteByte(byte(v))
				}
			}
		}
	}
	if s := text.String(); strings.HasPrefix(s, "RIG-MARKER") {
		return s
	}
	return ""
}

// hbRe matches the stand-in's heartbeat line.
var hbRe = regexp.MustCompile(`RIG hb n=(\d+) uptime=([0-9.]+)`)

// heartbeat parses a heartbeat line into its counter and the guest uptime.
func heartbeat(t *testing.T, line string) (int, float64) {
	t.Helper()
	m := hbRe.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not a heartbeat line: %q", line)
	}
	n, _ := strconv.Atoi(m[1])
	up, _ := strconv.ParseFloat(m[2], 64)
	return n, up
}

// lastHeartbeat is the newest heartbeat in a serial log (n 0 if none).
func lastHeartbeat(t *testing.T, h *e2eutil.Host, dom string) (int, float64) {
	t.Helper()
	b, _ := os.ReadFile(h.SerialLog(dom))
	ms := hbRe.FindAllString(string(b), -1)
	if len(ms) == 0 {
		return 0, 0
	}
	return heartbeat(t, ms[len(ms)-1])
}

// serial returns a domain's serial log.
func serial(h *e2eutil.Host, dom string) string {
	b, _ := os.ReadFile(h.SerialLog(dom))
	return string(b)
}

// domState is a domain's state as libvirt reports it (virsh domstate).
func domState(t *testing.T, h *e2eutil.Host, dom string) string {
	t.Helper()
	out, err := h.Env.Virsh(context.Background(), "domstate", dom)
	if err != nil {
		t.Fatalf("virsh domstate %s: %v", dom, err)
	}
	return strings.TrimSpace(string(out))
}
