package profiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 10: the profile's identity was its directory name, silently;
// moving the directory orphaned its VMs. A declared name survives a move.
func TestProfileNameDeclaredSurvivesMove(t *testing.T) {
	src := `profile {
  name = "acct"
}

vm "a" {
  os = "win7-x64"
  disk {
    image = "/srv/images/golden.qcow2"
  }
}
`
	for _, dir := range []string{"acct", "moved-elsewhere", "Not A Valid Name"} {
		d := filepath.Join(t.TempDir(), dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "main.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{d, filepath.Join(d, "main.hcl")} {
			p, diags := Load(path, LoadOptions{Getenv: fixtureEnv})
			if diags.HasErrors() {
				t.Fatalf("%s: %s", path, diags.Error())
			}
			if p.Name != "acct" || p.NameRange == nil || p.NameRange.Start.Line != 2 {
				t.Errorf("%s: name %q declared at %v, want acct at line 2", path, p.Name, p.NameRange)
			}
		}
	}
}

// Issue 10: `validate /nonexistent` said "Profile  is not valid" (empty
// name): a missing path keeps a name and says what to give.
func TestLoadMissingPathIsClear(t *testing.T) {
	p, diags := Load("/nonexistent/acct", LoadOptions{})
	if !diags.HasErrors() || p.Name != "acct" {
		t.Fatalf("name %q, diags %v", p.Name, diags)
	}
	if d := diags[0]; d.Summary != "Profile not found" || !strings.Contains(d.Detail, "/nonexistent/acct") || !strings.Contains(d.Detail, "directory of *.hcl files") {
		t.Errorf("diagnostic: %s: %s", d.Summary, d.Detail)
	}
}

// Issue 10: memory = "4GB" silently meant 3.73 GiB; decimal units are a
// diagnostic that says to write GiB (sizes of disks keep them).
func TestMemoryDecimalUnitSaysGiB(t *testing.T) {
	d := filepath.Join(t.TempDir(), "m")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `vm "a" {
  os     = "win7-x64"
  memory = "4GB"
  disk {
    image = "/srv/images/golden.qcow2"
    size  = "100GB"
  }
}
`
	if err := os.WriteFile(filepath.Join(d, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := Load(d, LoadOptions{Getenv: fixtureEnv})
	if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != 3 {
		t.Fatalf("want one diagnostic at line 3, got %v", diags)
	}
	if !strings.Contains(diags[0].Detail, `"4GiB"`) {
		t.Errorf("detail does not say to write 4GiB: %s", diags[0].Detail)
	}
	for in, want := range map[string]bool{"4GB": true, "4 gb": true, "512MB": true, "4GiB": false, "4G": false, "1.5TB": true} {
		if got := SizeIsDecimal(in); got != want {
			t.Errorf("SizeIsDecimal(%q) = %v", in, got)
		}
	}
	if got := binaryUnit("512 mb"); got != "512MiB" {
		t.Errorf("binaryUnit = %q", got)
	}
}

func TestParseScheduleNeverMatches(t *testing.T) {
	for _, s := range []string{"0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"} {
		if _, err := ParseSchedule(s); err == nil || !strings.Contains(err.Error(), "never matches") {
			t.Errorf("ParseSchedule(%q) = %v, want never matches", s, err)
		}
	}
	if _, err := ParseSchedule("0 0 29 2 *"); err != nil {
		t.Errorf("Feb 29 (leap years) rejected: %v", err)
	}
}
