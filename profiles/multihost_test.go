package profiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/license"
)

func writeProfile(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fleet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const fleetHCL = `
fingerprint_key = file("/etc/legacyvm/org-fingerprint.key")

files {
  allow_dirs = ["/etc/legacyvm"]
}

host "a" {
  uri     = "qemu+tls://a.example.org/system"
  max_vms = 4
  labels  = { site = "lab", disk = "ssd" }
}
host "b" {
  uri    = "qemu+ssh://admin@b.example.org/system?no_tty=1"
  labels = { site = "lab" }
}
vm "t" {
  count       = 3
  os          = "win7-x64"
  placement   = "pack"
  host_labels = { disk = "ssd" }
  disk { image = "/var/lib/libvirt/images/golden.qcow2" }
}
vm "fixed" {
  os   = "win7-x64"
  host = host.b
  disk { image = "/var/lib/libvirt/images/golden.qcow2" }
}
`

func TestPlacementAndFingerprintKeyAreDecoded(t *testing.T) {
	p := loadValid(t, writeProfile(t, map[string]string{"main.hcl": fleetHCL}), LoadOptions{})
	if p.FingerprintKey.Kind != license.SourceFile || p.FingerprintKey.Path != "/etc/legacyvm/org-fingerprint.key" {
		t.Errorf("fingerprint_key = %v", p.FingerprintKey)
	}
	var a *Host
	for _, h := range p.Hosts {
		if h.Name == "a" {
			a = h
		}
	}
	if a == nil || a.MaxVMs != 4 || a.Labels["disk"] != "ssd" {
		t.Fatalf("host a = %+v", a)
	}
	for _, vm := range p.VMs {
		switch vm.Name {
		case "t":
			if vm.Placement != PlacementPack || vm.Host != nil || len(vm.Candidates) != 1 || vm.Candidates[0] != a {
				t.Errorf("vm t: placement %q host %v candidates %v, want pack over [a]", vm.Placement, vm.Host, vm.Candidates)
			}
		case "fixed":
			if vm.Placement != PlacementFixed || vm.Host == nil || vm.Host.Name != "b" {
				t.Errorf("vm fixed: %q %v", vm.Placement, vm.Host)
			}
		}
	}
	for _, in := range p.Instances {
		if (in.VM.Name == "fixed") != (in.Host != nil) {
			t.Errorf("instance %s: host %v before placement", in.Name, in.Host)
		}
	}
}

func TestFingerprintKeyDiagnostics(t *testing.T) {
	dir := writeProfile(t, map[string]string{
		"a.hcl": `fingerprint_key = env("ORG_FP")` + "\n",
		"b.hcl": `fingerprint_key = env("OTHER_FP")` + "\nvm \"v\" {\n  os = \"win7-x64\"\n  disk { image = \"/g.qcow2\" }\n}\n",
	})
	_, diags := Load(dir, LoadOptions{Getenv: fixtureEnv})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "Duplicate fingerprint_key") || diags[0].Subject == nil {
		t.Errorf("two fingerprint_key: want a located duplicate diagnostic, got %v", diags)
	}
	secret := strings.Repeat("ab", 32)
	dir = writeProfile(t, map[string]string{"main.hcl": `fingerprint_key = "` + secret + `"` + "\nvm \"v\" {\n  os = \"win7-x64\"\n  disk { image = \"/g.qcow2\" }\n}\n"})
	p, diags := Load(dir, LoadOptions{Getenv: fixtureEnv})
	if diags.HasErrors() || !strings.Contains(diags.Error(), "Fingerprint key written in the profile") {
		t.Errorf("literal fingerprint_key: want a warning, got %v", diags)
	}
	for name, f := range p.Sources {
		if strings.Contains(string(f.Bytes), secret) {
			t.Errorf("the literal secret is visible in Sources[%s]", name)
		}
	}
}
