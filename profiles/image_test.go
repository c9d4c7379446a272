package profiles

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/license"
)

func TestImageBlockModel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `
host "lab" {
  storage_pool = "vms"
}
image "w7pro" {
  source {
    iso     = "iso/win7.iso"
    sha256  = "ABCDEF0000000000000000000000000000000000000000000000000000000001"
    edition = "professional"
  }
  media = ["virtio-win.iso", "drivers/"]
  step "drivers" {
    command = "cmd /c echo drivers"
  }
  step "agent" {
    command = "cmd /c echo agent"
  }
  size    = "30GiB"
  timeout = "90m"
}
vm "acct" {
  count = 2
  os    = "win7-x64"
  host  = host.lab
  disk {
    image = image.w7pro
  }
}
vm "old" {
  os   = "win7-x64"
  host = host.lab
  disk {
    image         = image.w7pro
    image_version = "v2"
  }
}
vm "path" {
  os   = "win7-x64"
  host = host.lab
  disk {
    image = "/srv/golden.qcow2"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := Load(dir, LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(p.Images) != 1 {
		t.Fatalf("images = %d", len(p.Images))
	}
	im := p.Images[0]
	if im.Name != "w7pro" || im.Source.ISO != filepath.Join(dir, "iso/win7.iso") || im.Source.Edition != license.EditionProfessional ||
		im.Source.Arch != "x64" || im.OS() != OSWin7x64 || im.Source.SHA256[:6] != "abcdef" {
		t.Errorf("source = %+v", im.Source)
	}
	if len(im.Media) != 2 || im.Media[0].Path != filepath.Join(dir, "virtio-win.iso") || im.Media[1].Path != filepath.Join(dir, "drivers") {
		t.Errorf("media = %+v", im.Media)
	}
	if len(im.Steps) != 2 || im.Steps[0].Name != "drivers" || im.Steps[1].Command != "cmd /c echo agent" {
		t.Errorf("steps = %+v", im.Steps)
	}
	if im.SizeBytes != 30<<30 || im.Timeout != 90*time.Minute || im.Host == nil || im.Host.Name != "lab" || im.Pool != "vms" {
		t.Errorf("image = size %d timeout %s host %v pool %q", im.SizeBytes, im.Timeout, im.Host, im.Pool)
	}
	for _, vm := range p.VMs {
		d := vm.Disk
		switch vm.Name {
		case "acct":
			if d.ImageRef != im || d.Image != "" || d.ImageVersion != ImageVersionPinned {
				t.Errorf("acct disk = %+v", d)
			}
		case "old":
			if d.ImageRef != im || d.ImageVersion != "2" {
				t.Errorf("old disk = %+v", d)
			}
		case "path":
			if d.ImageRef != nil || d.Image != "/srv/golden.qcow2" {
				t.Errorf("path disk = %+v", d)
			}
		}
	}
}

func TestParseImageVersion(t *testing.T) {
	for in, want := range map[string]struct {
		latest bool
		n      int
		bad    bool
	}{"": {}, "latest": {latest: true}, "3": {n: 3}, "v12": {n: 12}, "0": {bad: true}, "newest": {bad: true}, "-1": {bad: true}} {
		latest, n, err := ParseImageVersion(in)
		if (err != nil) != want.bad || latest != want.latest || n != want.n {
			t.Errorf("ParseImageVersion(%q) = %v %d %v", in, latest, n, err)
		}
	}
}
