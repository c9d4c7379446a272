package orchestrator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// imageOnHost is where a golden image lives on a host, when that is not the
// path the profile gives (it was, or will be, uploaded there).
type imageOnHost struct {
	Path   string
	Format string
}

// imageUpload is a golden image that apply uploads from this machine into
// the host's storage pool before cloning it there.
type imageUpload struct {
	// Source is the image path in the profile, read on this machine.
	Source string
	Pool   string
	Name   string
	Size   int64
	// Format is what the file's content says ("qcow2" or "raw").
	Format string
}

// UploadedImageName is the volume name a golden image gets on a host it
// was uploaded to: the file name, after a short hash of the full path (two
// images with the same file name in different directories stay apart).
func UploadedImageName(path string) string {
	return namePrefix + "golden-" + hashOf(path)[:8] + "-" + filepath.Base(path)
}

// planImages decides, for a remote host, where each golden image the part
// clones comes from: the path itself when libvirt knows it there, an image
// uploaded earlier (UploadedImageName in the host's pool), or an upload
// from this machine. A local host (unix socket) sees the same files as
// this machine and keeps the existing behaviour (a pool for the image's
// directory). An image that is neither on the host nor readable here is a
// diagnostic at the vm's disk block. It reads the files observeHost
// observed (pure).
func planImages(p *profiles.Profile, uri string, o *observation, poolName, poolPath string) (map[string]imageOnHost, []imageUpload, hcl.Diagnostics) {
	if isLocalURI(uri) {
		return nil, nil, nil
	}
	var (
		diags   hcl.Diagnostics
		uploads []imageUpload
	)
	images := map[string]imageOnHost{}
	for _, in := range p.Instances {
		d := in.VM.Disk
		if d == nil || d.Install != nil || d.Image == "" {
			continue
		}
		if _, done := images[d.Image]; done {
			continue
		}
		if _, ok := o.Images[d.Image]; ok {
			continue
		}
		name := UploadedImageName(d.Image)
		if v, ok := o.Volumes[name]; ok {
			images[d.Image] = imageOnHost{Path: v.Path, Format: v.Format}
			continue
		}
		f := o.file(d.Image)
		err := f.openErr
		if err == nil {
			err = f.statErr
		}
		if err == nil && (!f.mode.IsRegular() || f.size == 0) {
			err = errors.New("not a non-empty regular file")
		}
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Golden image missing on the host",
				Detail: fmt.Sprintf("The host %s has no %s, and legacyvm cannot upload it from this machine (%v). Put the image at that path on this machine (apply uploads it, once per host), or copy it into storage pool %q on the host as %s.",
					uri, d.Image, err, poolName, name),
				Subject: d.DeclRange.Ptr()})
			images[d.Image] = imageOnHost{Path: d.Image}
			continue
		}
		format := "raw"
		if bytes.HasPrefix(f.head, qcow2Magic) {
			format = "qcow2"
		}
		images[d.Image] = imageOnHost{Path: filepath.Join(poolPath, name), Format: format}
		uploads = append(uploads, imageUpload{Source: d.Image, Pool: poolName, Name: name, Size: f.size, Format: format})
	}
	sort.Slice(uploads, func(i, j int) bool { return uploads[i].Name < uploads[j].Name })
	return images, uploads, diags
}

// uploadChanges are the plan's image uploads.
func uploadChanges(t hostTarget) []Change {
	var out []Change
	for i := range t.Uploads {
		u := t.Uploads[i]
		out = append(out, Change{Kind: KindImage, Name: u.Name, Action: ActionCreate,
			Reasons: []Reason{{Code: ReasonImageNotOnHost, Subject: u.Source}},
			Details: []string{fmt.Sprintf("upload %s (%s, %s, sparse) into storage pool %s; SHA-256 checked on arrival", u.Source, u.Format, humanBytes(uint64(u.Size)), u.Pool)},
			upload:  &u})
	}
	return out
}

// fileSHA256 hashes a local file.
func fileSHA256(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// uploadImage uploads a golden image and checks that it arrived intact:
// the volume is read back through a download stream and its SHA-256
// compared with the local file's. A mismatch deletes the volume.
func (e *engine) uploadImage(ctx context.Context, u *imageUpload) error {
	want, err := fileSHA256(ctx, u.Source)
	if err != nil {
		return fmt.Errorf("hash %s: %w", u.Source, err)
	}
	e.begin(event.KindImage, u.Name, event.StepUpload, "uploading %s (%s)", u.Source, humanBytes(uint64(u.Size)))
	last := -1
	_, err = e.HV.UploadFile(ctx, virt.VolumeSpec{Pool: u.Pool, Name: u.Name, Mode: 0o644}, u.Source, func(done, total int64) {
		if total <= 0 {
			return
		}
		pct := int(done * 100 / total)
		if pct/10 != last/10 {
			last = pct
			e.emit(event.Event{Kind: event.KindImage, Object: u.Name, Step: event.StepUpload, Phase: event.Progress, Current: done, Total: total,
				Message: fmt.Sprintf("uploading %s: %d%% (%s of %s)", filepath.Base(u.Source), pct, humanBytes(uint64(done)), humanBytes(uint64(total)))})
		}
	})
	if errors.Is(err, virt.ErrExists) {
		// Uploaded meanwhile (another apply of a profile with the same
		// image): keep it if it is the same content.
		got, serr := e.HV.VolumeSHA256(ctx, u.Pool, u.Name)
		if serr == nil && got == want {
			e.stepDone(event.KindImage, u.Name, event.StepUpload, 0, "already uploaded by another command; SHA-256 %s matches", want[:16])
			return nil
		}
		return fmt.Errorf("upload %s: volume %s appeared meanwhile with other content: %w", u.Source, u.Name, err)
	}
	if err != nil {
		return err
	}
	e.begin(event.KindImage, u.Name, event.StepChecksum, "checking the SHA-256 of the uploaded image")
	got, err := e.HV.VolumeSHA256(ctx, u.Pool, u.Name)
	if err == nil && got != want {
		err = fmt.Errorf("checksum mismatch after upload: the host has SHA-256 %s, %s has %s", got, u.Source, want)
	}
	if err != nil {
		if derr := e.HV.DeleteVolume(context.WithoutCancel(ctx), u.Pool, u.Name); derr != nil {
			err = fmt.Errorf("%w (and deleting the damaged volume failed: %v)", err, derr)
		}
		return fmt.Errorf("verify upload of %s: %w", u.Source, err)
	}
	e.stepDone(event.KindImage, u.Name, event.StepChecksum, 0, "SHA-256 %s verified", want[:16])
	return nil
}
