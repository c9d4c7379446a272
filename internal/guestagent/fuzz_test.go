package guestagent

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSafeRel: whatever a guest lists, an accepted name stays below the
// destination.
func FuzzSafeRel(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "a/../../b", "/etc/passwd", `C:\x`, "a//b", ".", "..", "a/./b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		rel, err := SafeRel(name)
		if err != nil {
			return
		}
		root := "/results/t/vm"
		j := filepath.Join(root, rel)
		if !strings.HasPrefix(j, root+"/") || filepath.Clean(j) != j {
			t.Fatalf("SafeRel(%q) = %q escapes to %q", name, rel, j)
		}
	})
}

// FuzzLinuxParseList: a listing never yields a name outside the listed
// directory that SafeRel would let through.
func FuzzLinuxParseList(f *testing.F) {
	f.Add("/stage", "/stage/a\x00/stage/../../etc/x\x00")
	f.Add("/stage/", "/stage/a\x00")
	f.Fuzz(func(t *testing.T, dir, out string) {
		names, err := Linux{}.ParseList(dir, []byte(out))
		if err != nil {
			return
		}
		for _, n := range names {
			rel, err := SafeRel(n)
			if err != nil {
				continue
			}
			if !strings.HasPrefix(filepath.Join("/r", rel), "/r/") {
				t.Fatalf("name %q from listing %q escapes", n, out)
			}
		}
	})
}
