package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

// Fake product keys (valid in form, obviously not real).
const (
	fakeMAK    = "BCDFG-HJKMP-QRTVW-XY234-6789B"
	fakeRetail = "MPQRT-VWXY2-3467B-CDFGH-JK89C"
	fakeKey3   = "CDFGH-JKMPQ-RTVWX-Y2346-789BC"
	fakeKey4   = "DFGHJ-KMPQR-TVWXY-23467-89BCD"
	fakeKey5   = "YKC3M-H9DTQ-PW7RG-6FVXB-J2K4T"
	fakeKey6   = "RD8WF-M4XGK-T3YPC-V9HBQ-7JKW2"
)

// fakeWorld is a fake libvirt host with a copy of examples/ (and the
// secret files the examples read) that the CLI runs against in-process.
type fakeWorld struct {
	t    *testing.T
	h    *fake.Hypervisor
	dir  string // holds examples/
	env  map[string]string
	iso  string
	stop chan struct{}
	wg   sync.WaitGroup
	// listened are the addresses commands listened on (memListen).
	mu       sync.Mutex
	listened []string
}

const goldenPath = "/var/lib/libvirt/images/win7-sp1-x64-golden.qcow2"

func newFakeWorld(t *testing.T) *fakeWorld {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "examples"), os.DirFS("../../examples")); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "win7.iso")
	secrets := map[string]string{
		"examples/ops-daily/keys/ops.key":               fakeRetail,
		"examples/install-media/secrets/win7.key":       fakeKey3,
		"examples/install-media/secrets/admin.password": "not-a-real-password",
		"win7.iso": "fake iso",
		// What the cp examples copy into a VM.
		"build/app.msi":            "fake msi",
		"testdata/input.csv":       "id,value\n1,2",
		"testdata/cases/case1.txt": "case 1",
	}
	for rel, content := range secrets {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := fake.New(
		fake.WithGuestOS(exampleGuest),
		fake.WithFile(goldenPath, "qcow2", 60<<30),
		fake.WithFile(standinPath, "qcow2", 1<<30),
		fake.WithFile(iso, "raw", 3<<30),
	)
	// As on a Debian host: the default pool holds the images directory.
	if _, err := h.EnsurePool(context.Background(), "default", "/var/lib/libvirt/images"); err != nil {
		t.Fatal(err)
	}
	w := &fakeWorld{t: t, h: h, dir: dir, iso: iso, stop: make(chan struct{}), env: map[string]string{
		"ACCT_WIN7_MAK":            fakeMAK,
		"WIN7_KEY":                 fakeKey4,
		"LEGACYVM_FINGERPRINT_KEY": filepath.Join(dir, "fingerprint.key"),
		"LEGACYVM_LOCK_DIR":        filepath.Join(dir, "locks"),
		"LEGACYVM_WEB_DIR":         filepath.Join(dir, "web"),
		"LEGACYVM_VAR_iso":         iso,
		// examples/golden-image: the fake ISO's checksum, two clone keys.
		"LEGACYVM_VAR_iso_sha256": fmt.Sprintf("%x", sha256.Sum256([]byte("fake iso\n"))),
		"GOLD_KEY_1":              fakeKey5,
		"GOLD_KEY_2":              fakeKey6,
		"HOME":                    dir,
		"LEGACYVM_SERIAL_LOG_DIR": filepath.Join(dir, "serial"),
	}}
	if err := os.MkdirAll(filepath.Join(dir, "serial"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Windows setup in the guest: a VM started with answer media powers
	// itself off, as the specialize pass and an install do.
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			doms, err := h.ListDomains(context.Background())
			if err != nil {
				continue
			}
			for _, d := range doms {
				if d.State != virt.StateRunning {
					continue
				}
				for _, dk := range d.Disks {
					if dk.Device == virt.DeviceCDROM && dk.Path != "" {
						if d.Metadata.ImageBuild != "" {
							// An image build reports its phases on COM1.
							log := filepath.Join(dir, "serial", d.Name+".serial.log")
							_ = os.WriteFile(log, []byte("LEGACYVM phase media count=1\nLEGACYVM phase steps count=1\nLEGACYVM phase generalize\n"), 0o600)
						}
						_ = h.GuestPowerOff(d.Name)
						break
					}
				}
			}
		}
	}()
	t.Cleanup(func() { close(w.stop); w.wg.Wait() })
	return w
}

const standinPath = "/var/lib/libvirt/images/legacyvm-standin.qcow2"

// exampleGuest is what the examples' VMs boot: Windows 7, except a VM
// made from the Linux stand-in image (quickstart's default). The lab's
// VMs hold what the exec and cp examples use: a test script and an
// installer in C:\stage, test results, a crash dump.
func exampleGuest(spec virt.DomainSpec) fake.GuestOS {
	if spec.Metadata != nil && spec.Metadata.Image == standinPath {
		return fake.GuestOS{}
	}
	os := fake.GuestOS{Windows: true}
	if spec.Name == "acct-1" || spec.Name == "acct-2" {
		os.Files = map[string][]byte{
			`C:\stage\run-tests.bat`:        []byte("@echo off\r\nrem the stage's tests\r\ncd /d C:\\stage\r\necho running tests\r\ntype results\\junit.xml\r\nexit /b 0\r\n"),
			`C:\stage\setup.exe`:            []byte("MZ fake installer"),
			`C:\stage\results\junit.xml`:    []byte(`<testsuite name="stage" tests="1" failures="0"><testcase name="t"/></testsuite>`),
			`C:\stage\results\logs\run.log`: []byte("ok\r\n"),
			`C:\dumps\memory.dmp`:           []byte("MDMP fake dump"),
		}
	}
	return os
}

type cliRun struct {
	code     int
	out, err string
}

// cliOpts are the terminal and input of one in-process run.
type cliOpts struct {
	stdin         string
	inTTY, errTTY bool
	env           map[string]string
	// dir is the working directory relative to the world's ("" = it).
	dir string
	// timeout cancels the command's context after this long (daemon).
	timeout time.Duration
}

// run executes the CLI in-process against the fake host, from w.dir.
func (w *fakeWorld) run(o cliOpts, args ...string) cliRun {
	w.t.Helper()
	var out, errb bytes.Buffer
	io := &IOStreams{In: strings.NewReader(o.stdin), Out: &out, ErrOut: &errb, InTTY: o.inTTY, ErrTTY: o.errTTY}
	f := newFactory(io)
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	for k, v := range o.env {
		env[k] = v
	}
	f.Getenv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f.Connect = func(ctx context.Context, uri string) (virt.Hypervisor, error) { return nopClose{w.h}, nil }
	f.PollInterval = 2 * time.Millisecond
	f.Listen = w.memListen
	for k, v := range env {
		w.t.Setenv(k, v) // for code that reads the process environment (locks, fingerprint key)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(filepath.Join(w.dir, o.dir)); err != nil {
		w.t.Fatal(err)
	}
	defer os.Chdir(wd)
	root := newRootCmd(f)
	root.SetArgs(terraformStyleFlags(args))
	ctx := context.Background()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	code := exitCode(root.ExecuteContext(ctx), io)
	return cliRun{code: code, out: out.String(), err: errb.String()}
}

// applyAll applies every example, so the host has the VMs the examples
// produce: demo, acct-1, acct-2, legacy-app, ops, fresh.
func (w *fakeWorld) applyAll() {
	w.t.Helper()
	// examples/golden-image clones an image: version 1 is built and used by
	// its VMs, version 2 (a rebuild) is not used yet.
	if r := w.run(cliOpts{}, "image", "build", "examples/golden-image", "w7pro"); r.code != 0 {
		w.t.Fatalf("image build examples/golden-image: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	for _, ex := range []string{"quickstart", "lab", "single-vm", "ops-daily", "install-media", "golden-image"} {
		r := w.run(cliOpts{}, "apply", "--auto-approve", "examples/"+ex)
		if r.code != 0 {
			w.t.Fatalf("apply examples/%s: exit %d\nstdout:\n%s\nstderr:\n%s", ex, r.code, r.out, r.err)
		}
	}
	if r := w.run(cliOpts{}, "image", "build", "examples/golden-image", "w7pro"); r.code != 0 {
		w.t.Fatalf("image rebuild examples/golden-image: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	// What the help examples of snapshot revert and delete work on.
	if r := w.run(cliOpts{}, "snapshot", "create", "acct-1", "before-update"); r.code != 0 {
		w.t.Fatalf("snapshot create: %s", r.err)
	}
}

// nopClose keeps the shared fake open across commands.
type nopClose struct{ virt.Hypervisor }

func (nopClose) Close() error { return nil }

func TestFakeWorldAppliesEveryExample(t *testing.T) {
	w := newFakeWorld(t)
	w.applyAll()
	r := w.run(cliOpts{}, "status", "--all")
	for _, vm := range []string{"demo", "acct-1", "acct-2", "legacy-app", "ops", "fresh"} {
		if !strings.Contains(r.out, vm+" ") {
			t.Errorf("status --all lacks %s:\n%s", vm, r.out)
		}
	}
}

// The fake world's guests are what the examples expect: the lab's VMs are
// Windows 7 guests that really run the exec and test examples; quickstart's
// demo, made from the Linux stand-in image, stays Linux.
func TestFakeWorldGuestsMatchTheirImages(t *testing.T) {
	w := newFakeWorld(t)
	w.applyAll()
	r := w.run(cliOpts{}, "exec", "acct-1", "--", "cmd", "/c", "ver")
	if r.code != 0 || !strings.Contains(r.out, "Microsoft Windows [Version 6.1.7601]") {
		t.Errorf("exec acct-1 -- cmd /c ver: exit %d\nstdout: %q\nstderr: %s", r.code, r.out, r.err)
	}
	r = w.run(cliOpts{}, "exec", "acct-1", "--", `C:\stage\run-tests.bat`)
	if r.code != 0 || !strings.Contains(r.out, "running tests") || !strings.Contains(r.out, "<testsuite") {
		t.Errorf("exec run-tests.bat: exit %d\nstdout: %q\nstderr: %s", r.code, r.out, r.err)
	}
	doms, err := w.h.ListDomains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if d.Name == "demo" && (d.Metadata == nil || d.Metadata.Image != standinPath) {
			t.Errorf("demo comes from %v, not the stand-in image: it would boot a Windows fake guest", d.Metadata)
		}
	}
	r = w.run(cliOpts{}, "test", "examples/lab", "smoke", "--results", "out")
	if r.code != 0 {
		t.Fatalf("test examples/lab smoke: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	logs, _ := filepath.Glob(filepath.Join(w.dir, "out", "*", "*", "smoke.log"))
	if len(logs) == 0 {
		logs, _ = filepath.Glob(filepath.Join(w.dir, "out", "*", "*", "*", "smoke.log"))
	}
	if len(logs) != 2 {
		t.Fatalf("smoke.log copied out of %d VMs, want 2 (%s)", len(logs), r.out)
	}
	b, _ := os.ReadFile(logs[0])
	if !strings.Contains(string(b), "OS Name:") || !strings.Contains(string(b), "6.1.7601") {
		t.Errorf("smoke.log = %q", b)
	}
}
