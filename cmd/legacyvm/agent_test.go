package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/guestagent"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

func TestSplitVMPath(t *testing.T) {
	for _, c := range []struct {
		in, vm, path string
		ok           bool
	}{
		{`acct-1:C:\stage\app.msi`, "acct-1", `C:\stage\app.msi`, true},
		{"qa-2:/tmp/x", "qa-2", "/tmp/x", true},
		{`C:\stage\app.msi`, "", "", false}, // a drive letter is not a VM
		{"./build/app.msi", "", "", false},
		{"/abs/path:with-colon", "", "", false},
		{"acct-1:", "", "", false},
		{"app.msi", "", "", false},
	} {
		vm, p, ok := SplitVMPath(c.in)
		if vm != c.vm || p != c.path || ok != c.ok {
			t.Errorf("SplitVMPath(%q) = %q, %q, %v; want %q, %q, %v", c.in, vm, p, ok, c.vm, c.path, c.ok)
		}
	}
}

type nopCloseHV struct{ virt.Hypervisor }

func (nopCloseHV) Close() error { return nil }

// agentHost is a fake host with one running legacyvm domain "qa-1" that has
// the guest agent channel.
func agentHost(t *testing.T) *fake.Hypervisor {
	t.Helper()
	ctx := context.Background()
	h := fake.New(fake.WithFile("/img/qa-1.qcow2", "qcow2", 1<<30))
	spec := virt.DomainSpec{Name: "qa-1", UUID: "6d3c0a3e-8a43-4a7e-9b0c-000000000001", Accel: virt.AccelTCG, Arch: "x86_64", Machine: "pc",
		VCPUs: 1, MemoryBytes: 256 << 20, GuestAgent: true,
		Disks:    []virt.DiskSpec{{Device: virt.DeviceDisk, Bus: "sata", Target: "sda", Path: "/img/qa-1.qcow2", Format: "qcow2", BootOrder: 1}},
		Metadata: &virt.Metadata{Profile: "qa", VM: "qa", Instance: "qa-1", SpecHash: "x"}}
	if _, err := h.DefineDomain(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := h.StartDomain(ctx, "qa-1"); err != nil {
		t.Fatal(err)
	}
	return h
}

func execOpts(h *fake.Hypervisor, out, errb *bytes.Buffer, argv ...string) *ExecOptions {
	return &ExecOptions{
		IO:      &IOStreams{Out: out, ErrOut: errb},
		Connect: func(context.Context, string) (virt.Hypervisor, error) { return nopCloseHV{h}, nil },
		URI:     "test:///", VM: "qa-1", Argv: argv, MaxOutput: "1MiB", AgentTimeout: 5 * time.Second,
	}
}

func TestExecOnFakeAgent(t *testing.T) {
	h := agentHost(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := execRun(ctx, execOpts(h, &out, &errb, "echo", "hello", "guest")); err != nil {
		t.Fatalf("exec echo: %v", err)
	}
	if out.String() != "hello guest\n" {
		t.Errorf("stdout = %q", out.String())
	}
	err := execRun(ctx, execOpts(h, &out, &errb, "false"))
	var ee *exitErr
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Errorf("exec false: %v, want exit status 1", err)
	}
	o := execOpts(h, &out, &errb, "sleep", "600")
	o.Timeout = 300 * time.Millisecond
	err = execRun(ctx, o)
	if !errors.As(err, &ee) || ee.code != exitTimeout || !errors.Is(err, guestagent.ErrTimeout) || !strings.Contains(err.Error(), "killed") {
		t.Errorf("exec sleep with --timeout: %v, want a timeout error with exit status %d", err, exitTimeout)
	}
	o = execOpts(h, &out, &errb, "nosuchprogram")
	if err := execRun(ctx, o); !errors.As(err, &ee) || ee.code != 127 {
		t.Errorf("exec of a missing program: %v, want exit status 127", err)
	}
	// No channel: a clear error.
	if err := execRun(ctx, &ExecOptions{IO: &IOStreams{Out: &out, ErrOut: &errb}, VM: "nope", Argv: []string{"x"}, MaxOutput: "1MiB",
		Connect: func(context.Context, string) (virt.Hypervisor, error) { return nopCloseHV{h}, nil }}); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("exec on a missing VM: %v", err)
	}
}

func TestCpRoundTripOnFakeAgent(t *testing.T) {
	h := agentHost(t)
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "in")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o755))
	big := bytes.Repeat([]byte("0123456789abcdef"), 200000) // 3.2 MB: several chunks
	must(os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644))
	must(os.WriteFile(filepath.Join(src, "sub", "deeper", "note.txt"), []byte("note\n"), 0o644))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "link"))) // never followed
	var out, errb bytes.Buffer
	o := &CpOptions{IO: &IOStreams{Out: &out, ErrOut: &errb}, Connect: func(context.Context, string) (virt.Hypervisor, error) { return nopCloseHV{h}, nil },
		URI: "test:///", Src: src, Dst: "qa-1:/tmp/stage", MaxSize: "1GiB", AgentTimeout: 5 * time.Second}
	must(cpRun(ctx, o))
	if b, ok := h.GuestFile("qa-1", "/tmp/stage/big.bin"); !ok || !bytes.Equal(b, big) {
		t.Fatalf("big.bin in the guest: %d bytes, ok %v", len(b), ok)
	}
	if _, ok := h.GuestFile("qa-1", "/tmp/stage/link"); ok {
		t.Errorf("a host symlink was copied")
	}
	back := filepath.Join(t.TempDir(), "back")
	o.Src, o.Dst = "qa-1:/tmp/stage", back
	must(cpRun(ctx, o))
	got, err := os.ReadFile(filepath.Join(back, "big.bin"))
	must(err)
	if !bytes.Equal(got, big) {
		t.Errorf("big.bin back: %d bytes", len(got))
	}
	if b, _ := os.ReadFile(filepath.Join(back, "sub", "deeper", "note.txt")); string(b) != "note\n" {
		t.Errorf("sub/deeper/note.txt back: %q", b)
	}
	// --max-size bounds what a copy out writes; nothing is left behind.
	o.Src, o.Dst, o.MaxSize = "qa-1:/tmp/stage/big.bin", filepath.Join(t.TempDir(), "big.bin"), "1MiB"
	if err := cpRun(ctx, o); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("copy out beyond --max-size: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(o.Dst)); len(ents) != 0 {
		t.Errorf("partial files left: %v", ents)
	}
}

// A hostile agent: a read reply whose data is larger than asked, a count
// that does not match, a reply that is not the protocol.
func TestHostileAgentReplies(t *testing.T) {
	h := agentHost(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.PutGuestFile("qa-1", "/tmp/f", []byte("data")))
	c := guestagent.New(h, "qa-1")
	hd, err := c.FileOpen(ctx, "/tmp/f", "rb")
	must(err)
	for _, reply := range []string{
		`{"return":{"count":8,"buf-b64":"` + strings.Repeat("QUFB", 100) + `","eof":false}}`,
		`{"return":{"count":9,"buf-b64":"QUFB","eof":true}}`,
		`{"return":{"count":3},"extra":1}`,
		`not json`,
	} {
		must(h.SetAgentHook("qa-1", func([]byte) ([]byte, error) { return []byte(reply), nil }))
		if _, _, err := c.FileRead(ctx, hd, 8); !errors.Is(err, guestagent.ErrProtocol) {
			t.Errorf("reply %.40s...: %v, want a protocol violation", reply, err)
		}
	}
	// Endless output: the process is killed at --max-output.
	must(h.SetAgentHook("qa-1", nil))
	must(h.PutGuestFile("qa-1", "/tmp/huge", bytes.Repeat([]byte("y\n"), 1<<20)))
	var out, errb bytes.Buffer
	o := execOpts(h, &out, &errb, "cat", "/tmp/huge")
	o.MaxOutput = "100KiB"
	if err := execRun(ctx, o); !errors.Is(err, guestagent.ErrOutputLimit) {
		t.Errorf("exec with endless output: %v, want the output limit", err)
	}
	if out.Len() > 100<<10 {
		t.Errorf("%d bytes of output passed on, more than --max-output", out.Len())
	}
	// A silent agent: a bounded error, no hang.
	must(h.SetAgentSilent("qa-1", true))
	if err := execRun(ctx, execOpts(h, &out, &errb, "echo")); !errors.Is(err, virt.ErrAgentUnavailable) {
		t.Errorf("exec with a silent agent: %v", err)
	}
}

func TestJUnitValidates(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint (libxml2-utils) is required under CI=true")
		}
		t.Skip("xmllint not installed (libxml2-utils)")
	}
	zero, one := 0, 1
	res := []*TestVMResult{
		{Test: "smoke", VM: "qa-1", Took: 3 * time.Second, Passed: true, Steps: []*StepResult{
			{Name: "copy_in smoke.sh", Type: "copy_in", Status: "passed", Took: time.Second},
			{Name: "run sh smoke.sh", Type: "run", Status: "passed", ExitCode: &zero, stdout: []byte("ok \x00\x1b[31m <tag> & done\n")},
		}},
		{Test: "smoke", VM: "qa-2", Took: 2 * time.Second, ResetError: "reset after the test: boom", Steps: []*StepResult{
			{Name: "copy_in smoke.sh", Type: "copy_in", Status: "error", Message: "copy: guest agent not responding"},
			{Name: "run sh smoke.sh", Type: "run", Status: "skipped"},
		}},
		{Test: "smoke", VM: "qa-3", Steps: []*StepResult{{Name: "run false", Type: "run", Status: "failed", ExitCode: &one, Message: "exit code 1, want 0"}}},
	}
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := writeJUnit(path, res); err != nil {
		t.Fatal(err)
	}
	for _, xsd := range []string{"testdata/junit.xsd", os.Getenv("LEGACYVM_JUNIT_XSD")} {
		if xsd == "" {
			continue
		}
		if out, err := exec.Command("xmllint", "--noout", "--schema", xsd, path).CombinedOutput(); err != nil {
			b, _ := os.ReadFile(path)
			t.Fatalf("JUnit report does not validate against %s: %v\n%s\n%s", xsd, err, out, b)
		}
	}
	// The schema is not a rubber stamp: a report missing required parts
	// fails it.
	bad := filepath.Join(t.TempDir(), "bad.xml")
	if err := os.WriteFile(bad, []byte(`<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase classname="c"/></testsuite></testsuites>`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("xmllint", "--noout", "--schema", "testdata/junit.xsd", bad).Run(); err == nil {
		t.Errorf("testdata/junit.xsd accepts a report without hostname, timestamp, properties or test case names")
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{`<testcase name="run sh smoke.sh" classname="smoke.qa-1"`, `<failure message="exit code 1, want 0" type="run">`,
		`<error message="copy: guest agent not responding"`, `<skipped message="an earlier step failed">`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("report lacks %s:\n%s", want, b)
		}
	}
	if n := bytes.Count(b, []byte("<testcase ")); n != 5 {
		t.Errorf("%d test cases, want one per VM and step (5)", n)
	}
}
