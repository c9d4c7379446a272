package guestagent

import (
	"errors"
	"reflect"
	"testing"
)

func TestSafeRel(t *testing.T) {
	for _, ok := range []string{"a", "a/b.txt", "logs/2026/run.log", "name with spaces", "ünïcode"} {
		if _, err := SafeRel(ok); err != nil {
			t.Errorf("SafeRel(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "../../etc/x", "a/../../b", "..", ".", "/etc/passwd", "a//b", "a/./b", `C:\x`, "C:x", `a\..\b`, "a\nb", "a\x00b"} {
		if _, err := SafeRel(bad); !errors.Is(err, ErrUnsafeName) {
			t.Errorf("SafeRel(%q) = %v, want ErrUnsafeName", bad, err)
		}
	}
}

func TestLinuxFlavor(t *testing.T) {
	f := Linux{}
	prog, args := f.Wrap([]string{"ls", "-l"}, []string{"A=b c"}, "/tmp", "/tmp/o", "/tmp/e")
	want := []string{"-c", linuxWrapper, "legacyvm-exec", "/tmp", "/tmp/o", "/tmp/e", "1", "A=b c", "ls", "-l"}
	if prog != "/bin/sh" || !reflect.DeepEqual(args, want) {
		t.Errorf("Wrap = %s %q", prog, args)
	}
	names, err := f.ParseList("/stage", []byte("/stage/a\x00/stage/sub\x00/stage/sub/b\x00"))
	if err != nil || !reflect.DeepEqual(names, []string{"a", "sub", "sub/b"}) {
		t.Errorf("ParseList = %q, %v", names, err)
	}
	if _, err := f.ParseList("/stage", []byte("/etc/passwd\x00")); err == nil {
		t.Errorf("a listing entry outside the directory was accepted")
	}
	h, err := f.ParseHash([]byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  /tmp/x\n"))
	if err != nil || h != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("ParseHash = %q, %v", h, err)
	}
}

// Windows commands are proven by their shape (no Windows guest here).
func TestWindowsFlavor(t *testing.T) {
	f := Windows{}
	prog, args := f.Wrap([]string{`C:\stage\run tests.bat`, `/v:"x"`}, []string{"LOGLEVEL=debug"}, `C:\stage`, `C:\Windows\Temp\o`, `C:\Windows\Temp\e`)
	wantArgs := []string{"/d", "/s", "/c", `"cd /d "C:\stage" && set "LOGLEVEL=debug" && "C:\stage\run tests.bat" "/v:""x""" >"C:\Windows\Temp\o" 2>"C:\Windows\Temp\e""`}
	if prog != `C:\Windows\System32\cmd.exe` || !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("Wrap = %s %q\nwant %q", prog, args, wantArgs)
	}
	if p, a := f.Kill(4242); p != `C:\Windows\System32\taskkill.exe` || !reflect.DeepEqual(a, []string{"/F", "/T", "/PID", "4242"}) {
		t.Errorf("Kill = %s %q", p, a)
	}
	// certutil on Windows 7 prints the hash as spaced byte pairs.
	out := "SHA256 hash of file C:\\stage\\app.msi:\r\ne3 b0 c4 42 98 fc 1c 14 9a fb f4 c8 99 6f b9 24 27 ae 41 e4 64 9b 93 4c a4 95 99 1b 78 52 b8 55\r\nCertUtil: -hashfile command completed successfully.\r\n"
	if h, err := f.ParseHash([]byte(out)); err != nil || h != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("ParseHash(certutil) = %q, %v", h, err)
	}
	names, err := f.ParseList(`C:\stage`, []byte("C:\\stage\\a.txt\r\nC:\\Stage\\sub\\b.txt\r\n"))
	if err != nil || !reflect.DeepEqual(names, []string{"a.txt", "sub/b.txt"}) {
		t.Errorf("ParseList = %q, %v", names, err)
	}
	if got := f.Join(`C:\stage\`, "sub/b.txt"); got != `C:\stage\sub\b.txt` {
		t.Errorf("Join = %q", got)
	}
	if got := f.Base(`C:\stage\app.msi`); got != "app.msi" {
		t.Errorf("Base = %q", got)
	}
	if FlavorFor(OSInfo{ID: "mswindows"}).Name() != "windows" || FlavorFor(OSInfo{ID: "debian"}).Name() != "linux" {
		t.Errorf("FlavorFor picks the wrong flavour")
	}
}
