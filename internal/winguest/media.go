package winguest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// File is one file at the root of answer media.
type File struct {
	// Name is the file name, kept exactly (case included) through Joliet:
	// letters, digits, '.', '_' and '-', at most 64 characters.
	Name string
	// Data must not be empty: go-diskfs v1.9.4 writes a Joliet tree that
	// no reader can list when an image holds an empty file.
	Data []byte
}

// DefaultVolumeLabel is the label of answer media when none is given.
const DefaultVolumeLabel = "LEGACYVM_ANSWERS"

const isoBlockSize = 2048

// stagedHook, when set (tests), is called with the private temporary
// directory once the files and the image file exist in it.
var stagedHook func(dir string)

var (
	mediaNameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	volumeNameRE = regexp.MustCompile(`^[A-Z0-9_]{1,16}$`)
)

// AnswerISO builds an ISO9660 image with Joliet extensions holding files at
// its root, for a second CD-ROM that Windows Setup searches for
// Autounattend.xml / Unattend.xml (Joliet keeps the long, mixed-case names).
// volumeLabel is 1 to 16 characters A-Z, 0-9 and '_' (DefaultVolumeLabel
// when empty; 16 is what the Joliet descriptor holds). The image is returned in memory (answer media are a few
// kilobytes); upload it with bytes.NewReader(img), int64(len(img)).
//
// The files hold secrets. The library stages them on disk while building:
// in a private temporary directory (0700, files 0600 at most), removed
// before AnswerISO returns, whatever happens.
func AnswerISO(files []File, volumeLabel string) (img []byte, err error) {
	if volumeLabel == "" {
		volumeLabel = DefaultVolumeLabel
	}
	if err := validateMedia(files, volumeLabel); err != nil {
		return nil, err
	}
	// Media an earlier process was killed while staging are removed
	// first (best effort: a failure here does not stop this build).
	_, _ = CleanStaleStaging(time.Now())
	dir, err := newStagingDir()
	if err != nil {
		return nil, fmt.Errorf("answer media: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			img, err = nil, fmt.Errorf("answer media: remove temporary files: %w", rerr)
		}
	}()
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("answer media: %w", err)
	}
	workspace := filepath.Join(dir, "files")
	if err := os.Mkdir(workspace, 0o700); err != nil {
		return nil, fmt.Errorf("answer media: %w", err)
	}
	// Stage the files ourselves with private modes (the library would
	// create them 0644).
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(workspace, f.Name), f.Data, 0o600); err != nil {
			return nil, fmt.Errorf("answer media: stage %s: %w", f.Name, err)
		}
	}
	isoPath := filepath.Join(dir, "answer.iso")
	out, err := os.OpenFile(isoPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("answer media: %w", err)
	}
	defer out.Close()

	if stagedHook != nil {
		stagedHook(dir)
	}
	fsys, err := iso9660.Create(file.New(out, false), 0, 0, isoBlockSize, workspace)
	if err != nil {
		return nil, fmt.Errorf("answer media: create ISO9660 file system: %w", err)
	}
	// ECMA-119 pads identifiers with spaces; the library would pad with
	// NULs.
	padded := volumeLabel + strings.Repeat(" ", 32-len(volumeLabel))
	if err := fsys.Finalize(iso9660.FinalizeOptions{Joliet: true, VolumeIdentifier: padded}); err != nil {
		return nil, fmt.Errorf("answer media: write ISO9660 image: %w", err)
	}
	// The primary volume descriptor (block 16) records the image size in
	// blocks at byte 80 (little-endian half of a both-endian field).
	var pvd [isoBlockSize]byte
	if _, err := out.ReadAt(pvd[:], 16*isoBlockSize); err != nil {
		return nil, fmt.Errorf("answer media: read back volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return nil, errors.New("answer media: written image has no primary volume descriptor")
	}
	size := int64(binary.LittleEndian.Uint32(pvd[80:84])) * isoBlockSize
	img = make([]byte, size)
	if _, err := out.ReadAt(img, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("answer media: read back image: %w", err)
	}
	return img, nil
}

func validateMedia(files []File, label string) error {
	if !volumeNameRE.MatchString(label) {
		return fmt.Errorf("answer media: volume label %q: use 1 to 16 characters A-Z, 0-9 and _", label)
	}
	if len(files) == 0 {
		return errors.New("answer media: no files")
	}
	seen := map[string]bool{}
	for _, f := range files {
		if !mediaNameRE.MatchString(f.Name) || strings.Trim(f.Name, ".") == "" {
			return fmt.Errorf("answer media: file name %q: use 1 to 64 characters A-Z, a-z, 0-9, '.', '_' and '-'", f.Name)
		}
		if len(f.Data) == 0 {
			return fmt.Errorf("answer media: file %s is empty (empty files break the Joliet tree go-diskfs writes)", f.Name)
		}
		k := strings.ToLower(f.Name)
		if seen[k] {
			return fmt.Errorf("answer media: file name %q appears twice (names are compared without case)", f.Name)
		}
		seen[k] = true
	}
	return nil
}

// DirISO writes the directory tree src as an ISO9660 image with Joliet
// names to dst (created, mode 0600), for media the user gives as a
// directory (drivers, the guest agent, update packages). The tree is
// copied to a private staging directory first, so src is only read. Empty
// files are refused (go-diskfs writes an unreadable Joliet tree with
// them), and so are symbolic links that leave src.
func DirISO(dst, src, volumeLabel string) (err error) {
	if !volumeNameRE.MatchString(volumeLabel) {
		return fmt.Errorf("media ISO: volume label %q: use 1 to 16 characters A-Z, 0-9 and _", volumeLabel)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("media ISO: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("media ISO: %s is not a directory", src)
	}
	stage, err := os.MkdirTemp(filepath.Dir(dst), ".legacyvm-media-")
	if err != nil {
		return fmt.Errorf("media ISO: %w", err)
	}
	defer os.RemoveAll(stage)
	files := 0
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(stage, rel)
		info, err := os.Stat(p) // follows links
		if err != nil {
			return err
		}
		if d.Type()&os.ModeSymlink != 0 {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return err
			}
			if r, err := filepath.Rel(src, real); err != nil || strings.HasPrefix(r, "..") {
				return fmt.Errorf("%s links outside the directory", p)
			}
		}
		switch {
		case info.IsDir():
			return os.MkdirAll(target, 0o700)
		case !info.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		case info.Size() == 0:
			return fmt.Errorf("%s is empty; remove it or give it content (empty files break the ISO's Joliet tree)", p)
		}
		files++
		return copyRegular(p, target)
	})
	if err != nil {
		return fmt.Errorf("media ISO from %s: %w", src, err)
	}
	if files == 0 {
		return fmt.Errorf("media ISO from %s: the directory holds no files", src)
	}
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("media ISO: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("media ISO: %w", cerr)
		}
	}()
	fsys, err := iso9660.Create(file.New(out, false), 0, 0, isoBlockSize, stage)
	if err != nil {
		return fmt.Errorf("media ISO: create ISO9660 file system: %w", err)
	}
	padded := volumeLabel + strings.Repeat(" ", 32-len(volumeLabel))
	if err := fsys.Finalize(iso9660.FinalizeOptions{Joliet: true, VolumeIdentifier: padded}); err != nil {
		return fmt.Errorf("media ISO: write ISO9660 image: %w", err)
	}
	return nil
}

func copyRegular(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
