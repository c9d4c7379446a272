package profiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/license"
)

// TestExamples loads every example profile and requires no diagnostics at
// all, and that no example writes a key literally.
func TestExamples(t *testing.T) {
	dirs, err := filepath.Glob("../examples/*")
	if err != nil || len(dirs) < 5 {
		t.Fatalf("examples: %v %v", dirs, err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, "main.hcl")); err != nil {
				t.Fatalf("example without main.hcl: %v", err)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "main.hcl"))
			if !strings.HasPrefix(string(b), "# "+filepath.Base(dir)+":") {
				t.Errorf("main.hcl does not start with a comment header naming the example")
			}
			p, diags := Load(dir, LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
			for _, d := range diags {
				t.Errorf("%s", d.Error())
			}
			if len(p.Instances) == 0 {
				t.Errorf("no instances")
			}
			for _, l := range p.Licenses {
				if k := l.ProductKey.Kind; k != license.SourceEnv && k != license.SourceFile {
					t.Errorf("license %s: key from %v, want env() or file()", l.Name, l.ProductKey)
				}
			}
		})
	}
}

// TestQuickstart pins what the README's first command relies on.
func TestQuickstart(t *testing.T) {
	p := loadValid(t, "../examples/quickstart", LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
	if len(p.Instances) != 1 || len(p.Licenses) != 0 || len(p.Networks) != 1 {
		t.Fatalf("instances %d licences %d networks %d", len(p.Instances), len(p.Licenses), len(p.Networks))
	}
	vm := p.VMs[0]
	if vm.Disk.Image != "/var/lib/libvirt/images/legacyvm-standin.qcow2" || vm.Disk.Prepare != PrepareNone ||
		vm.MemoryBytes != 2<<30 || vm.CPUs != 1 || vm.Network.Name != "demo" ||
		vm.Network.Subnet.String() != "10.77.7.0/24" || !vm.Network.DHCP || !vm.Host.Implicit || vm.Host.URI != "" {
		t.Errorf("quickstart vm = %+v disk %+v network %+v", vm, vm.Disk, vm.Network)
	}
}
