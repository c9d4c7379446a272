package winguest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// readISO opens img with go-diskfs and returns name -> content of the root
// files (Joliet names when present).
func readISO(t *testing.T, img []byte) (map[string][]byte, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "read.iso")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := iso9660.Read(file.New(f, true), int64(len(img)), 0, isoBlockSize)
	if err != nil {
		t.Fatalf("go-diskfs cannot read the image: %v", err)
	}
	entries, err := fsys.ReadDir(".")
	if err != nil {
		t.Fatalf("read root directory: %v", err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() {
			out[e.Name()+"/"] = nil
			continue
		}
		b, err := fsys.ReadFile(e.Name())
		if err != nil {
			t.Fatalf("read %s: %v", e.Name(), err)
		}
		out[e.Name()] = b
	}
	return out, fsys.Label()
}

func TestAnswerISO(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	answer, err := Autounattend(answerCases(t)[0].p)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // spans many blocks
	files := []File{
		{Name: AutounattendName, Data: answer},
		{Name: "computer-name.txt", Data: []byte("ACCT-1\n")},
		{Name: "Drivers_Readme.TXT", Data: big},
		{Name: "noext", Data: []byte("x")},
	}

	var staged []string
	stagedHook = func(dir string) {
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("temporary directory mode %v (%v), want 0700", st.Mode().Perm(), err)
		}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			st, _ := d.Info()
			staged = append(staged, p)
			if !d.IsDir() && st.Mode().Perm()&0o077 != 0 {
				t.Errorf("temporary file %s has mode %04o, want 0600", p, st.Mode().Perm())
			}
			return nil
		})
	}
	defer func() { stagedHook = nil }()

	img, err := AnswerISO(files, "")
	if err != nil {
		t.Fatalf("AnswerISO: %v", err)
	}
	if len(staged) < 1+len(files) {
		t.Fatalf("staging hook saw %d paths", len(staged))
	}
	if len(img)%isoBlockSize != 0 || len(img) < 18*isoBlockSize {
		t.Errorf("image size %d is not a whole number of 2 KiB blocks past the descriptors", len(img))
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	got, label := readISO(t, img)
	if label = strings.TrimRight(label, " "); label != DefaultVolumeLabel {
		t.Errorf("volume label %q, want %q", label, DefaultVolumeLabel)
	}
	for _, f := range files {
		b, ok := got[f.Name]
		if !ok {
			t.Errorf("%s missing (Joliet names: %v)", f.Name, keys(got))
			continue
		}
		if !bytes.Equal(b, f.Data) {
			t.Errorf("%s: content differs (%d bytes, want %d)", f.Name, len(b), len(f.Data))
		}
	}
	if len(got) != len(files) {
		t.Errorf("image holds %v, want only the given files", keys(got))
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// TestAnswerISOExternalReaders reads the image with the tools Linux users
// have: isoinfo (genisoimage) and osirrox (xorriso). Each is optional.
func TestAnswerISOExternalReaders(t *testing.T) {
	img, err := AnswerISO([]File{{Name: AutounattendName, Data: []byte("<unattend/>\n")}, {Name: UnattendName, Data: []byte("u\n")}}, "ACCT_1_ANSWERS")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "answer.iso")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	ran := 0
	if isoinfo, err := exec.LookPath("isoinfo"); err == nil {
		ran++
		out, err := exec.Command(isoinfo, "-J", "-l", "-i", path).CombinedOutput()
		if err != nil {
			t.Fatalf("isoinfo -J -l: %v\n%s", err, out)
		}
		for _, n := range []string{AutounattendName, UnattendName} {
			if !strings.Contains(string(out), " "+n) {
				t.Errorf("isoinfo -J does not list %s:\n%s", n, out)
			}
		}
		out, err = exec.Command(isoinfo, "-d", "-i", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Volume id: ACCT_1_ANSWERS") || !strings.Contains(string(out), "Joliet") {
			t.Errorf("isoinfo -d: %v\n%s", err, out)
		}
		out, err = exec.Command(isoinfo, "-J", "-x", "/"+AutounattendName, "-i", path).Output()
		if err != nil || string(out) != "<unattend/>\n" {
			t.Errorf("isoinfo -x %s: %v %q", AutounattendName, err, out)
		}
	}
	if osirrox, err := exec.LookPath("osirrox"); err == nil {
		ran++
		dst := filepath.Join(t.TempDir(), "out.xml")
		out, err := exec.Command(osirrox, "-indev", path, "-extract", "/"+AutounattendName, dst).CombinedOutput()
		if err != nil {
			t.Fatalf("osirrox: %v\n%s", err, out)
		}
		if b, _ := os.ReadFile(dst); string(b) != "<unattend/>\n" {
			t.Errorf("osirrox extracted %q", b)
		}
	}
	if ran == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("neither isoinfo (genisoimage) nor osirrox (xorriso) is installed; CI=true requires one (make deps installs both)")
		}
		t.Skip("neither isoinfo (genisoimage) nor osirrox (xorriso) is installed; go-diskfs read-back still runs in TestAnswerISO")
	}
}

func TestAnswerISORefuses(t *testing.T) {
	ok := []File{{Name: AutounattendName, Data: []byte("x")}}
	tests := []struct {
		name  string
		files []File
		label string
		want  string
	}{
		{"no files", nil, "", "no files"},
		{"slash", []File{{Name: "a/b.xml"}}, "", "file name"},
		{"dot dot", []File{{Name: ".."}}, "", "file name"},
		{"space", []File{{Name: "Auto unattend.xml"}}, "", "file name"},
		{"too long", []File{{Name: strings.Repeat("a", 65)}}, "", "file name"},
		{"duplicate ignoring case", []File{{Name: "Unattend.xml", Data: []byte("a")}, {Name: "unattend.XML", Data: []byte("b")}}, "", "twice"},
		{"lower-case label", ok, "answers", "volume label"},
		{"long label", ok, strings.Repeat("A", 17), "volume label"},
		{"empty file", []File{{Name: AutounattendName}}, "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := AnswerISO(tt.files, tt.label)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAnswerISOWithSecretsLeavesNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	c := answerCases(t)[1]
	b, err := generate(c)
	if err != nil {
		t.Fatal(err)
	}
	img, err := AnswerISO([]File{{Name: AutounattendName, Data: b}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(img, []byte(fakeKey)) {
		t.Fatalf("the image does not carry the answer file")
	}
	// Nothing with the key remains on disk after AnswerISO returns.
	filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

func TestDirISO(t *testing.T) {
	src := filepath.Join(t.TempDir(), "drivers")
	for name, data := range map[string]string{
		"viostor/w7/amd64/viostor.inf": "[Version]\n",
		"NetKVM/w7/amd64/netkvm.inf":   "[Version]\nSignature=\"$Windows NT$\"\n",
		"Install.cmd":                  "pnputil -i -a viostor\\w7\\amd64\\*.inf\r\n",
	} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "media.iso")
	if err := DirISO(dst, src, "LVM_MEDIA1"); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	root, label := readISO(t, img)
	if _, dir := root["viostor/"]; !dir || strings.TrimSpace(label) != "LVM_MEDIA1" || string(root["Install.cmd"]) != "pnputil -i -a viostor\\w7\\amd64\\*.inf\r\n" {
		t.Errorf("label %q, root %v", label, keys(root))
	}
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ISO mode: %v %v", st, err)
	}
	// The source is only read; nothing is left next to the ISO.
	left, _ := os.ReadDir(filepath.Dir(dst))
	if len(left) != 1 {
		t.Errorf("left next to the ISO: %v", left)
	}
	if err := os.WriteFile(filepath.Join(src, "empty.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := DirISO(filepath.Join(t.TempDir(), "x.iso"), src, "LVM_MEDIA1"); err == nil || !strings.Contains(err.Error(), "empty.txt") {
		t.Errorf("empty file: %v", err)
	}
	if err := DirISO(filepath.Join(t.TempDir(), "x.iso"), filepath.Join(src, "Install.cmd"), "LVM_MEDIA1"); err == nil {
		t.Error("a file as directory: no error")
	}
}

// A process killed while it staged answer media leaves a directory with
// the answer file (and its product key) in the temporary directory; the
// next run removes it, and leaves alone what belongs to live processes.
func TestStaleStagingIsCleaned(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// A process that has exited: its id is free.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	live := os.Getppid() // the go tool running this test
	mk := func(name string, age time.Duration) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "files"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "files", AutounattendName), []byte("<ProductKey>"+fakeKey+"</ProductKey>"), 0o600); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(dir, when, when); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	killed := mk(fmt.Sprintf("legacyvm-answer-%d-123", dead), 0)
	old := mk("legacyvm-answer-4711", 2*time.Hour) // made before names held a pid
	busy := mk(fmt.Sprintf("legacyvm-answer-%d-456", live), time.Minute)
	reused := mk(fmt.Sprintf("legacyvm-answer-%d-789", live), 2*time.Hour) // staging takes milliseconds: the id was reused
	fresh := mk("legacyvm-answer-999", time.Minute)
	other := mk("someone-else", 2*time.Hour)

	// The next build of answer media cleans up first.
	c := answerCases(t)[1]
	b, err := generate(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AnswerISO([]File{{Name: AutounattendName, Data: b}}, ""); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{killed, old, reused} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale staging %s was not removed (%v)", filepath.Base(gone), err)
		}
	}
	for _, kept := range []string{busy, fresh, other} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(kept), err)
		}
	}
}
