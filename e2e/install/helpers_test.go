package install

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// Fake product keys and passwords: valid in form (5x5 from
// BCDFGHJKMPQRTVWXY2346789), never real, used by no other package (so a
// find in a shared directory such as /tmp is ours), one key per profile
// that must not share a seat. Every checked group holds a letter outside
// the hex digits, so a find is a leak, not a UUID or a MAC.
const (
	keyInstall = "HXWTR-PC7MJ-9VKDB-Y4QFG-T6C2M"
	keySpec    = "WM4QJ-DT8RX-FKC3P-7GYVH-B2J9K"
	pwInstall  = "Lvm8InstallAdminNotReal"
	pwSpec     = "Lvm8SpecializeAdminNotReal"
)

func lastGroup(k string) string { return k[len(k)-5:] }

// rigLines returns the "RIG ..." lines of a serial log.
func rigLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		l = strings.TrimRight(l, "\r")
		if i := strings.Index(l, "RIG "); i >= 0 {
			out = append(out, l[i:])
		}
	}
	return out
}

// indexOf returns the index of the first line with the prefix, or -1.
func indexOf(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

// applyRecorded runs apply in the background while recording the VM's
// serial log, and returns the result with every serial run seen.
func applyRecorded(t *testing.T, h *e2eutil.Host, w *e2eutil.SecretWatch, env []string, domain string, timeout time.Duration, args ...string) (e2eutil.Result, []string) {
	t.Helper()
	rec := e2eutil.RecordSerial(h.SerialLog(domain))
	cmd, stdout, stderr := h.Start(t, env, args...)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-exited
		runs := rec.Runs()
		t.Fatalf("legacyvm %s did not finish within %s\n--- stderr\n%s\n--- serial\n%s", strings.Join(args, " "), timeout, stderr, runs[len(runs)-1])
	}
	r := e2eutil.Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
	name := "legacyvm " + strings.Join(args, " ")
	w.Add(name+" (stdout)", r.Stdout)
	w.Add(name+" (stderr)", r.Stderr)
	runs := rec.Runs()
	for i, s := range runs {
		w.Add(fmt.Sprintf("serial log of %s, run %d", domain, i+1), s)
	}
	if err != nil || r.Code != 0 {
		t.Fatalf("apply failed: %v\n%s\n--- serial runs\n%s", err, r, strings.Join(runs, "\n-----\n"))
	}
	return r, runs
}

// names returns the first (or, with last, the last) field of each
// non-empty line.
func names(out string, last bool) []string {
	var ns []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if last {
			ns = append(ns, f[len(f)-1])
		} else {
			ns = append(ns, f[0])
		}
	}
	sort.Strings(ns)
	return ns
}

// inventory lists every object of the host by kind: domains, networks,
// nwfilters, pools and each pool's volumes.
func inventory(t *testing.T, h *e2eutil.Host) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "domains: %v\n", names(h.MustVirsh(t, "list", "--all", "--name"), false))
	fmt.Fprintf(&b, "networks: %v\n", names(h.MustVirsh(t, "net-list", "--all", "--name"), false))
	fmt.Fprintf(&b, "nwfilters: %v\n", names(h.MustVirsh(t, "nwfilter-list"), true))
	pools := names(h.MustVirsh(t, "pool-list", "--all", "--name"), false)
	fmt.Fprintf(&b, "pools: %v\n", pools)
	for _, p := range pools {
		fmt.Fprintf(&b, "volumes of %s: %v\n", p, names(h.MustVirsh(t, "vol-list", "--pool", p), false))
	}
	return b.String()
}

// dumpLibvirt adds every XML document the host holds to w: each domain's
// live and persistent definition (with legacyvm's metadata) and its
// snapshots (with their descriptions), networks, nwfilters and their
// bindings, pools and volumes.
func dumpLibvirt(t *testing.T, h *e2eutil.Host, w *e2eutil.SecretWatch) {
	t.Helper()
	for _, d := range names(h.MustVirsh(t, "list", "--all", "--name"), false) {
		w.Add("domain XML "+d, h.MustVirsh(t, "dumpxml", d))
		w.Add("persistent domain XML "+d, h.MustVirsh(t, "dumpxml", "--inactive", d))
		w.Add("domain metadata "+d, h.MustVirsh(t, "metadata", d, "https://legacyvm.dev/xmlns/1.0"))
		for _, s := range names(h.MustVirsh(t, "snapshot-list", "--name", d), false) {
			w.Add("snapshot XML "+d+"/"+s, h.MustVirsh(t, "snapshot-dumpxml", d, s))
		}
	}
	for _, n := range names(h.MustVirsh(t, "net-list", "--all", "--name"), false) {
		w.Add("network XML "+n, h.MustVirsh(t, "net-dumpxml", n))
		w.Add("persistent network XML "+n, h.MustVirsh(t, "net-dumpxml", "--inactive", n))
	}
	for _, f := range names(h.MustVirsh(t, "nwfilter-list"), true) {
		w.Add("nwfilter XML "+f, h.MustVirsh(t, "nwfilter-dumpxml", f))
	}
	for _, port := range names(h.MustVirsh(t, "nwfilter-binding-list"), false) {
		w.Add("nwfilter binding XML "+port, h.MustVirsh(t, "nwfilter-binding-dumpxml", port))
	}
	for _, p := range names(h.MustVirsh(t, "pool-list", "--all", "--name"), false) {
		w.Add("pool XML "+p, h.MustVirsh(t, "pool-dumpxml", p))
		for _, v := range names(h.MustVirsh(t, "vol-list", "--pool", p), false) {
			w.Add("volume XML "+p+"/"+v, h.MustVirsh(t, "vol-dumpxml", "--pool", p, v))
		}
	}
}

// cdroms returns the source file of each CD-ROM drive of a domain XML by
// target ("" for an empty drive).
func cdroms(t *testing.T, doc string) map[string]string {
	t.Helper()
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		t.Fatalf("parse domain XML: %v", err)
	}
	out := map[string]string{}
	if d.Devices == nil {
		return out
	}
	for _, disk := range d.Devices.Disks {
		if disk.Device != "cdrom" || disk.Target == nil {
			continue
		}
		src := ""
		if disk.Source != nil && disk.Source.File != nil {
			src = disk.Source.File.File
		}
		out[disk.Target.Dev] = src
	}
	return out
}

// bootDisk returns the source of the domain's "disk" device.
func bootDisk(t *testing.T, doc string) string {
	t.Helper()
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		t.Fatalf("parse domain XML: %v", err)
	}
	for _, disk := range d.Devices.Disks {
		if disk.Device == "disk" && disk.Source != nil && disk.Source.File != nil {
			return disk.Source.File.File
		}
	}
	return ""
}

// snapshotDescription returns the <description> of a snapshot XML.
func snapshotDescription(t *testing.T, doc string) string {
	t.Helper()
	var s struct {
		Description string `xml:"description"`
	}
	if err := xml.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatalf("parse snapshot XML: %v", err)
	}
	return s.Description
}

// chunkSize is how much of a file scanFiles hands to NoSecret at once;
// consecutive chunks overlap so that a secret across a boundary is found.
const (
	chunkSize    = 8 << 20
	chunkOverlap = 256
)

// scanFiles reads every regular file under roots (for roots in sinceOnly,
// only files modified since since) and checks its content with
// e2eutil.NoSecret for each secret, also in UTF-16LE. Files in skip are
// left out (the user's own secret files). It returns how many files and
// bytes it read.
func scanFiles(t testing.TB, secrets []string, roots []string, sinceOnly map[string]bool, since time.Time, skip map[string]bool) (files int, total int64) {
	t.Helper()
	seen := map[string]bool{}
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // vanished or unreadable directories of other processes
			}
			// In the shared temporary directory, leave out the go
			// command's build directories (they hold this test's own
			// binary, whose constants are the fake secrets) and other
			// harness instances (other test processes; this test's own
			// instance is scanned as a root of its own).
			if d.IsDir() && sinceOnly[root] && path != root &&
				(strings.HasPrefix(d.Name(), "go-build") || strings.HasPrefix(d.Name(), "lvt-")) {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() || seen[path] || skip[path] {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			if sinceOnly[root] && info.ModTime().Before(since) {
				return nil
			}
			seen[path] = true
			n, err := scanFile(t, path, secrets)
			if err != nil {
				if !sinceOnly[root] {
					t.Errorf("read %s: %v", path, err)
				}
				return nil
			}
			files++
			total += n
			return nil
		})
	}
	return files, total
}

func scanFile(t testing.TB, path string, secrets []string) (int64, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, chunkSize+chunkOverlap)
	carry := 0    // bytes kept from the previous chunk at buf[:carry]
	var off int64 // file offset of buf[carry]
	for {
		n, err := io.ReadFull(f, buf[carry:])
		if n > 0 {
			end := carry + n
			text := string(buf[:end])
			where := fmt.Sprintf("file %s (bytes %d-%d)", path, off-int64(carry), off+int64(n))
			for _, s := range secrets {
				e2eutil.NoSecret(t, s, map[string]string{where: text})
				e2eutil.NoSecret(t, utf16le(s), map[string]string{where + " as UTF-16": text})
			}
			off += int64(n)
			keep := min(chunkOverlap, end)
			copy(buf, buf[end-keep:end])
			carry = keep
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

// utf16le is s in UTF-16 little endian, as a Go string of bytes.
func utf16le(s string) string {
	var b bytes.Buffer
	for _, u := range utf16.Encode([]rune(s)) {
		b.WriteByte(byte(u))
		b.WriteByte(byte(u >> 8))
	}
	return b.String()
}

// leakRecorder is a testing.TB that records NoSecret's findings instead of
// failing: the scan's own test uses it to prove a planted secret is found.
type leakRecorder struct {
	testing.TB
	mu    sync.Mutex
	finds []string
}

func (r *leakRecorder) Helper() {}

func (r *leakRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finds = append(r.finds, fmt.Sprintf(format, args...))
}
