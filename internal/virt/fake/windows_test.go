package fake_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/guestagent"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

// winGuest starts domain "win" on a fake whose guests are Windows and
// returns a client with the flavour the agent reports.
func winGuest(t *testing.T, files map[string][]byte) (*fake.Hypervisor, *guestagent.Client, guestagent.Flavor) {
	t.Helper()
	ctx := context.Background()
	h := fake.New(fake.WithFile("/img/win.qcow2", "qcow2", 1<<30), fake.WithGuestOS(func(spec virt.DomainSpec) fake.GuestOS {
		return fake.GuestOS{Windows: spec.Name == "win", Files: files}
	}))
	spec := virt.DomainSpec{Name: "win", UUID: "6d3c0a3e-8a43-4a7e-9b0c-0000000000a1", Accel: virt.AccelTCG, Arch: "x86_64", Machine: "pc",
		VCPUs: 1, MemoryBytes: 256 << 20, GuestAgent: true,
		Disks:    []virt.DiskSpec{{Device: virt.DeviceDisk, Bus: "sata", Target: "sda", Path: "/img/win.qcow2", Format: "qcow2", BootOrder: 1}},
		Metadata: &virt.Metadata{Profile: "p", VM: "win", Instance: "win", SpecHash: "x"}}
	must(h.DefineDomain(ctx, spec))
	if err := h.StartDomain(ctx, "win"); err != nil {
		t.Fatal(err)
	}
	c := guestagent.New(h, "win")
	c.Timeout = 5 * time.Second
	os, err := c.OSInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if os.ID != "mswindows" {
		t.Fatalf("guest-get-osinfo id = %q, want mswindows", os.ID)
	}
	f := guestagent.FlavorFor(os)
	if f.Name() != "windows" {
		t.Fatalf("flavour = %s", f.Name())
	}
	return h, c, f
}

func TestWindowsGuestExecCwdEnvExitCode(t *testing.T) {
	h, c, f := winGuest(t, map[string][]byte{`C:\stage\setup.exe`: []byte("MZ installer")})
	ctx := context.Background()
	run := func(o guestagent.RunOptions) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		o.Stdout, o.Stderr, o.Poll = &out, &errb, time.Millisecond
		code, err := c.Run(ctx, f, o)
		if err != nil {
			t.Fatalf("run %q: %v", o.Argv, err)
		}
		return code, out.String(), errb.String()
	}
	// cwd and env reach the program (cmd's cd and set print them); the
	// case of the directory does not matter.
	if code, out, _ := run(guestagent.RunOptions{Argv: []string{"cmd", "/c", "cd"}, Cwd: `c:\STAGE`}); code != 0 || out != "C:\\stage\r\n" {
		t.Errorf("cd in C:\\stage: exit %d, stdout %q", code, out)
	}
	if code, out, _ := run(guestagent.RunOptions{Argv: []string{"cmd", "/c", "set", "LOGLEVEL"}, Env: []string{"LOGLEVEL=debug"}}); code != 0 || out != "LOGLEVEL=debug\r\n" {
		t.Errorf("set LOGLEVEL: exit %d, stdout %q", code, out)
	}
	if code, _, _ := run(guestagent.RunOptions{Argv: []string{"cmd", "/c", "exit", "3"}}); code != 3 {
		t.Errorf("exit 3: exit %d", code)
	}
	if code, _, _ := run(guestagent.RunOptions{Argv: []string{"setup.exe", "/quiet"}, Cwd: `C:\stage`}); code != 0 {
		t.Errorf("setup.exe /quiet in C:\\stage: exit %d", code)
	}
	code, _, errOut := run(guestagent.RunOptions{Argv: []string{"setup.exe"}})
	if code != 9009 || !strings.Contains(errOut, "'setup.exe' is not recognized as an internal or external command") {
		t.Errorf("setup.exe outside C:\\stage: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := run(guestagent.RunOptions{Argv: []string{"cmd", "/c", "ver"}}); code != 0 || !strings.Contains(out, "Microsoft Windows [Version 6.1.7601]") {
		t.Errorf("ver: exit %d, stdout %q", code, out)
	}
	// The wrapper's output files in C:\Windows\Temp are removed.
	_, lc, _, err := c.Capture(ctx, `C:\Windows\System32\cmd.exe`, []string{"/d", "/s", "/c", `"dir /b C:\Windows\Temp"`}, 1<<20)
	if err != nil || len(lc) != 0 {
		t.Errorf("C:\\Windows\\Temp after runs: %q, %v", lc, err)
	}
	// A script runs the lines the fake understands, output redirected to
	// a file included.
	if err := h.PutGuestFile("win", `C:\stage\run.cmd`, []byte("@echo off\r\nrem smoke\r\nver > C:\\stage\\out.log\r\nsysteminfo | findstr /B /C:\"OS Name\" >> C:\\stage\\out.log\r\ntype C:\\stage\\out.log\r\n")); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(guestagent.RunOptions{Argv: []string{"cmd", "/c", `C:\stage\run.cmd`}})
	if code != 0 || !strings.Contains(out, "[Version 6.1.7601]") || !strings.Contains(out, "OS Name:                   Microsoft Windows 7 Professional") {
		t.Errorf("run.cmd: exit %d, stdout %q", code, out)
	}
	if b, ok := h.GuestFile("win", `c:\stage\OUT.log`); !ok || !strings.Contains(string(b), "OS Name") {
		t.Errorf("out.log = %q, %v", b, ok)
	}
}

func TestWindowsGuestCopyDirectoryWithCertutil(t *testing.T) {
	h, c, f := winGuest(t, nil)
	ctx := context.Background()
	src := t.TempDir()
	for rel, content := range map[string]string{"a.txt": "alpha", "sub/b.bin": "beta\x00", "sub/deep/c.txt": "gamma", "empty/.keep": ""} {
		p := filepath.Join(src, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.CopyIn(ctx, f, src, `C:\stage\data`, guestagent.CopyOptions{})
	if err != nil {
		t.Fatalf("CopyIn: %v", err)
	}
	if st.Files != 4 {
		t.Errorf("CopyIn copied %d files, want 4", st.Files)
	}
	if b, ok := h.GuestFile("win", `C:\stage\data\sub\deep\c.txt`); !ok || string(b) != "gamma" {
		t.Errorf("guest c.txt = %q, %v", b, ok)
	}
	dst := filepath.Join(t.TempDir(), "back")
	if _, err := c.CopyOut(ctx, f, `C:\stage\data`, dst, guestagent.CopyOptions{}); err != nil {
		t.Fatalf("CopyOut: %v", err)
	}
	for rel, content := range map[string]string{"a.txt": "alpha", "sub/b.bin": "beta\x00", "sub/deep/c.txt": "gamma", "empty/.keep": ""} {
		b, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(rel)))
		if err != nil || string(b) != content {
			t.Errorf("copied back %s = %q, %v", rel, b, err)
		}
	}
	// certutil's hash is what the copy compared: a changed guest file is
	// caught.
	sum, err := c.GuestSHA256(ctx, f, `C:\stage\data\a.txt`)
	if err != nil || sum != "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8" {
		t.Errorf("certutil SHA256 of a.txt = %q, %v", sum, err)
	}
	if _, err := c.GuestSHA256(ctx, f, `C:\stage\none.txt`); err == nil {
		t.Error("certutil of a missing file: no error")
	}
	// A directory without subdirectories copies too (dir /b finds
	// nothing there and says "File Not Found").
	if err := h.PutGuestFile("win", `C:\dumps\memory.dmp`, []byte("MDMP")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CopyOut(ctx, f, `C:\dumps`, filepath.Join(t.TempDir(), "dumps"), guestagent.CopyOptions{}); err != nil {
		t.Errorf("CopyOut of a directory without subdirectories: %v", err)
	}
}

func TestWindowsGuestTimeoutKillsWithTaskkill(t *testing.T) {
	_, c, f := winGuest(t, nil)
	ctx := context.Background()
	_, err := c.Run(ctx, f, guestagent.RunOptions{Argv: []string{"timeout", "/t", "600", "/nobreak"}, Timeout: 50 * time.Millisecond, Poll: time.Millisecond})
	if !errors.Is(err, guestagent.ErrTimeout) {
		t.Fatalf("run timeout /t 600 with a 50ms limit: %v, want ErrTimeout", err)
	}
	// The killed cmd.exe is gone: a second taskkill finds nothing.
	code, _, errb, err := c.Capture(ctx, `C:\Windows\System32\taskkill.exe`, []string{"/F", "/T", "/PID", "101"}, 1<<20)
	if err != nil || code != 128 || !strings.Contains(string(errb), "not found") {
		t.Errorf("taskkill of the killed process: exit %d, %q, %v", code, errb, err)
	}
}

func TestWindowsGuestHostileListingRefused(t *testing.T) {
	h, c, f := winGuest(t, map[string][]byte{`C:\stage\results\r.xml`: []byte("<ok/>")})
	ctx := context.Background()
	if err := h.SetGuestProgram("win", "dir", func(args []string, _ []byte) ([]byte, []byte, int) {
		return []byte("C:\\stage\\results\\r.xml\r\nC:\\Windows\\System32\\config\\SAM\r\n"), nil, 0
	}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	_, err := c.CopyOut(ctx, f, `C:\stage\results`, dst, guestagent.CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "not below it") {
		t.Fatalf("CopyOut with an entry outside the directory: %v", err)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 0 {
		t.Errorf("destination holds %d entries after a refused listing", len(ents))
	}
}

func TestWindowsGuestCmdErrorsLikeCmd(t *testing.T) {
	h, c, _ := winGuest(t, nil)
	ctx := context.Background()
	code, _, errb, err := c.Capture(ctx, `C:\Windows\System32\cmd.exe`, []string{"/d", "/s", "/c", `"frobnicate /x"`}, 1<<20)
	if err != nil || code != 9009 || !strings.HasPrefix(string(errb), "'frobnicate' is not recognized as an internal or external command,\r\noperable program or batch file.") {
		t.Errorf("unknown command: exit %d, %q, %v", code, errb, err)
	}
	if _, err := c.Exec(ctx, guestagent.ExecRequest{Path: `C:\nope\x.exe`}); err == nil {
		t.Error("guest-exec of a missing program: no error")
	}
	// Mkdir then Remove, in the flavour's forms.
	f := guestagent.Windows{}
	p, a := f.Mkdir(`C:\stage\new\deep`)
	if code, _, errb, err := c.Capture(ctx, p, a, 1<<20); err != nil || code != 0 {
		t.Errorf("mkdir: exit %d, %q, %v", code, errb, err)
	}
	if code, _, _, err := c.Capture(ctx, p, a, 1<<20); err != nil || code != 0 {
		t.Errorf("mkdir of an existing directory: exit %d, %v", code, err)
	}
	if err := h.PutGuestFile("win", `C:\stage\new\deep\x.txt`, []byte("x")); err != nil {
		t.Fatal(err)
	}
	p, a = f.Remove(`C:\stage\new\deep\X.TXT`, `C:\stage\new\missing.txt`)
	if code, _, _, err := c.Capture(ctx, p, a, 1<<20); err != nil || code != 0 {
		t.Errorf("del: exit %d, %v", code, err)
	}
	p, a = f.ListFiles(`C:\stage\new`)
	if code, out, _, err := c.Capture(ctx, p, a, 1<<20); err != nil || code != 0 || len(out) != 0 {
		t.Errorf("files below C:\\stage\\new after del: exit %d, %q, %v", code, out, err)
	}
	p, a = f.ListFiles(`C:\nowhere`)
	if code, _, _, err := c.Capture(ctx, p, a, 1<<20); err != nil || code == 0 {
		t.Errorf("listing a missing directory: exit %d, %v", code, err)
	}
}
