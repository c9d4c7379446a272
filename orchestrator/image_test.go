package orchestrator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/fake"
)

const imageProfile = `
image "w7t" {
  source {
    iso     = "%ISO%"
    sha256  = "%SUM%"
    edition = "professional"
  }
  step "one" {
    command = "cmd /c echo one"
  }
  size    = "2GiB"
  timeout = "1m"
}
vm "c" {
  count  = 2
  os     = "win7-x64"
  memory = "2GiB"
  disk {
    image   = image.w7t
    prepare = "none"
  }
}
`

// fakeGuest plays the build VM's Windows: once the build domain runs it
// checks it has no network interface, writes the given serial lines and
// powers the guest off.
func fakeGuest(t *testing.T, h *fake.Hypervisor, logDir string, lines ...string) chan error {
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			d, err := h.GetDomain(ctx, buildDomainName("w7t"))
			if err == nil && d.State == virt.StateRunning {
				if len(d.Interfaces) != 0 {
					done <- errors.New("the build domain has a network interface")
					return
				}
				if d.Metadata == nil || d.Metadata.ImageBuild != "w7t" || d.Metadata.License != nil {
					done <- errors.New("the build domain is not marked as an image build")
					return
				}
				log := filepath.Join(logDir, buildDomainName("w7t")+".serial.log")
				if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
					done <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
				done <- h.GuestPowerOff(d.Name)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		done <- errors.New("the build domain never ran")
	}()
	return done
}

func TestBuildImageRegistersAndVersions(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	iso := filepath.Join(t.TempDir(), "win7.iso")
	if err := os.WriteFile(iso, []byte("not really windows"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.PutFile(iso, "raw", 18) // what libvirt sees of it
	sum := sha256.Sum256([]byte("not really windows"))
	p := loadProfile(t, "img", imageProfile, "%ISO%", iso, "%SUM%", hex.EncodeToString(sum[:]))
	im := p.Images[0]
	logDir := t.TempDir()
	e := &engine{HV: h, PollInterval: time.Millisecond}
	opts := BuildOptions{Profile: p.Name, URI: "", Accel: virt.AccelTCG, SerialLogDir: logDir, LegacyvmVersion: "test"}
	good := []string{"RIG boot", "LEGACYVM phase media count=0", "LEGACYVM phase steps count=1", "LEGACYVM phase generalize"}

	build := func(lines ...string) (*ImageVersion, error) {
		t.Helper()
		g := fakeGuest(t, h, logDir, lines...)
		v, err := e.BuildImage(ctx, im, opts)
		if gerr := <-g; gerr != nil {
			t.Fatal(gerr, err)
		}
		return v, err
	}
	v1, err := build(good...)
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(logDir, buildDomainName("w7t")+".serial.log"))
		t.Fatalf("%v\nserial log: %q", err, b)
	}
	if v1.Version != 1 || v1.Mode != "0444" || v1.Meta.SourceSHA256 != hex.EncodeToString(sum[:]) || !v1.Meta.Generalized || v1.Meta.LegacyvmVersion != "test" {
		t.Errorf("v1 = %+v", v1)
	}
	inv, err := listImages(ctx, h, "default", "w7t")
	if err != nil || len(inv.Versions) != 1 || len(inv.Leftovers) != 0 || len(inv.Building) != 0 {
		t.Fatalf("inventory %+v %v", inv, err)
	}
	var meta bytes.Buffer
	if _, err := h.DownloadVolume(ctx, "default", imageMetaName("w7t", 1), &meta, 0); err != nil || !strings.Contains(meta.String(), `"content_sha256"`) {
		t.Errorf("metadata volume: %v %s", err, meta.String())
	}
	vols, _ := h.ListVolumes(ctx, "default")
	for _, v := range vols {
		if strings.HasPrefix(v.Name, "lvm-build-") {
			t.Errorf("build volume left: %s", v.Name)
		}
		if strings.HasPrefix(v.Name, "lvm-image-") && v.Mode != 0o444 {
			t.Errorf("%s mode %o", v.Name, v.Mode)
		}
	}
	if _, err := h.GetDomain(ctx, buildDomainName("w7t")); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("build domain left: %v", err)
	}

	// Clones record the version; a rebuild keeps them pinned with a note.
	hp := plan(t, p, h)
	apply(t, hp)
	for _, vm := range []string{"c-1", "c-2"} {
		d, _ := h.GetDomain(ctx, vm)
		if d.Metadata.ImageName != "w7t" || d.Metadata.ImageVersion != 1 || d.Metadata.Image != v1.Path {
			t.Errorf("%s metadata %+v", vm, d.Metadata)
		}
	}
	if _, err := build(good...); err != nil {
		t.Fatal(err)
	}
	hp = plan(t, p, h)
	if hp.Plan.HasChanges() || len(hp.Plan.Notes) != 2 || !strings.Contains(hp.Plan.Notes[0], "c-1 stays on image w7t v1 (pinned); v2 exists") {
		t.Errorf("pinned plan: changes %v notes %q", hp.Plan.HasChanges(), hp.Plan.Notes)
	}
	hps, diags, err := planProfile(ctx, p, connector(h), Options{DefaultURI: "test:///fake", ImageUpdates: []string{"w7t"}})
	if err != nil || diags.HasErrors() {
		t.Fatal(err, diags)
	}
	for _, c := range hps[0].Plan.Changes {
		if c.Kind == KindVM && (c.Action != ActionReplace || strings.Join(reasonStrings(c.Reasons), ";") != "image version changed: w7t v1 -> v2") {
			t.Errorf("%s: %s %q", c.Name, c.Action, c.Reasons)
		}
	}

	// v1 is in use.
	_, err = e.DeleteImage(ctx, "default", "w7t", 1)
	var inUse *imageInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, virt.ErrInUse) || strings.Join(inUse.VMs, ",") != "c-1 (v1),c-2 (v1)" {
		t.Errorf("delete in use: %v", err)
	}

	// A guest that powers off before generalize: nothing registered.
	_, err = build("RIG boot", "LEGACYVM phase media count=0", "LEGACYVM phase steps count=1", "RIG step result=failed")
	var be *buildError
	if !errors.As(err, &be) || be.Phase != "steps" || !strings.Contains(err.Error(), "RIG step result=failed") || !strings.Contains(err.Error(), "before it reported the generalize phase") {
		t.Errorf("failed build: %v", err)
	}
	inv, _ = listImages(ctx, h, "default", "w7t")
	if len(inv.Versions) != 2 || len(inv.Leftovers) != 0 {
		t.Errorf("after a failed build: %+v", inv)
	}

	// A wrong checksum stops the build before anything is made.
	bad := *im
	bad.Source.SHA256 = strings.Repeat("0", 64)
	if _, err := e.BuildImage(ctx, &bad, opts); err == nil || !strings.Contains(err.Error(), "phase prepare") || !strings.Contains(err.Error(), "has SHA-256") {
		t.Errorf("bad checksum: %v", err)
	}

	// What a killed build leaves is cleaned up; registered versions stay.
	if _, err := h.UploadVolume(ctx, virt.VolumeSpec{Pool: "default", Name: imageVolumeName("w7t", 3), Format: "raw"}, strings.NewReader("half"), 4); err != nil {
		t.Fatal(err)
	}
	done, err := e.CleanImageLeftovers(ctx, "default", "w7t")
	if err != nil || len(done) != 1 || !strings.Contains(done[0], "lvm-image-w7t-v3.qcow2") {
		t.Errorf("clean-up: %q %v", done, err)
	}
	inv, _ = listImages(ctx, h, "default", "w7t")
	if len(inv.Versions) != 2 || len(inv.Leftovers) != 0 {
		t.Errorf("after clean-up: %+v", inv)
	}
}

// TestBuildImageInterrupted: a cancelled build (Ctrl-C) removes its domain
// and volumes and registers nothing.
func TestBuildImageInterrupted(t *testing.T) {
	h := newFakeHost(t)
	iso := filepath.Join(t.TempDir(), "win7.iso")
	if err := os.WriteFile(iso, []byte("iso"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.PutFile(iso, "raw", 3)
	sum := sha256.Sum256([]byte("iso"))
	p := loadProfile(t, "img", imageProfile, "%ISO%", iso, "%SUM%", hex.EncodeToString(sum[:]))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if d, err := h.GetDomain(context.Background(), buildDomainName("w7t")); err == nil && d.State == virt.StateRunning {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	e := &engine{HV: h, PollInterval: time.Millisecond}
	_, err := e.BuildImage(ctx, p.Images[0], BuildOptions{Profile: p.Name, Accel: virt.AccelTCG, SerialLogDir: t.TempDir()})
	var be *buildError
	if !errors.As(err, &be) || be.Phase != phaseSetup || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted build: %v", err)
	}
	if _, err := h.GetDomain(context.Background(), buildDomainName("w7t")); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("build domain left: %v", err)
	}
	vols, _ := h.ListVolumes(context.Background(), "default")
	for _, v := range vols {
		if strings.HasPrefix(v.Name, "lvm-") {
			t.Errorf("volume left: %s", v.Name)
		}
	}
}

func TestPlanImageDiagnostics(t *testing.T) {
	h := newFakeHost(t)
	p := loadProfile(t, "img", strings.Replace(imageProfile, "prepare = \"none\"", "prepare = \"none\"\n    image_version = \"3\"", 1),
		"%ISO%", "/nonexistent/win7.iso", "%SUM%", strings.Repeat("a", 64))
	_, diags, err := planProfile(context.Background(), p, connector(h), Options{DefaultURI: "test:///fake", ImageUpdates: []string{"nosuch"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary)
		if d.Summary == "Image not built yet" && (d.Subject == nil || !strings.Contains(d.Detail, "legacyvm image build")) {
			t.Errorf("not located or no advice: %+v", d)
		}
	}
	want := "Image not built yet|Unknown image in --image-update|Image source: Installation ISO not found"
	if strings.Join(got, "|") != want {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
}

func TestCleanStaleMediaISOs(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "legacyvm-media-w7t-999999999-1.iso")
	mine := filepath.Join(dir, fmt.Sprintf("legacyvm-media-w7t-%d-1.iso", os.Getpid()))
	other := filepath.Join(dir, "legacyvm-media-other-999999999-1.iso")
	for _, f := range []string{dead, mine, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := cleanStaleMediaISOs(dir, "w7t")
	if len(got) != 1 || got[0] != filepath.Base(dead) {
		t.Errorf("removed %v", got)
	}
	for _, f := range []string{mine, other} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s removed: %v", f, err)
		}
	}
}
