package profiles

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/license"
)

// Image builds and limits.
const (
	// MaxImageNameLen keeps "lvm-image-NAME-vNNN.meta.json" a short volume
	// name.
	MaxImageNameLen = 30
	// DefaultImageTimeout bounds an image build that sets no timeout.
	DefaultImageTimeout = 3 * time.Hour
	// MaxImageSteps bounds the steps of one image.
	MaxImageSteps = 100
)

// Image is a golden image that legacyvm builds from the user's own Windows
// 7 media (image build), registers as versioned read-only volumes and that
// vm disks clone by reference (disk { image = image.NAME }).
type Image struct {
	Name   string
	Source ImageSource
	// Media are extra ISO files or directories (made into ISOs at build
	// time) attached as CD-ROMs during the build, in order.
	Media []ImageMedia
	// Steps run in order at the build's automatic logon, before
	// generalize.
	Steps []*ImageStep
	// Pool is the storage pool the image versions are registered in
	// (default: the host's storage_pool).
	Pool string
	// SizeBytes is the system disk size of the image (default 40 GiB).
	SizeBytes uint64
	// MemoryBytes of the build VM (default: the OS preset's).
	MemoryBytes uint64
	// Timeout bounds the whole build (default DefaultImageTimeout).
	Timeout time.Duration
	// SkipRearm generalizes with SkipRearm=1 (see docs/images.md).
	SkipRearm bool
	// Host is where the image is built and registered (the profile's only
	// host, or the implicit local host).
	Host      *Host
	DeclRange hcl.Range
}

// OS is the guest preset of the image (from Source.Arch).
func (im *Image) OS() OS {
	if im.Source.Arch == "x86" {
		return OSWin7x86
	}
	return OSWin7x64
}

// ImageSource is the user's Windows 7 installation media.
type ImageSource struct {
	ISO      string // absolute path
	ISORange hcl.Range
	// SHA256 is the expected checksum of the ISO (lower-case hex); build
	// and plan compare it.
	SHA256      string
	SHA256Range hcl.Range
	Edition     license.Edition
	// Arch is "x64" or "x86".
	Arch       string
	ImageIndex int // 0 = select by edition name
	DeclRange  hcl.Range
}

// ImageMedia is one extra medium.
type ImageMedia struct {
	Path  string // absolute
	Range hcl.Range
}

// ImageStep is one command run before generalize.
type ImageStep struct {
	Name      string
	Command   string
	DeclRange hcl.Range
}

// Image version selection on a disk (Disk.ImageVersion).
const (
	// ImageVersionPinned (the default): a VM keeps the version it was
	// cloned from; new VMs get the newest.
	ImageVersionPinned = ""
	// ImageVersionLatest: every VM uses the newest version; VMs on an
	// older one are replaced.
	ImageVersionLatest = "latest"
)

type imageBlock struct {
	Name      string              `hcl:"name,label"`
	NameRange hcl.Range           `hcl:"name,label_range"`
	Sources   []*imageSourceBlock `hcl:"source,block"`
	Media     hcl.Expression      `hcl:"media,optional"`
	Steps     []*imageStepBlock   `hcl:"step,block"`
	Pool      hcl.Expression      `hcl:"pool,optional"`
	Size      hcl.Expression      `hcl:"size,optional"`
	Memory    hcl.Expression      `hcl:"memory,optional"`
	Timeout   hcl.Expression      `hcl:"timeout,optional"`
	SkipRearm hcl.Expression      `hcl:"skip_rearm,optional"`
	DefRange  hcl.Range           `hcl:",def_range"`
}

type imageSourceBlock struct {
	ISO        hcl.Expression `hcl:"iso,optional"`
	SHA256     hcl.Expression `hcl:"sha256,optional"`
	Edition    hcl.Expression `hcl:"edition,optional"`
	Arch       hcl.Expression `hcl:"arch,optional"`
	ImageIndex hcl.Expression `hcl:"image_index,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type imageStepBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Command   hcl.Expression `hcl:"command,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

func (l *loader) decodeImage(b *imageBlock) {
	if !l.declare("image", b.Name, b.NameRange, b.DefRange) {
		return
	}
	l.checkName("image", b.Name, b.NameRange, MaxImageNameLen, " (the image's volumes are named lvm-image-NAME-vN)")
	im := &Image{Name: b.Name, SizeBytes: DefaultInstallDiskBytes, Timeout: DefaultImageTimeout, DeclRange: b.DefRange}
	l.images[b.Name] = im
	ctx, sc := l.baseCtx, scopeBlock

	switch {
	case len(b.Sources) == 0:
		l.errorf(b.DefRange, "Missing source block", "An image needs a source block naming your Windows 7 installation ISO, for example:\n  source {\n    iso     = \"/srv/iso/win7-sp1-x64.iso\"\n    sha256  = \"...\"\n    edition = \"professional\"\n    arch    = \"x64\"\n  }")
	default:
		for _, extra := range b.Sources[1:] {
			l.errorf(extra.DefRange, "Duplicate source block", "An image has one source block, already declared at %s.", at(b.Sources[0].DefRange))
		}
		l.decodeImageSource(im, b.Sources[0])
	}
	if present(b.Media) {
		if elems, diags := hcl.ExprList(b.Media); !diags.HasErrors() {
			for _, e := range elems {
				if s, ok := l.str(e, ctx, sc, "media element"); ok {
					if p, ok := l.checkPath(e, "media element", s); ok {
						im.Media = append(im.Media, ImageMedia{Path: p, Range: e.Range()})
					}
				}
			}
		} else {
			for _, s := range l.stringList(b.Media, ctx, sc, "media") {
				if p, ok := l.checkPath(b.Media, "media element", s); ok {
					im.Media = append(im.Media, ImageMedia{Path: p, Range: b.Media.Range()})
				}
			}
		}
	}
	seen := map[string]hcl.Range{}
	for _, sb := range b.Steps {
		if first, ok := seen[sb.Name]; ok {
			l.errorf(sb.NameRange, "Duplicate step block", "A step named %q was already declared at %s in this image; step names must be unique.", sb.Name, at(first))
			continue
		}
		seen[sb.Name] = sb.DefRange
		st := &ImageStep{Name: sb.Name, DeclRange: sb.DefRange}
		if l.required(sb.Command, sb.DefRange, "step", "command", `command = "cmd /c pnputil -i -a D:\\viostor\\w7\\amd64\\*.inf"`) {
			if s, ok := l.str(sb.Command, ctx, sc, "command"); ok {
				switch {
				case strings.TrimSpace(s) == "":
					l.errorf(sb.Command.Range(), "Empty command", "command is the Windows command line the step runs at the build's logon, like command = \"cmd /c echo ok\".")
				case len(s) > 1024 || strings.ContainsAny(s, "\r\n\x00"):
					l.errorf(sb.Command.Range(), "Invalid command", "command must be one line of at most 1024 characters; put longer scripts on a media directory and call them.")
				default:
					st.Command = s
				}
			}
		}
		im.Steps = append(im.Steps, st)
	}
	if len(im.Steps) > MaxImageSteps {
		l.errorf(b.DefRange, "Too many steps", "An image has at most %d steps; combine commands into a script on a media directory.", MaxImageSteps)
	}
	if s, ok := l.str(b.Pool, ctx, sc, "pool"); ok {
		if s == "" || strings.ContainsAny(s, "/ \t\n") {
			l.errorf(b.Pool.Range(), "Invalid pool name", "pool is the name of a libvirt storage pool, like pool = \"default\".")
		} else {
			im.Pool = s
		}
	}
	if n, ok := l.size(b.Size, ctx, sc, "size"); ok {
		if n < gib {
			l.errorf(b.Size.Range(), "Disk too small", "size must be at least 1 GiB, like size = \"40GiB\".")
		} else {
			im.SizeBytes = n
		}
	}
	if n, ok := l.size(b.Memory, ctx, sc, "memory"); ok {
		if n < 256<<20 {
			l.errorf(b.Memory.Range(), "Memory too small", "memory of the build VM must be at least 256 MiB, like memory = \"2GiB\".")
		} else {
			im.MemoryBytes = n
		}
	}
	if s, ok := l.str(b.Timeout, ctx, sc, "timeout"); ok {
		if t, err := ParseDuration(s); err != nil {
			l.errorf(b.Timeout.Range(), "Invalid duration", "timeout: %s.", err)
		} else if t < 10*time.Second {
			l.errorf(b.Timeout.Range(), "Timeout too short", "A build installs Windows 7 and runs sysprep; use timeout = \"3h\" or similar.")
		} else {
			im.Timeout = t
		}
	}
	if v, ok := l.boolean(b.SkipRearm, ctx, sc, "skip_rearm"); ok {
		im.SkipRearm = v
	}
}

func (l *loader) decodeImageSource(im *Image, b *imageSourceBlock) {
	ctx, sc := l.baseCtx, scopeBlock
	src := &im.Source
	src.DeclRange = b.DefRange
	if l.required(b.ISO, b.DefRange, "source", "iso", `iso = "/srv/iso/win7-sp1-x64.iso"`) {
		if s, ok := l.str(b.ISO, ctx, sc, "iso"); ok {
			if p, ok := l.checkPath(b.ISO, "iso", s); ok {
				src.ISO, src.ISORange = p, b.ISO.Range()
			}
		}
	}
	if l.required(b.SHA256, b.DefRange, "source", "sha256", `sha256 = "<64 hex digits: sha256sum of your ISO>"`) {
		if s, ok := l.str(b.SHA256, ctx, sc, "sha256"); ok {
			s = strings.ToLower(strings.TrimSpace(s))
			if _, err := hex.DecodeString(s); err != nil || len(s) != 64 {
				l.errorf(b.SHA256.Range(), "Invalid sha256", "sha256 is the SHA-256 checksum of the ISO as sha256sum prints it: 64 hexadecimal digits. Run sha256sum on your ISO and copy the first column.")
			} else {
				src.SHA256, src.SHA256Range = s, b.SHA256.Range()
			}
		}
	}
	if l.required(b.Edition, b.DefRange, "source", "edition", `edition = "professional"`) {
		if s, ok := l.enum(b.Edition, ctx, sc, "edition", editionNames()); ok {
			src.Edition = license.Edition(s)
		}
	}
	src.Arch = "x64"
	if s, ok := l.enum(b.Arch, ctx, sc, "arch", []string{"x64", "x86"}); ok {
		src.Arch = s
	}
	if n, ok := l.integer(b.ImageIndex, ctx, sc, "image_index", "image_index = 4"); ok {
		if n < 1 {
			l.errorf(b.ImageIndex.Range(), "Invalid image_index", "image_index is the 1-based index of the image in the ISO's sources/install.wim; it must be at least 1.")
		} else {
			src.ImageIndex = n
		}
	}
	if (src.Edition == license.EditionStarter || src.Edition == license.EditionHomeBasic) && src.Arch == "x64" {
		l.errorf(b.Arch.Range(), "Edition has no x64 media", "Windows 7 %s was published for 32-bit only: set arch = \"x86\".", src.Edition)
	}
}

// ParseImageVersion parses a disk's image_version: "" (pinned), "latest",
// or a version number ("3", also "v3").
func ParseImageVersion(s string) (latest bool, n int, err error) {
	switch s = strings.TrimSpace(s); s {
	case ImageVersionPinned:
		return false, 0, nil
	case ImageVersionLatest:
		return true, 0, nil
	}
	n, err = strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || n < 1 {
		return false, 0, fmt.Errorf("%q is neither \"latest\" nor a version number (1, 2, ...)", s)
	}
	return false, n, nil
}

// imageHost is the host an image is built and registered on: the host of
// the VMs that clone it (they must agree), else the only declared host,
// else the implicit local host.
func (l *loader) imageHost(im *Image, vms []*VM) *Host {
	var h *Host
	var first *VM
	for _, vm := range vms {
		if vm.Disk == nil || vm.Disk.ImageRef != im || vm.Host == nil {
			continue
		}
		if h == nil {
			h, first = vm.Host, vm
			continue
		}
		if vm.Host != h {
			l.errorf(vm.Disk.DeclRange, "Image used on two hosts", "Image %q is built and registered on one host, but vm %q (at %s) runs on host %q and vm %q on host %q. Declare one image block per host.",
				im.Name, first.Name, at(first.DeclRange), h.Name, vm.Name, vm.Host.Name)
			return h
		}
	}
	if h != nil {
		return h
	}
	if len(l.hosts) == 1 {
		for _, only := range l.hosts {
			return only
		}
	}
	if len(l.hosts) > 1 {
		l.errorf(im.DeclRange, "Image without a host", "The profile declares several hosts and no vm clones image %q, so legacyvm cannot tell where to build it. Use it in a vm block (its host is the image's host), or keep images in a profile with one host.", im.Name)
		return nil
	}
	return l.implicitHost()
}
