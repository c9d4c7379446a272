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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/imagemeta"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/winguest"
	"github.com/legacyvm/legacyvm/profiles"
)

// Golden images that legacyvm builds (image blocks) live in libvirt alone:
// version N of image NAME is two read-only volumes (mode 0444) in the
// image's pool, the disk lvm-image-NAME-vN.qcow2 and its metadata
// lvm-image-NAME-vN.meta.json (imagemeta.Meta as JSON, written and read through
// the storage API). A version is registered when both exist and the
// metadata parses and names it; anything else under those names is what an
// interrupted build left and is removed by the next image command. The
// metadata volume is written last, so a build that dies earlier never
// leaves a registered image.

// maxImageMetaBytes bounds what is read of a metadata volume.
const maxImageMetaBytes = 64 << 10

// imageVolumeName is the disk volume of an image version.
func imageVolumeName(image string, version int) string {
	return fmt.Sprintf("%simage-%s-v%d.qcow2", namePrefix, image, version)
}

// imageMetaName is the metadata volume of an image version.
func imageMetaName(image string, version int) string {
	return fmt.Sprintf("%simage-%s-v%d.meta.json", namePrefix, image, version)
}

// buildDomainName is the temporary domain an image build runs in.
func buildDomainName(image string) string { return namePrefix + "build-" + image }

func buildVolumeName(image, role string) string { return namePrefix + "build-" + image + "-" + role }

var imageVolRE = regexp.MustCompile(`^lvm-image-([a-z][a-z0-9-]*)-v([1-9][0-9]*)\.(qcow2|meta\.json)$`)

// ImageVersion is a registered image version.
type ImageVersion struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Pool    string `json:"pool"`
	Volume  string `json:"volume"`
	Path    string `json:"path"`
	// Mode is the disk volume's file mode, "0444" for every image legacyvm
	// registered.
	Mode       string         `json:"mode"`
	MetaVolume string         `json:"meta_volume"`
	Meta       imagemeta.Meta `json:"metadata"`
	// UsedBy lists the domains cloned from this version (by metadata or
	// by their disk's image path), sorted.
	UsedBy []string `json:"used_by,omitempty"`
}

// imageLeftover is a volume or domain an interrupted image build left.
type imageLeftover struct {
	Image string
	Kind  string // "volume" or "domain"
	Pool  string
	Name  string
	Why   string
}

// ImageInventory is what a pool holds of legacyvm's images.
type ImageInventory struct {
	Versions  []ImageVersion
	Leftovers []imageLeftover
	// Building names the images whose build domain exists.
	Building []string
}

// listImages reads the image versions registered in pool (of one image, or
// of all when image is ""), sorted by name and version, with the domains
// that use each, and what interrupted builds left.
func listImages(ctx context.Context, hv virt.Hypervisor, pool, image string) (*ImageInventory, error) {
	vols, err := hv.ListVolumes(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("list image volumes of pool %s: %w", pool, err)
	}
	type pair struct {
		disk, meta *virt.Volume
	}
	found := map[string]map[int]*pair{}
	for i := range vols {
		m := imageVolRE.FindStringSubmatch(vols[i].Name)
		if m == nil || (image != "" && m[1] != image) {
			continue
		}
		v, _ := strconv.Atoi(m[2])
		if found[m[1]] == nil {
			found[m[1]] = map[int]*pair{}
		}
		p := found[m[1]][v]
		if p == nil {
			p = &pair{}
			found[m[1]][v] = p
		}
		if m[3] == "qcow2" {
			p.disk = &vols[i]
		} else {
			p.meta = &vols[i]
		}
	}
	inv := &ImageInventory{}
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(found) {
		for v, p := range found[name] {
			leftover := func(vol *virt.Volume, why string) {
				if vol != nil {
					inv.Leftovers = append(inv.Leftovers, imageLeftover{Image: name, Kind: "volume", Pool: pool, Name: vol.Name, Why: why})
				}
			}
			if p.disk == nil {
				leftover(p.meta, "metadata without its disk")
				continue
			}
			if p.meta == nil {
				leftover(p.disk, "disk without metadata (the build did not finish)")
				continue
			}
			var buf bytes.Buffer
			if _, err := hv.DownloadVolume(ctx, pool, p.meta.Name, &buf, maxImageMetaBytes); err != nil {
				if errors.Is(err, virt.ErrInvalid) {
					leftover(p.meta, "metadata too large")
					leftover(p.disk, "its metadata is unreadable")
					continue
				}
				return nil, fmt.Errorf("read image metadata %s: %w", p.meta.Name, err)
			}
			meta, ok := imagemeta.Parse(buf.Bytes(), name, v)
			if !ok {
				leftover(p.meta, "metadata incomplete or not legacyvm's")
				leftover(p.disk, "its metadata is unreadable")
				continue
			}
			iv := ImageVersion{Name: name, Version: v, Pool: pool, Volume: p.disk.Name, Path: p.disk.Path,
				Mode: fmt.Sprintf("%04o", p.disk.Mode), MetaVolume: p.meta.Name, Meta: meta}
			for _, d := range doms {
				m := d.Metadata
				if m == nil || m.ImageBuild != "" {
					continue
				}
				if (m.ImageName == name && m.ImageVersion == v) || m.Image == p.disk.Path {
					iv.UsedBy = append(iv.UsedBy, d.Name)
				}
			}
			sort.Strings(iv.UsedBy)
			inv.Versions = append(inv.Versions, iv)
		}
	}
	sort.Slice(inv.Versions, func(i, j int) bool {
		a, b := inv.Versions[i], inv.Versions[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
	for _, d := range doms {
		if m := d.Metadata; m != nil && m.ImageBuild != "" && (image == "" || m.ImageBuild == image) {
			inv.Building = append(inv.Building, m.ImageBuild)
		}
	}
	sort.Strings(inv.Building)
	return inv, nil
}

// Latest returns the newest registered version of image (ok false when
// there is none).
func (inv *ImageInventory) Latest(image string) (ImageVersion, bool) {
	var out ImageVersion
	ok := false
	for _, v := range inv.Versions {
		if v.Name == image && v.Version > out.Version {
			out, ok = v, true
		}
	}
	return out, ok
}

// Find returns version n of image.
func (inv *ImageInventory) Find(image string, n int) (ImageVersion, bool) {
	for _, v := range inv.Versions {
		if v.Name == image && v.Version == n {
			return v, true
		}
	}
	return ImageVersion{}, false
}

// CleanImageLeftovers removes what interrupted builds of image left in
// pool: the build domain (powered off, undefined) and the volumes it lists,
// and image volumes that are not registered. The caller must hold the
// image's build lock (lock.Image): a build in progress is not a leftover.
// It returns what it removed, one phrase each.
func (e *engine) CleanImageLeftovers(ctx context.Context, pool, image string) ([]string, error) {
	var done []string
	dom := buildDomainName(image)
	d, err := e.HV.GetDomain(ctx, dom)
	switch {
	case err == nil:
		if d.Metadata == nil || d.Metadata.ImageBuild != image {
			return nil, fmt.Errorf("domain %s exists but is not legacyvm's build domain of image %s; rename or remove it", dom, image)
		}
		if d.State != virt.StateShutoff {
			if err := e.HV.DestroyDomain(ctx, dom); err != nil && !errors.Is(err, virt.ErrInvalidState) && !errors.Is(err, virt.ErrNotFound) {
				return done, err
			}
		}
		for _, v := range d.Metadata.Volumes {
			if err := e.HV.DeleteVolume(ctx, v.Pool, v.Name); err == nil {
				done = append(done, "volume "+v.Name)
			} else if !errors.Is(err, virt.ErrNotFound) {
				return done, err
			}
		}
		if err := e.HV.UndefineDomain(ctx, dom); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return done, err
		}
		done = append(done, "build domain "+dom)
	case errors.Is(err, virt.ErrNotFound):
	default:
		return nil, err
	}
	for _, f := range cleanStaleMediaISOs(os.TempDir(), image) {
		done = append(done, "temporary media ISO "+f)
	}
	inv, err := listImages(ctx, e.HV, pool, image)
	if err != nil {
		return done, err
	}
	for _, l := range inv.Leftovers {
		if err := e.HV.DeleteVolume(ctx, l.Pool, l.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return done, err
		}
		done = append(done, fmt.Sprintf("volume %s (%s)", l.Name, l.Why))
	}
	return done, nil
}

// BuildOptions are the settings of one image build beyond the image block.
type BuildOptions struct {
	Profile string
	URI     string
	Accel   virt.Accel
	// SerialLogDir is where the build domain's serial console is logged
	// ("" = /var/log/libvirt/qemu); legacyvm reads the build's phases
	// from it when the host is local.
	SerialLogDir string
	// Timeout overrides the image's timeout when > 0.
	Timeout         time.Duration
	LegacyvmVersion string
	// TempDir is where media directories are made into ISOs before they
	// are uploaded (default os.TempDir()).
	TempDir string
}

// buildError is a failed build: the phase it failed in and the last lines
// of the guest's serial console (sanitised: printable ASCII, bounded).
type buildError struct {
	Image string
	Phase string
	Err   error
	Tail  []string
}

func (e *buildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image %s: build failed in phase %s: %v", e.Image, e.Phase, e.Err)
	if len(e.Tail) > 0 {
		b.WriteString("\nlast lines of the guest's serial console:")
		for _, l := range e.Tail {
			b.WriteString("\n  " + l)
		}
	}
	b.WriteString("\nnothing was registered; the build domain and its volumes were removed")
	return b.String()
}

func (e *buildError) Unwrap() error { return e.Err }

// Build phases, in order.
const (
	phasePrepare    = "prepare"
	phaseSetup      = "setup"
	phaseMedia      = "media"
	phaseSteps      = "steps"
	phaseGeneralize = "generalize"
	phaseRegister   = "register"
)

var phaseRE = regexp.MustCompile(`(?:RIG|LEGACYVM) phase ([a-z]+)(?: ([ -~]{0,80}))?`)

// serialWatch follows a serial log from an offset: phases and a tail.
type serialWatch struct {
	path   string
	offset int64
	phases []string
	last   []byte
}

// newSerialWatch starts following path, the serial log of a build domain
// about to start: the log of an earlier build is removed first (QEMU starts
// the file over, and a new log of the same size could not be told apart);
// when that fails, reading starts at its end.
func newSerialWatch(path string) *serialWatch {
	w := &serialWatch{path: path}
	if err := os.Remove(path); err != nil {
		if st, err := os.Stat(path); err == nil {
			w.offset = st.Size()
		}
	}
	return w
}

// poll reads what was appended (at most 1 MiB per call) and returns the
// phases reported since the last call, with their details.
func (w *serialWatch) poll() [][2]string {
	if w.path == "" {
		return nil
	}
	f, err := os.Open(w.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	if st.Size() < w.offset { // the log started over
		w.offset = 0
	}
	buf := make([]byte, min(st.Size()-w.offset, 1<<20))
	n, _ := f.ReadAt(buf, w.offset)
	buf = buf[:n]
	// Only whole lines.
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	} else {
		return nil
	}
	w.offset += int64(len(buf))
	w.last = append(w.last, buf...)
	if len(w.last) > 16<<10 {
		w.last = w.last[len(w.last)-16<<10:]
	}
	var out [][2]string
	for _, line := range bytes.Split(buf, []byte("\n")) {
		if m := phaseRE.FindSubmatch(line); m != nil {
			out = append(out, [2]string{string(m[1]), string(m[2])})
			w.phases = append(w.phases, string(m[1]))
		}
	}
	return out
}

// tail returns the last n lines seen, sanitised: printable ASCII only
// (anything else becomes '?'), at most 160 characters each.
func (w *serialWatch) tail(n int) []string {
	lines := strings.Split(strings.TrimRight(string(w.last), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out []string
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		var b strings.Builder
		for _, r := range l {
			if b.Len() >= 160 {
				b.WriteString("...")
				break
			}
			if r >= 0x20 && r < 0x7f {
				b.WriteRune(r)
			} else {
				b.WriteByte('?')
			}
		}
		if b.Len() > 0 {
			out = append(out, b.String())
		}
	}
	return out
}

func (w *serialWatch) saw(phase string) bool {
	for _, p := range w.phases {
		if p == phase {
			return true
		}
	}
	return false
}

// BuildImage builds the next version of im: it checks the source ISO
// (existence and SHA-256) and the media, boots a temporary domain without
// any network interface from the ISO with generated answer media (no
// product key), follows the phases the guest reports on its serial
// console, and when the guest has generalized and powered off, copies the
// disk to the read-only image volume, hashes it and writes the metadata
// volume (registration). Every failure, and a cancelled ctx, removes the
// build domain and every volume the build made; the error is a *buildError
// naming the phase. The caller holds lock.Image and has run
// CleanImageLeftovers.
func (e *engine) BuildImage(ctx context.Context, im *profiles.Image, o BuildOptions) (iv *ImageVersion, err error) {
	start := time.Now()
	name := im.Name
	phase := phasePrepare
	defer func() { e.finish(event.KindImage, name, start, err) }()
	var watch *serialWatch
	fail := func(err error) (*ImageVersion, error) {
		be := &buildError{Image: name, Phase: phase, Err: err}
		if watch != nil {
			watch.poll()
			be.Tail = watch.tail(12)
		}
		return nil, be
	}
	r := newReverter()
	defer func() { err = r.fail(err) }()
	undo := context.WithoutCancel(ctx)

	pool, err := e.HV.GetPool(ctx, im.Pool)
	if err != nil {
		return fail(fmt.Errorf("storage pool %s of image %s: %w", im.Pool, name, err))
	}
	if o.Accel == "" {
		hi, err := e.HV.HostInfo(ctx)
		if err != nil {
			return fail(err)
		}
		h := im.Host
		if h == nil {
			h = &profiles.Host{Accelerator: profiles.AccelAuto}
		}
		accel, diags := resolveAccel(h, hi)
		if diags.HasErrors() {
			return fail(errors.New(diags[0].Detail))
		}
		o.Accel = accel
	}
	preset, ok := winguest.PresetFor(string(im.OS()))
	if !ok {
		panic("no preset for " + im.OS())
	}

	// Source and media.
	e.begin(event.KindImage, name, event.StepChecksum, "checking %s (SHA-256)", filepath.Base(im.Source.ISO))
	sum, err := e.isoSHA256(ctx, o.URI, im.Source.ISO)
	if err != nil {
		return fail(err)
	}
	if sum != im.Source.SHA256 {
		return fail(fmt.Errorf("source ISO %s has SHA-256 %s, the image block expects %s: wrong or damaged file (copy it again, or correct sha256)", im.Source.ISO, sum, im.Source.SHA256))
	}
	type medium struct {
		path, volume string // volume: uploaded from a directory
		info         imagemeta.Media
	}
	var media []medium
	tmp := o.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	cleanStaleMediaISOs(tmp, name)
	for i, m := range im.Media {
		st, err := os.Stat(m.Path)
		if err != nil {
			return fail(fmt.Errorf("media %s: %w", m.Path, pathErrOf(err)))
		}
		if !st.IsDir() {
			s, err := localSHA256(ctx, m.Path)
			if err != nil {
				return fail(fmt.Errorf("media %s: %w", m.Path, err))
			}
			media = append(media, medium{path: m.Path, info: imagemeta.Media{Name: filepath.Base(m.Path), SHA256: s}})
			continue
		}
		if !isLocalURI(o.URI) {
			return fail(fmt.Errorf("media directory %s: directories are made into ISOs on this machine and uploaded; that works for remote hosts too, but the host %s must have the pool %s", m.Path, o.URI, im.Pool))
		}
		e.begin(event.KindImage, name, event.StepBuild, "making an ISO of %s", m.Path)
		isoPath := filepath.Join(tmp, fmt.Sprintf("legacyvm-media-%s-%d-%d.iso", name, os.Getpid(), i+1))
		if err := winguest.DirISO(isoPath, m.Path, fmt.Sprintf("LVM_MEDIA%d", i+1)); err != nil {
			return fail(err)
		}
		s, err := localSHA256(ctx, isoPath)
		if err != nil {
			os.Remove(isoPath)
			return fail(err)
		}
		media = append(media, medium{path: isoPath, volume: buildVolumeName(name, fmt.Sprintf("media%d.iso", i+1)),
			info: imagemeta.Media{Name: filepath.Base(m.Path) + "/", SHA256: s}})
		defer os.Remove(isoPath)
	}

	inv, err := listImages(ctx, e.HV, im.Pool, name)
	if err != nil {
		return fail(err)
	}
	version := 1
	if l, ok := inv.Latest(name); ok {
		version = l.Version + 1
	}

	// Answer media: no product key; a one-time password for the build
	// account that is kept nowhere.
	pw, err := winguest.NewBuildPassword()
	if err != nil {
		return fail(err)
	}
	bp := winguest.ImageBuildParams{
		ProcessorArchitecture: preset.ProcessorArchitecture,
		ImageIndex:            im.Source.ImageIndex,
		BuildPassword:         pw,
		MediaCount:            len(media),
		SkipRearm:             im.SkipRearm,
	}
	if bp.ImageIndex == 0 {
		bp.ImageName = winguest.ImageName(im.Source.Edition)
	}
	for _, s := range im.Steps {
		bp.Steps = append(bp.Steps, s.Command)
	}
	auto, err := winguest.ImageBuildAutounattend(bp)
	if err != nil {
		return fail(fmt.Errorf("answer file of image %s: %w", name, err))
	}
	gen, err := winguest.GeneralizeUnattend(preset.ProcessorArchitecture, im.SkipRearm)
	if err != nil {
		return fail(err)
	}
	answer, err := winguest.AnswerISO([]winguest.File{{Name: winguest.AutounattendName, Data: auto}, {Name: winguest.GeneralizeName, Data: gen}}, "LEGACYVM")
	clear(auto)
	if err != nil {
		return fail(err)
	}
	defer clear(answer)

	// The build domain first, listing every volume it will own, so that an
	// interrupted build leaves nothing unaccounted for.
	dom := buildDomainName(name)
	sysVol := virt.VolumeSpec{Pool: im.Pool, Name: buildVolumeName(name, "system.qcow2"), Format: "qcow2", CapacityBytes: im.SizeBytes, Mode: 0o600}
	ansVol := virt.VolumeSpec{Pool: im.Pool, Name: buildVolumeName(name, "answer.iso"), Format: "raw", Mode: 0o600}
	md := &virt.Metadata{Profile: o.Profile, Instance: dom, ImageBuild: name, Image: im.Source.ISO, SpecHash: "image-build", Created: e.now(),
		Volumes: []virt.VolumeRef{{Pool: im.Pool, Name: sysVol.Name, Role: "system"}, {Pool: im.Pool, Name: ansVol.Name, Role: "answer"}}}
	for _, m := range media {
		if m.volume != "" {
			md.Volumes = append(md.Volumes, virt.VolumeRef{Pool: im.Pool, Name: m.volume, Role: "media"})
		}
	}
	mem := im.MemoryBytes
	if mem == 0 {
		mem = preset.DefaultMemory
	}
	logDir := o.SerialLogDir
	if logDir == "" {
		logDir = "/var/log/libvirt/qemu"
	}
	bus := preset.DiskBus
	spec := virt.DomainSpec{
		Name: dom, UUID: imageBuildUUID(o.Profile, name), Title: fmt.Sprintf("legacyvm image build of %s (profile %s)", name, o.Profile),
		Accel: o.Accel, Arch: preset.Arch, Machine: preset.Machine, VCPUs: preset.DefaultCPUs, MemoryBytes: mem,
		SMBIOSSerial: "LVM-IMAGE-BUILD", Hyperv: true, SerialLog: filepath.Join(logDir, dom+".serial.log"),
		// No interfaces: the build has no network at all.
		Disks: []virt.DiskSpec{
			{Device: virt.DeviceDisk, Bus: bus, Target: "sda", Path: filepath.Join(pool.Path, sysVol.Name), Format: "qcow2", BootOrder: 1},
			{Device: virt.DeviceCDROM, Bus: bus, Target: "sdb", Path: filepath.Join(pool.Path, ansVol.Name), Format: "raw"},
			{Device: virt.DeviceCDROM, Bus: bus, Target: "sdc", Path: im.Source.ISO, Format: "raw", BootOrder: 2},
		},
		Metadata: md,
	}
	for i, m := range media {
		p := m.path
		if m.volume != "" {
			p = filepath.Join(pool.Path, m.volume)
		}
		spec.Disks = append(spec.Disks, virt.DiskSpec{Device: virt.DeviceCDROM, Bus: bus, Target: "sd" + string(rune('d'+i)), Path: p, Format: "raw"})
	}
	if len(spec.Disks) > 26 {
		return fail(fmt.Errorf("image %s has %d media; at most 23 fit on the build VM's SATA bus", name, len(media)))
	}
	e.begin(event.KindImage, name, event.StepDefine, "defining build domain %s (no network interface) for version %d", dom, version)
	if _, err := e.HV.DefineDomain(ctx, spec); err != nil {
		return fail(err)
	}
	r.add("remove build domain "+dom+" and its volumes", func() error {
		var errs []error
		if err := e.HV.DestroyDomain(undo, dom); err != nil && !errors.Is(err, virt.ErrInvalidState) && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, err)
		}
		for _, v := range md.Volumes {
			if err := e.HV.DeleteVolume(undo, v.Pool, v.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		if err := e.HV.UndefineDomain(undo, dom); err != nil && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if _, err := e.HV.CreateVolume(ctx, sysVol); err != nil {
		return fail(err)
	}
	e.begin(event.KindImage, name, event.StepUpload, "uploading answer media (%s, no product key)", humanBytes(uint64(len(answer))))
	if _, err := e.HV.UploadVolume(ctx, ansVol, bytes.NewReader(answer), int64(len(answer))); err != nil {
		return fail(err)
	}
	for _, m := range media {
		if m.volume == "" {
			continue
		}
		if err := uploadFile(ctx, e.HV, virt.VolumeSpec{Pool: im.Pool, Name: m.volume, Format: "raw", Mode: 0o644}, m.path); err != nil {
			return fail(err)
		}
	}

	// Setup, steps, generalize.
	timeout := im.Timeout
	if o.Timeout > 0 {
		timeout = o.Timeout
	}
	if isLocalURI(o.URI) {
		watch = newSerialWatch(spec.SerialLog)
	} else {
		watch = &serialWatch{}
	}
	phase = phaseSetup
	e.begin(event.KindImage, name, event.StepSetup, "phase %s: starting Windows setup from %s (timeout %s)", phase, filepath.Base(im.Source.ISO), timeout)
	if err := e.HV.StartDomain(ctx, dom); err != nil {
		return fail(err)
	}
	deadline := start.Add(timeout)
	every := e.ReportInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	lastReport := time.Now()
	for {
		for _, p := range watch.poll() {
			phase = p[0]
			msg := "phase " + p[0]
			if p[1] != "" {
				msg += " (" + p[1] + ")"
			}
			e.going(event.KindImage, name, event.StepBuild, time.Since(start), "%s after %s", msg, time.Since(start).Round(time.Second))
		}
		d, err := e.HV.GetDomain(ctx, dom)
		if err != nil {
			return fail(err)
		}
		if d.State == virt.StateShutoff || d.State == virt.StateCrashed {
			watch.poll()
			if d.State == virt.StateCrashed {
				return fail(errors.New("the build VM crashed"))
			}
			if watch.path != "" && !watch.saw(phaseGeneralize) {
				return fail(errors.New("the guest powered off before it reported the generalize phase (sysprep did not run)"))
			}
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the guest did not power off within %s (raise the image block's timeout, or --timeout, if setup and the steps need longer)", timeout.Round(time.Second)))
		}
		if time.Since(lastReport) >= every {
			e.going(event.KindImage, name, event.StepBuild, time.Since(start), "phase %s, %s elapsed", phase, time.Since(start).Round(time.Second))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("interrupted: %w", ctx.Err()))
		case <-time.After(e.poll()):
		}
	}

	// Registration: answer media and media volumes go first (the answer
	// file is deleted as soon as setup is done), then the read-only copy,
	// its hash, and the metadata last.
	phase = phaseRegister
	e.begin(event.KindImage, name, event.StepBuild, "phase %s: removing answer media", phase)
	for _, v := range md.Volumes {
		if v.Role == "system" {
			continue
		}
		if err := e.HV.DeleteVolume(ctx, v.Pool, v.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			return fail(err)
		}
	}
	imgVol := virt.VolumeSpec{Pool: im.Pool, Name: imageVolumeName(name, version), Format: "qcow2", CapacityBytes: im.SizeBytes, Mode: 0o444}
	e.begin(event.KindImage, name, event.StepDisk, "copying the generalized disk to %s (read-only)", imgVol.Name)
	vol, err := e.HV.CloneVolume(ctx, imgVol, filepath.Join(pool.Path, sysVol.Name))
	if err != nil {
		return fail(err)
	}
	r.add("delete volume "+imgVol.Name, func() error { return ignoreNotFound(e.HV.DeleteVolume(undo, im.Pool, imgVol.Name)) })
	h := sha256.New()
	if _, err := e.HV.DownloadVolume(ctx, im.Pool, imgVol.Name, h, 0); err != nil {
		return fail(err)
	}
	meta := imagemeta.Meta{
		Format: imagemeta.Format, Image: name, Version: version, Profile: o.Profile, OS: string(im.OS()),
		Edition: string(im.Source.Edition), Arch: im.Source.Arch,
		SourceISO: im.Source.ISO, SourceSHA256: sum,
		BuiltAt: e.now(), BuildSeconds: int64(time.Since(start).Seconds()),
		LegacyvmVersion: o.LegacyvmVersion, ContentSHA256: hex.EncodeToString(h.Sum(nil)),
		CapacityBytes: vol.CapacityBytes, Generalized: true, SkipRearm: im.SkipRearm,
	}
	for _, m := range media {
		meta.Media = append(meta.Media, m.info)
	}
	for _, s := range im.Steps {
		meta.Steps = append(meta.Steps, s.Name)
	}
	doc := meta.Encode()
	metaName := imageMetaName(name, version)
	if _, err := e.HV.UploadVolume(ctx, virt.VolumeSpec{Pool: im.Pool, Name: metaName, Format: "raw", Mode: 0o444}, bytes.NewReader(doc), int64(len(doc))); err != nil {
		return fail(err)
	}
	r.add("delete volume "+metaName, func() error { return ignoreNotFound(e.HV.DeleteVolume(undo, im.Pool, metaName)) })

	// The build domain and its disk are no longer needed.
	if err := e.HV.DeleteVolume(ctx, im.Pool, sysVol.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		return fail(err)
	}
	if err := e.HV.UndefineDomain(ctx, dom); err != nil && !errors.Is(err, virt.ErrNotFound) {
		return fail(err)
	}
	r.success()
	out := &ImageVersion{Name: name, Version: version, Pool: im.Pool, Volume: vol.Name, Path: vol.Path,
		Mode: fmt.Sprintf("%04o", vol.Mode), MetaVolume: metaName, Meta: meta}
	e.stepDone(event.KindImage, name, event.StepBuild, time.Since(start), "registered version %d (%s) in %s", version, vol.Name, time.Since(start).Round(time.Second))
	return out, nil
}

// DeleteImage deletes version n of image (all versions when n is 0) from
// pool. A version some domain uses is refused with the list of domains;
// nothing is deleted then. The caller holds lock.Image.
func (e *engine) DeleteImage(ctx context.Context, pool, image string, n int) ([]ImageVersion, error) {
	inv, err := listImages(ctx, e.HV, pool, image)
	if err != nil {
		return nil, err
	}
	var del []ImageVersion
	var inUse []string
	for _, v := range inv.Versions {
		if n != 0 && v.Version != n {
			continue
		}
		del = append(del, v)
		for _, d := range v.UsedBy {
			inUse = append(inUse, fmt.Sprintf("%s (v%d)", d, v.Version))
		}
	}
	if len(del) == 0 {
		if n != 0 {
			return nil, fmt.Errorf("image %s has no version %d in pool %s: %w", image, n, pool, virt.ErrNotFound)
		}
		return nil, fmt.Errorf("image %s has no registered version in pool %s: %w", image, pool, virt.ErrNotFound)
	}
	if len(inUse) > 0 {
		return nil, &imageInUseError{Image: image, VMs: inUse}
	}
	for _, v := range del {
		// Metadata first: a delete interrupted half-way leaves an
		// unregistered disk, which the next image command removes.
		for _, vol := range []string{v.MetaVolume, v.Volume} {
			e.begin(event.KindImage, image, event.StepDelete, "deleting volume %s", vol)
			if err := e.HV.DeleteVolume(ctx, pool, vol); err != nil && !errors.Is(err, virt.ErrNotFound) {
				return nil, err
			}
		}
	}
	return del, nil
}

// imageInUseError refuses to delete an image that linked clones use.
type imageInUseError struct {
	Image string
	VMs   []string
}

func (e *imageInUseError) Error() string {
	return fmt.Sprintf("image %s is in use by %d VM(s): %s; destroy them or move them to another image first (their disks are overlays of it)",
		e.Image, len(e.VMs), strings.Join(e.VMs, ", "))
}

// Is makes errors.Is(err, virt.ErrInUse) true.
func (e *imageInUseError) Is(target error) bool { return target == virt.ErrInUse }

// isoSHA256 hashes the ISO: from this machine's file system for a local
// host, through the storage API otherwise (the ISO must be in a pool).
func (e *engine) isoSHA256(ctx context.Context, uri, path string) (string, error) {
	if isLocalURI(uri) {
		if summary, detail := checkLocalISO(statLocalFile(path), path, uri); summary != "" {
			return "", fmt.Errorf("%s: %s", strings.ToLower(summary), detail)
		}
		return localSHA256(ctx, path)
	}
	v, err := e.HV.VolumeByPath(ctx, path)
	if err != nil {
		return "", fmt.Errorf("source ISO %s on %s: %w (make its directory a storage pool)", path, uri, err)
	}
	h := sha256.New()
	if _, err := e.HV.DownloadVolume(ctx, v.Pool, v.Name, h, 0); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// localSHA256 is fileSHA256 with image build's error wording.
func localSHA256(ctx context.Context, path string) (string, error) {
	s, err := fileSHA256(ctx, path)
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Op == "open" {
		return "", pathErrOf(err)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

func pathErrOf(err error) error {
	return errors.New(pathErr(err))
}

func uploadFile(ctx context.Context, hv virt.Hypervisor, spec virt.VolumeSpec, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = hv.UploadVolume(ctx, spec, f, st.Size())
	return err
}

// mediaISORE matches the temporary ISOs BuildImage makes of media
// directories: legacyvm-media-IMAGE-PID-N.iso.
var mediaISORE = regexp.MustCompile(`^legacyvm-media-([a-z][a-z0-9-]*)-([0-9]+)-[0-9]+\.iso$`)

// cleanStaleMediaISOs removes the temporary media ISOs of image in dir
// whose build process is gone (a build killed outright cannot remove
// them), and returns their names.
func cleanStaleMediaISOs(dir, image string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		m := mediaISORE.FindStringSubmatch(e.Name())
		if m == nil || m[1] != image {
			continue
		}
		pid, err := strconv.Atoi(m[2])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func imageBuildUUID(profile, image string) string {
	return instanceIdentity(profile, "image-build/"+image).UUID
}

// ignoreNotFound is err unless it says the object is already gone.
func ignoreNotFound(err error) error {
	if errors.Is(err, virt.ErrNotFound) {
		return nil
	}
	return err
}
