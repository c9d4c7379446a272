package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// imageVersion is one version of `image list -o json` (docs/json.md).
type imageVersion struct {
	Name       string `json:"image"`
	Version    int
	Pool       string
	Volume     string
	Path       string
	Mode       string
	MetaVolume string `json:"meta_volume"`
	Meta       struct {
		Edition         string
		Arch            string
		SourceSHA256    string    `json:"source_sha256"`
		BuiltAt         time.Time `json:"built_at"`
		LegacyvmVersion string    `json:"legacyvm_version"`
		ContentSHA256   string    `json:"content_sha256"`
		Generalized     bool
		Media           []struct{ Name, SHA256 string }
		Steps           []string
	} `json:"metadata"`
	UsedBy []string `json:"used_by"`
}

func listImages(t *testing.T, h *e2eutil.Host, w *e2eutil.SecretWatch, dir string) []imageVersion {
	t.Helper()
	r := h.RunWatched(t, w, nil, 0, "image", "list", "-o", "json", dir)
	var doc struct {
		FormatVersion int            `json:"format_version"`
		Versions      []imageVersion `json:"versions"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil || doc.FormatVersion != 1 {
		t.Fatalf("image list -o json: %v\n%s", err, r.Stdout)
	}
	return doc.Versions
}

// imageProfile is a profile with image NAME built from the stand-in
// installer, one media directory and the given steps, and the vm blocks.
func imageProfile(t *testing.T, h *e2eutil.Host, name, steps, vms string) string {
	t.Helper()
	media := filepath.Join(t.TempDir(), "drivers")
	if err := os.MkdirAll(filepath.Join(media, "viostor", "w7", "amd64"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(media, "viostor", "w7", "amd64", "viostor.inf"), []byte("[Version]\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := h.HostBlock() + fmt.Sprintf(`
license "k1" {
  product_key = env("LVM_IMG_KEY1")
  edition     = "professional"
  channel     = "retail"
}
license "k2" {
  product_key = env("LVM_IMG_KEY2")
  edition     = "professional"
  channel     = "retail"
}

image %q {
  source {
    iso     = %q
    sha256  = %q
    edition = "professional"
    arch    = "x64"
  }
  media   = [%q]
%s
  size    = "1GiB"
  memory  = "256MiB"
  timeout = "15m"
}
%s`, name, h.Guest.Installer, fileSHA256(t, h.Guest.Installer), media, steps, vms)
	return e2eutil.Profile(t, name+"-prof", map[string]string{"main.hcl": src})
}

var secretEnv = []string{"LVM_IMG_KEY1=" + key1, "LVM_IMG_KEY2=" + key2, "LVM_IMG_PW=" + pwVM}

func TestImageLifecycle(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	w := e2eutil.NewSecretWatch()
	dir := imageProfile(t, h, "w7img", `
  step "drivers" {
    command = "cmd /c echo drivers"
  }
  step "agent" {
    command = "cmd /c echo agent"
  }`, `
vm "imgvm" {
  count  = 2
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image = image.w7img
  }
  windows {
    computer_name  = "IMG-${count.index}"
    admin_password = env("LVM_IMG_PW")
  }
  licenses = [license.k1, license.k2]
}
`)
	ctx := context.Background()

	// Nothing to clone yet: plan says how to build it.
	r := h.RunWatched(t, w, nil, 1, "plan", dir)
	if !strings.Contains(r.Stderr, "Image not built yet") || !strings.Contains(r.Stderr, "legacyvm image build") {
		t.Errorf("plan before the build:\n%s", r.Stderr)
	}

	// Build: the phases, in order, and a registered read-only version 1.
	r = h.RunWatched(t, w, secretEnv, 0, "image", "build", dir, "w7img")
	e2eutil.InOrder(t, "build progress", r.Stderr, "w7img: checking", "no network interface", "uploading answer media",
		"w7img: phase setup", "w7img: phase media (count=1)", "w7img: phase steps (count=2)", "w7img: phase generalize",
		"w7img: phase register", "registered version 1")
	if !strings.Contains(r.Stdout, "Built image w7img version 1: lvm-image-w7img-v1.qcow2") {
		t.Errorf("build output:\n%s", r.Stdout)
	}
	buildLog, err := os.ReadFile(h.SerialLog("lvm-build-w7img"))
	if err != nil {
		t.Fatal(err)
	}
	w.Add("serial log of the build", string(buildLog))
	e2eutil.InOrder(t, "build serial log", string(buildLog), "RIG install target=sda result=written", "RIG answer file=Autounattend.xml mode=image-build",
		"RIG phase setup", "RIG phase media count=1", "RIG phase steps count=2", "RIG phase generalize",
		"RIG generalize marker=written", "RIG poweroff reason=sysprep")
	if strings.Contains(string(buildLog), "RIG net ") {
		t.Error("the build VM brought up a network")
	}
	if got := leftovers(t, h, "w7img"); strings.Join(got, ",") != "volume lvm-image-w7img-v1.meta.json,volume lvm-image-w7img-v1.qcow2" {
		t.Errorf("after the build the host holds %v, want only the image and its metadata", got)
	}

	vs := listImages(t, h, w, dir)
	if len(vs) != 1 {
		t.Fatalf("image list: %+v", vs)
	}
	v1 := vs[0]
	m := v1.Meta
	if v1.Version != 1 || v1.Mode != "0444" || v1.Name != "w7img" || m.Edition != "professional" || m.Arch != "x64" ||
		m.SourceSHA256 != fileSHA256(t, h.Guest.Installer) || m.LegacyvmVersion == "" || !m.Generalized || m.BuiltAt.IsZero() ||
		len(m.Media) != 1 || m.Media[0].Name != "drivers/" || strings.Join(m.Steps, ",") != "drivers,agent" || len(v1.UsedBy) != 0 {
		t.Errorf("registered version: %+v", v1)
	}
	for _, p := range []string{v1.Path, filepath.Join(filepath.Dir(v1.Path), v1.MetaVolume)} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o444 {
			t.Errorf("%s: mode %v (%v), want 0444", p, st.Mode(), err)
		}
	}
	if got := fileSHA256(t, v1.Path); got != m.ContentSHA256 {
		t.Errorf("content sha256 %s, the file has %s", m.ContentSHA256, got)
	}
	if got := sector(t, v1.Path, 57347); !strings.HasPrefix(got, "RIG-GENERALIZED") {
		t.Errorf("generalize marker of the image = %q", got)
	}

	// Two VMs cloned from it: their own specialize pass, computer name and key.
	recs := map[string]*e2eutil.SerialRecorder{}
	for _, vm := range []string{"imgvm-1", "imgvm-2"} {
		recs[vm] = e2eutil.RecordSerial(h.SerialLog(vm))
	}
	r = h.RunWatched(t, w, secretEnv, 0, "apply", "--auto-approve", dir)
	for i, vm := range []string{"imgvm-1", "imgvm-2"} {
		log := strings.Join(recs[vm].Runs(), "\n-----\n")
		w.Add("serial log of "+vm, log)
		e2eutil.InOrder(t, vm+" serial", log, fmt.Sprintf("RIG answer file=Unattend.xml computername=IMG-%d", i+1), "RIG specialize generalized=yes", "RIG poweroff reason=answercd")
		if strings.Contains(log, "RIG install") || strings.Contains(log, "mode=image-build") {
			t.Errorf("%s ran the installer or the build:\n%s", vm, log)
		}
		d, err := h.HV.GetDomain(ctx, vm)
		if err != nil {
			t.Fatal(err)
		}
		md := d.Metadata
		want := []string{key1, key2}[i]
		if md.ImageName != "w7img" || md.ImageVersion != 1 || md.Image != v1.Path || md.License == nil || md.License.LastGroup != want[len(want)-5:] {
			t.Errorf("%s metadata: %+v (licence %+v)", vm, md, md.License)
		}
	}
	r = h.RunWatched(t, w, nil, 0, "licenses")
	for _, want := range []string{"imgvm-1", "imgvm-2", key1[len(key1)-5:], key2[len(key2)-5:]} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("licenses lacks %q:\n%s", want, r.Stdout)
		}
	}
	// Two seats, one per clone: neither the image nor its build holds one.
	if strings.Contains(r.Stdout, "lvm-build") || strings.Contains(r.Stdout, "lvm-image") || strings.Count(r.Stdout, "1/1") != 2 {
		t.Errorf("licenses counts the image:\n%s", r.Stdout)
	}
	// The clones never wrote to the image.
	if got := fileSHA256(t, v1.Path); got != m.ContentSHA256 {
		t.Errorf("the image changed while clones ran: %s, was %s", got, m.ContentSHA256)
	}
	if got := listImages(t, h, w, dir); len(got) != 1 || strings.Join(got[0].UsedBy, ",") != "imgvm-1,imgvm-2" {
		t.Errorf("used by: %+v", got)
	}

	// A rebuild: VMs stay pinned, plan says a newer version exists.
	r = h.RunWatched(t, w, secretEnv, 0, "image", "build", dir, "w7img")
	if !strings.Contains(r.Stdout, "version 2") {
		t.Errorf("rebuild:\n%s", r.Stdout)
	}
	r = h.RunWatched(t, w, nil, 0, "plan", dir)
	for _, vm := range []string{"imgvm-1", "imgvm-2"} {
		if !strings.Contains(r.Stdout, vm+" stays on image w7img v1 (pinned); v2 exists") {
			t.Errorf("plan lacks the pinned note for %s:\n%s", vm, r.Stdout)
		}
	}
	r = h.RunWatched(t, w, nil, 2, "plan", "--image-update", "w7img", dir)
	if n := strings.Count(r.Stdout, "because: image version changed: w7img v1 -> v2"); n != 2 || strings.Count(r.Stdout, "replace") < 2 {
		t.Errorf("plan --image-update: %d replace reasons:\n%s", n, r.Stdout)
	}
	r = h.RunWatched(t, w, nil, 2, "plan", "-o", "json", "--image-update", "w7img", dir)
	if strings.Count(r.Stdout, `"image version changed: w7img v1 -\u003e v2"`)+strings.Count(r.Stdout, `"image version changed: w7img v1 -> v2"`) != 2 {
		t.Errorf("plan -o json:\n%s", r.Stdout)
	}
	for _, vm := range []string{"imgvm-1", "imgvm-2"} {
		d, err := h.HV.GetDomain(ctx, vm)
		if err != nil || d.Metadata.ImageVersion != 1 {
			t.Errorf("%s moved before it was asked to: %+v %v", vm, d.Metadata, err)
		}
	}

	// Version 1 cannot be deleted while the clones use it.
	r = h.RunWatched(t, w, nil, 1, "image", "delete", dir, "w7img", "--version", "1")
	if !strings.Contains(r.Stderr, "in use by 2 VM(s): imgvm-1 (v1), imgvm-2 (v1)") {
		t.Errorf("delete in use:\n%s", r.Stderr)
	}
	if got := leftovers(t, h, "w7img"); len(got) != 4 {
		t.Errorf("after a refused delete: %v", got)
	}

	// Selected: the VMs move to v2; then v1 can go.
	h.RunWatched(t, w, secretEnv, 0, "apply", "--auto-approve", "--image-update", "w7img", dir)
	for _, vm := range []string{"imgvm-1", "imgvm-2"} {
		d, err := h.HV.GetDomain(ctx, vm)
		if err != nil || d.Metadata.ImageVersion != 2 {
			t.Errorf("%s after apply --image-update: %+v %v", vm, d.Metadata, err)
		}
	}
	h.RunWatched(t, w, nil, 0, "plan", dir) // pinned to v2 now: nothing to do
	h.RunWatched(t, w, nil, 0, "image", "delete", dir, "w7img", "--version", "1")
	vs = listImages(t, h, w, dir)
	if len(vs) != 1 || vs[0].Version != 2 || strings.Join(vs[0].UsedBy, ",") != "imgvm-1,imgvm-2" {
		t.Errorf("after deleting v1: %+v", vs)
	}

	// The keys and the password are in no output, no libvirt object and no
	// byte of any image or metadata volume.
	for _, name := range []string{"dumpxml imgvm-1", "dumpxml imgvm-2"} {
		f := strings.Fields(name)
		w.Add(name, h.MustVirsh(t, f[0], f[1]))
	}
	for _, v := range vs {
		for _, p := range []string{v.Path, filepath.Join(filepath.Dir(v.Path), v.MetaVolume)} {
			if f := fileHolds(t, p, key1, key2, pwVM); len(f) > 0 {
				t.Errorf("image file %s holds a secret: %v", p, f)
			}
		}
	}
	w.Check(t, key1, key2, pwVM)
	scanDirs(t, []string{key1, key2, pwVM}, h.PoolDir, h.LogDir, h.LockDir, dir)

	h.RunWatched(t, w, nil, 0, "destroy", "--auto-approve", dir)
	h.RunWatched(t, w, nil, 0, "image", "delete", dir, "w7img")
	if got := leftovers(t, h, "w7img"); len(got) != 0 {
		t.Errorf("left after destroy and image delete: %v", got)
	}
}

// TestImageBuildFailsCleanly: a step that never finishes makes the build
// time out in the steps phase, and a build killed with SIGKILL in that phase
// is cleaned up by the next command; neither registers anything nor leaves
// answer media behind.
func TestImageBuildFailsCleanly(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	w := e2eutil.NewSecretWatch()
	dir := imageProfile(t, h, "w7fail", `
  step "hangs" {
    command = "cmd /c rig-fail-step"
  }`, "")

	r := h.RunWatched(t, w, secretEnv, 1, "image", "build", "--timeout", "150s", dir, "w7fail")
	for _, want := range []string{"image w7fail: build failed in phase steps", "last lines of the guest's serial console:",
		"RIG step result=failed", "nothing was registered"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("failed build: %q missing:\n%s", want, r.Stderr)
		}
	}
	if got := leftovers(t, h, "w7fail"); len(got) != 0 {
		t.Errorf("a failed build left %v", got)
	}
	if vs := listImages(t, h, w, dir); len(vs) != 0 {
		t.Errorf("a failed build registered %+v", vs)
	}

	// SIGKILL in the steps phase.
	cmd, _, stderr := h.Start(t, secretEnv, "image", "build", dir, "w7fail")
	deadline := time.Now().Add(10 * time.Minute)
	for !strings.Contains(stderr.String(), "phase steps") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the build never reached the steps phase:\n%s", stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	w.Add("killed build (stderr)", stderr.String())
	left := leftovers(t, h, "w7fail")
	if !strings.Contains(strings.Join(left, ","), "domain lvm-build-w7fail") || !strings.Contains(strings.Join(left, ","), "lvm-build-w7fail-answer.iso") {
		t.Errorf("the killed build left %v (expected its domain and answer media until the next command)", left)
	}
	for _, l := range left {
		if strings.HasPrefix(l, "volume lvm-image-") {
			t.Errorf("a killed build registered (or began to register) %s", l)
		}
	}
	r = h.RunWatched(t, w, nil, 0, "image", "list", dir)
	if !strings.Contains(r.Stderr, "removed what an interrupted build left") || !strings.Contains(r.Stdout, "No image versions registered") {
		t.Errorf("image list after the kill:\n%s", r)
	}
	if got := leftovers(t, h, "w7fail"); len(got) != 0 {
		t.Errorf("after the clean-up: %v", got)
	}
	if ents, err := os.ReadDir(h.PoolDir); err == nil {
		for _, e := range ents {
			if strings.Contains(e.Name(), "answer") {
				t.Errorf("answer media left in the pool: %s", e.Name())
			}
		}
	}
	w.Check(t, key1, key2, pwVM)
	scanDirs(t, []string{key1, key2, pwVM}, h.PoolDir, h.LogDir, h.LockDir, dir)
}
