package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// Fake product keys: valid in form (5x5 from BCDFGHJKMPQRTVWXY2346789),
// never real, one per profile so that no two profiles on the shared
// libvirtd claim the same key. No group repeats across keys and every
// checked group holds a letter outside hex digits, so a group found in an
// output is a leak, not a UUID or serial. Every output a test sees is
// checked for them.
const (
	keySingle  = "BCDFG-HJKMP-QRTVW-XY234-6789B"
	keyLab     = "QGT6C-CYJCD-VVDKD-33TCK-C2GPV"
	keyOps     = "G2F3P-36JRF-4JX72-VQW3W-RPKH8"
	keyInstall = "KD3PY-XQ9WP-4DFYV-HQGXV-QQ8R4"
	keyKill    = "X3WDD-MX87D-37WP8-T7RBW-RH4FX"
	keyMisc    = "CJPG9-KTTXD-HWT2M-GV2M8-VR7TK"
	keyConc    = "GDHGK-7KBX3-HMPBG-V2R43-QG8Y4"
	// keyKillLoop is TestKillLoopRandom's own: the tests of this package
	// share one host (and its fingerprint secret), where one MAK key in
	// two profiles counts against the same seats.
	keyKillLoop = "TWQ8V-4PKJD-72HCM-B9XGY-3FRMT"
	// keyOnce is TestSecretCommandRunsOnce's, printed by a command()
	// source.
	keyOnce = "M3R8T-Q6W2J-D9F4K-B7H3V-Y2C8P"
	// fakePassword is the administrator password of the install-media
	// example: a secret too.
	fakePassword = "Sw0rdf1sh-not-real"
)

var allKeys = []string{keySingle, keyLab, keyOps, keyInstall, keyKill, keyMisc, keyConc, keyKillLoop, keyOnce}

// lastGroup is the part of a key legacyvm may show.
func lastGroup(k string) string { return k[len(k)-5:] }

// repoRoot is the module root (this file is e2e/provision/helpers_test.go).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// copyExample copies examples/<name> into a fresh directory of the same
// name (the profile name), adds host.hcl (the harness host) and the extra
// files (relative path -> content, written 0600 like the secrets the
// examples ask for) and returns the directory.
func copyExample(t *testing.T, h *e2eutil.Host, name string, extra map[string]string) string {
	t.Helper()
	src := filepath.Join(repoRoot(), "examples", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy example %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dst, "host.hcl"), []byte(h.HostBlock()), 0o644); err != nil {
		t.Fatal(err)
	}
	for rel, content := range extra {
		p := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// ctxT is a context that ends after d or when the test ends.
func ctxT(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// virsh runs virsh against the harness's libvirtd.
func virsh(t testing.TB, h *e2eutil.Host, args ...string) string {
	t.Helper()
	out, err := h.Env.Virsh(ctxT(t, time.Minute), args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(out)
}

// liveDomain parses the live XML of a domain (what QEMU runs) with
// libvirtxml; inactive selects the persistent definition.
func liveDomain(t testing.TB, h *e2eutil.Host, name string, inactive bool) *libvirtxml.Domain {
	t.Helper()
	args := []string{"dumpxml", name}
	if inactive {
		args = append(args, "--inactive")
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(virsh(t, h, args...)); err != nil {
		t.Fatalf("parse domain %s XML: %v", name, err)
	}
	return &d
}

func liveNetwork(t testing.TB, h *e2eutil.Host, name string) *libvirtxml.Network {
	t.Helper()
	var n libvirtxml.Network
	if err := n.Unmarshal(virsh(t, h, "net-dumpxml", name)); err != nil {
		t.Fatalf("parse network %s XML: %v", name, err)
	}
	return &n
}

func liveFilter(t testing.TB, h *e2eutil.Host, name string) *libvirtxml.NWFilter {
	t.Helper()
	var f libvirtxml.NWFilter
	if err := f.Unmarshal(virsh(t, h, "nwfilter-dumpxml", name)); err != nil {
		t.Fatalf("parse nwfilter %s XML: %v", name, err)
	}
	return &f
}

// ourMetadata finds legacyvm's element in the inner XML of a <metadata>
// element: it must be in legacyvm's namespace (not merely called "owner").
func ourMetadata(t testing.TB, what, inner string) *virt.Metadata {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader("<metadata>" + inner + "</metadata>"))
	found := 0
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: metadata: %v", what, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && e.Name.Local == domainxml.MetadataElement && e.Name.Space == domainxml.Namespace {
				found++
			}
		case xml.EndElement:
			depth--
		}
	}
	if found != 1 {
		t.Fatalf("%s: want exactly one <owner> element in namespace %s in <metadata>, found %d:\n%s", what, domainxml.Namespace, found, inner)
	}
	m, err := domainxml.ParseMetadata(inner)
	if err != nil || m == nil {
		t.Fatalf("%s: metadata: %v", what, err)
	}
	return m
}

// inventory lists, one line per object, what the harness's libvirtd holds
// that a test may have made: domains (with state and whether they are
// provisioned) and their snapshots, networks and nwfilters whose names
// match scope or whose metadata names one of profiles, every volume of the
// host's own pools (storage pool and golden-image directory) and every file
// in those directories (so a file libvirt does not know shows up too).
func inventory(t testing.TB, h *e2eutil.Host, scope *regexp.Regexp, profiles ...string) []string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	ours := func(name string, m *virt.Metadata) bool {
		if scope != nil && scope.MatchString(name) {
			return true
		}
		for _, p := range profiles {
			if m != nil && m.Profile == p {
				return true
			}
		}
		return false
	}
	var lines []string
	doms, err := h.HV.ListDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if !ours(d.Name, d.Metadata) {
			continue
		}
		owner := "unmanaged"
		if d.Metadata != nil {
			owner = "profile=" + d.Metadata.Profile
			if !d.Metadata.Provisioned {
				owner += " unprovisioned"
			}
		}
		lines = append(lines, fmt.Sprintf("domain %s %s %s", d.Name, d.State, owner))
		snaps, err := h.HV.ListSnapshots(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps {
			lines = append(lines, fmt.Sprintf("snapshot %s/%s", d.Name, s.Name))
		}
	}
	nets, err := h.HV.ListNetworks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		if ours(n.Name, n.Metadata) {
			owner := "unmanaged"
			if n.Metadata != nil {
				owner = "profile=" + n.Metadata.Profile
			}
			lines = append(lines, fmt.Sprintf("network %s %s", n.Name, owner))
		}
	}
	filters, err := h.HV.ListFilters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range filters {
		if scope != nil && scope.MatchString(f.Name) {
			lines = append(lines, "filter "+f.Name)
		}
	}
	for _, dir := range []string{h.PoolDir, filepath.Dir(h.Golden)} {
		pool := poolAt(t, h, dir)
		label := "pool"
		if dir != h.PoolDir {
			label = "images"
		}
		var vols []string
		if pool != "" {
			vs, err := h.HV.ListVolumes(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				vols = append(vols, v.Name)
				lines = append(lines, fmt.Sprintf("volume %s/%s", label, v.Name))
			}
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			lines = append(lines, fmt.Sprintf("file %s/%s", label, e.Name()))
		}
	}
	sort.Strings(lines)
	return lines
}

// poolAt names the storage pool whose directory is dir ("" if none).
func poolAt(t testing.TB, h *e2eutil.Host, dir string) string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	for _, name := range strings.Fields(virsh(t, h, "pool-list", "--all", "--name")) {
		p, err := h.HV.GetPool(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Clean(p.Path) == filepath.Clean(dir) {
			return name
		}
	}
	return ""
}

// wantInventory builds the inventory lines a profile should leave: its
// domains (running, provisioned, each with the given snapshots), networks
// with both filters, and per domain its system volume (pool) next to the
// golden image (images).
type wantInv struct {
	profile   string
	domains   []string
	snapshots []string // per domain
	networks  []string // profile network names (without lvm-)
	state     virt.DomainState
	// images lists the files of the golden-image directory (the golden
	// image itself unless the test says otherwise).
	images []string
	// unpooled: no storage pool shows the golden-image directory any more
	// (destroy removed the one apply made once no VM used it), so its
	// files are not volumes.
	unpooled bool
	// extra lines (foreign objects the test made on purpose).
	extra []string
	// memory lists the domains whose memory baseline keeps a memory image
	// volume (lvm-<domain>-baseline.mem) and a layer (lvm-<domain>-live.qcow2)
	// in the pool.
	memory []string
}

func (w wantInv) lines(h *e2eutil.Host) []string {
	state := w.state
	if state == "" {
		state = virt.StateRunning
	}
	var lines []string
	for _, d := range w.domains {
		lines = append(lines, fmt.Sprintf("domain %s %s profile=%s", d, state, w.profile))
		for _, s := range w.snapshots {
			lines = append(lines, fmt.Sprintf("snapshot %s/%s", d, s))
		}
		vol := "lvm-" + d + "-system.qcow2"
		lines = append(lines, "volume pool/"+vol, "file pool/"+vol)
		if slices.Contains(w.memory, d) {
			img, layer := "lvm-"+d+"-baseline.mem", "lvm-"+d+"-live.qcow2"
			lines = append(lines, "volume pool/"+img, "file pool/"+img, "volume pool/"+layer, "file pool/"+layer)
		}
	}
	for _, n := range w.networks {
		lines = append(lines, fmt.Sprintf("network lvm-%s profile=%s", n, w.profile), "filter lvm-"+n, "filter lvm-"+n+"-guard")
	}
	images := w.images
	if images == nil {
		images = []string{filepath.Base(h.Golden)}
	}
	for _, f := range images {
		if !w.unpooled {
			lines = append(lines, "volume images/"+f)
		}
		lines = append(lines, "file images/"+f)
	}
	lines = append(lines, w.extra...)
	sort.Strings(lines)
	return lines
}

// checkInventory compares what the host holds with want.
func checkInventory(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	gm, wm := map[string]bool{}, map[string]bool{}
	for _, l := range got {
		gm[l] = true
	}
	for _, l := range want {
		wm[l] = true
	}
	var b strings.Builder
	for _, l := range want {
		if !gm[l] {
			fmt.Fprintf(&b, "  missing: %s\n", l)
		}
	}
	for _, l := range got {
		if !wm[l] {
			fmt.Fprintf(&b, "  unexpected: %s\n", l)
		}
	}
	if b.Len() == 0 {
		b.WriteString("  (duplicates)\n")
	}
	t.Errorf("%s: inventory differs from what the profile declares:\n%sfull inventory:\n  %s", what, b.String(), strings.Join(got, "\n  "))
}

// planJSON is `plan -o json` (docs/json.md).
type planJSON struct {
	FormatVersion int    `json:"format_version"`
	Profile       string `json:"profile"`
	HasChanges    bool   `json:"has_changes"`
	Hosts         []struct {
		Host    string       `json:"host"`
		URI     string       `json:"uri"`
		Accel   string       `json:"accelerator"`
		Notes   []string     `json:"notes"`
		Changes []planChange `json:"changes"`
	} `json:"hosts"`
	Skipped []json.RawMessage `json:"skipped"`
}

// planChange is one change of a plan.
type planChange struct {
	Kind          string   `json:"kind"`
	Name          string   `json:"name"`
	Action        string   `json:"action"`
	Reasons       []string `json:"reasons"`
	Details       []string `json:"details"`
	Destructive   bool     `json:"destructive"`
	RestartNeeded bool     `json:"restart_needed"`
}

func parsePlan(t testing.TB, r e2eutil.Result) planJSON {
	t.Helper()
	var p planJSON
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.FormatVersion != 1 {
		t.Fatalf("plan -o json does not parse: %v (format_version %d)\n%s", err, p.FormatVersion, r)
	}
	return p
}

// statusJSON is `status -o json` (docs/json.md).
type statusJSON struct {
	FormatVersion int `json:"format_version"`
	// Hosts: every host of the profile, with how many VMs it holds.
	Hosts []struct {
		Host  string `json:"host"`
		URI   string `json:"uri"`
		VMs   int    `json:"vm_count"`
		Error string `json:"error"`
	} `json:"hosts"`
	VMs []struct {
		Name        string `json:"vm"`
		Profile     string `json:"profile"`
		State       string `json:"state"`
		Provisioned bool   `json:"provisioned"`
		Network     string `json:"network"`
		IP          string `json:"ip"`
		IPSource    string `json:"ip_source"`
		Snapshots   int    `json:"snapshots"`
		Baseline    string `json:"baseline"`
		License     string `json:"license"`
		Policy      string `json:"policy"`
		VNC         string `json:"vnc"`
		Created     string `json:"created"`
		// NextSnapshot and Schedule: only for VMs with a scheduled policy.
		NextSnapshot string            `json:"next_snapshot"`
		Schedule     string            `json:"schedule"`
		Agent        string            `json:"agent"`
		Host         string            `json:"host"`
		URI          string            `json:"uri"`
		Doors        []json.RawMessage `json:"doors"`
	} `json:"vms"`
}

func parseStatus(t testing.TB, r e2eutil.Result) statusJSON {
	t.Helper()
	var s statusJSON
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil || s.FormatVersion != 1 {
		t.Fatalf("status -o json does not parse: %v (format_version %d)\n%s", err, s.FormatVersion, r)
	}
	return s
}

// serialWatch follows a serial log for the whole test and keeps every line
// it ever held: libvirt starts the log over each time QEMU starts (the
// specialize pass powers the guest off, apply starts it again), so reading
// the file at the end would miss the first boot.
type serialWatch struct {
	path string
	mu   sync.Mutex
	// boots holds the lines of each QEMU run seen so far.
	boots [][]string
	stop  chan struct{}
	done  chan struct{}
}

func watchSerial(t testing.TB, path string) *serialWatch {
	w := &serialWatch{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	t.Cleanup(func() { close(w.stop); <-w.done })
	return w
}

func (w *serialWatch) run() {
	defer close(w.done)
	var (
		off     int64
		head    []byte // the first bytes of the current QEMU run's log
		pending []byte
	)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(w.path)
		if err == nil {
			n := int64(len(data))
			h := data[:min(len(data), 64)]
			restarted := n < off || (len(head) > 0 && !bytes.HasPrefix(data, head[:min(len(head), len(h))]))
			if restarted || len(w.boots) == 0 && n > 0 {
				if restarted && len(pending) > 0 {
					w.add(string(pending))
				}
				w.mu.Lock()
				w.boots = append(w.boots, nil)
				w.mu.Unlock()
				off, pending, head = 0, nil, nil
			}
			if n > off {
				if len(head) < 64 {
					head = append([]byte(nil), h...)
				}
				pending = append(pending, data[off:]...)
				off = n
				for {
					i := bytes.IndexByte(pending, '\n')
					if i < 0 {
						break
					}
					w.add(string(bytes.TrimRight(pending[:i], "\r")))
					pending = pending[i+1:]
				}
			}
		}
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

func (w *serialWatch) add(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.boots[len(w.boots)-1] = append(w.boots[len(w.boots)-1], line)
}

// Boots returns the lines of each QEMU run, oldest first.
func (w *serialWatch) Boots() [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([][]string, len(w.boots))
	for i, b := range w.boots {
		out[i] = append([]string(nil), b...)
	}
	return out
}

// Find returns the first line of boot (negative: counted from the last)
// matching re, or "".
func (w *serialWatch) Find(boot int, re *regexp.Regexp) string {
	bs := w.Boots()
	if boot < 0 {
		boot += len(bs)
	}
	if boot < 0 || boot >= len(bs) {
		return ""
	}
	for _, l := range bs[boot] {
		if re.MatchString(l) {
			return l
		}
	}
	return ""
}

// Wait waits until a line of the given boot matches re.
func (w *serialWatch) Wait(t testing.TB, boot int, re string, timeout time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := w.Find(boot, rx); l != "" {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: no line matching %q in boot %d within %s; seen:\n%s", w.path, re, boot, timeout, w.String())
	return ""
}

func (w *serialWatch) String() string {
	var b strings.Builder
	for i, boot := range w.Boots() {
		fmt.Fprintf(&b, "--- boot %d\n", i)
		for _, l := range boot {
			if strings.HasPrefix(l, "RIG ") {
				fmt.Fprintf(&b, "%s\n", l)
			}
		}
	}
	return b.String()
}

// killGroup sends SIGKILL to the command's process group and reaps it.
func killGroup(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", cmd.Process.Pid, err)
	}
	err := cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("legacyvm was not killed by SIGKILL (it ended first: %v)", err)
	}
}

// noSecrets checks every text for the fake keys and password.
func noSecrets(t testing.TB, texts map[string]string) {
	t.Helper()
	for _, k := range allKeys {
		e2eutil.NoSecret(t, k, texts)
	}
	for where, s := range texts {
		if strings.Contains(s, fakePassword) {
			t.Errorf("the administrator password appears in %s", where)
		}
	}
}

// hostTexts gathers what libvirt holds about the given domains and
// networks (definitions, live XML, snapshots) and the serial logs, for
// secret checks.
func hostTexts(t testing.TB, h *e2eutil.Host, domains, networks []string) map[string]string {
	t.Helper()
	texts := map[string]string{}
	for _, d := range domains {
		texts["dumpxml "+d] = virsh(t, h, "dumpxml", d)
		texts["dumpxml --inactive "+d] = virsh(t, h, "dumpxml", "--inactive", d)
		for _, s := range strings.Fields(virsh(t, h, "snapshot-list", "--name", d)) {
			texts["snapshot-dumpxml "+d+"/"+s] = virsh(t, h, "snapshot-dumpxml", d, s)
		}
		if b, err := os.ReadFile(h.SerialLog(d)); err == nil {
			texts["serial log "+d] = string(b)
		}
	}
	for _, n := range networks {
		texts["net-dumpxml "+n] = virsh(t, h, "net-dumpxml", n)
	}
	return texts
}
