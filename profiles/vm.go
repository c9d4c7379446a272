package profiles

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/legacyvm/legacyvm/internal/license"
)

const (
	gib = 1 << 30
	// MaxCount bounds a vm's count.
	MaxCount = 64
	// MaxCPUs bounds a vm's cpus.
	MaxCPUs = 32
	// DefaultInstallTimeout bounds an installation from media when the
	// install block sets no timeout.
	DefaultInstallTimeout = 2 * time.Hour
	// DefaultInstallDiskBytes is the disk size of an installation that
	// sets no size.
	DefaultInstallDiskBytes = 40 * gib
)

// osLimits are the memory limits per OS (win7-spec §1.10).
var osLimits = map[OS]struct{ min, max, minDisk uint64 }{
	OSWin7x64: {min: 2 * gib, max: 192 * gib, minDisk: 20 * gib},
	OSWin7x86: {min: 1 * gib, max: 4 * gib, minDisk: 16 * gib},
}

// editionMaxMemory is what each edition can use on x64 (x86: 4 GiB, and
// Starter 2 GiB).
var editionMaxMemory = map[license.Edition]uint64{
	license.EditionStarter:     2 * gib,
	license.EditionHomeBasic:   8 * gib,
	license.EditionHomePremium: 16 * gib,
}

// implicitHostName names the host used when a profile declares none.
const implicitHostName = "local"

var (
	localeRe      = regexp.MustCompile(`^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})+$`)
	inputLocaleRe = regexp.MustCompile(`^([0-9a-fA-F]{4}:[0-9a-fA-F]{8}|[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})+)(;([0-9a-fA-F]{4}:[0-9a-fA-F]{8}|[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})+))*$`)
	userNameBad   = `"/\[]:;|=,+*?<>@`
)

func (l *loader) decodeVM(b *vmBlock) {
	if !l.declare("vm", b.Name, b.NameRange, b.DefRange) {
		return
	}
	l.checkName("vm", b.Name, b.NameRange, MaxInstanceNameLen, "")
	vm := &VM{Name: b.Name, Count: 1, Machine: "pc", CPUs: 2, DeclRange: b.DefRange, LicensesRange: b.Licenses.Range()}
	d := &vmDecl{vm: vm, block: b}
	l.vms = append(l.vms, d)
	ctx := l.vmCtx
	sc := scopeVM
	sc.countHint = "This vm does not set count, so there is no count.index. Add count = N, or remove the reference."

	if n, ok := l.integer(b.Count, ctx, sc, "count", "count = 2"); ok {
		if n < 1 || n > MaxCount {
			l.errorf(b.Count.Range(), "Invalid count", "count must be between 1 and %d, not %d. Leave count out for a single VM without a number suffix.", MaxCount, n)
		} else {
			vm.Count, vm.CountSet = n, true
		}
	} else if present(b.Count) {
		vm.CountSet = true // keep instance names stable for later checks
	}
	if vm.CountSet {
		sc.countHint = "count.index is only available in the windows block's computer_name: every other setting is shared by all instances of the vm."
	}
	osSet := false
	if l.required(b.OS, b.DefRange, "vm", "os", `os = "win7-x64"`) {
		if s, ok := l.enum(b.OS, ctx, sc, "os", []string{string(OSWin7x64), string(OSWin7x86)}); ok {
			vm.OS, osSet = OS(s), true
		}
	}
	if s, ok := l.enum(b.Machine, ctx, sc, "machine", []string{"pc", "q35"}); ok {
		vm.Machine = s
	}
	if n, ok := l.integer(b.CPUs, ctx, sc, "cpus", "cpus = 2"); ok {
		if n < 1 || n > MaxCPUs {
			l.errorf(b.CPUs.Range(), "Invalid cpus", "cpus must be between 1 and %d, not %d.", MaxCPUs, n)
		} else {
			vm.CPUs = n
		}
	}
	memSet := false
	if n, ok := l.size(b.Memory, ctx, sc, "memory"); ok {
		if s, _ := l.str(b.Memory, ctx, sc, "memory"); SizeIsDecimal(s) {
			// RAM comes in binary units: "4GB" would be 3.73 GiB, which
			// nobody means. Say so instead of guessing.
			l.errorf(b.Memory.Range(), "Decimal memory size", "memory = %q is %s decimal bytes (%.2f GiB), not what a machine with %s has. Memory is sized in binary units: write %q.", s, s, float64(n)/float64(gib), s, binaryUnit(s))
		} else {
			vm.MemoryBytes, memSet = n, true
		}
	}
	if osSet && !present(b.Memory) {
		vm.MemoryBytes = osLimits[vm.OS].min
	}

	// References.
	before := len(l.diags)
	lics, ranges := l.refList(b.Licenses, ctx, "licenses", licenseRefType)
	d.licensesBroken = len(l.diags) > before
	seen := map[*License]bool{}
	for i, p := range lics {
		lic := p.(*License)
		if seen[lic] {
			l.errorf(ranges[i], "Duplicate licence in licenses", "license.%s is listed twice. Each licence is listed once; its seats say how many instances it covers.", lic.Name)
			continue
		}
		seen[lic] = true
		vm.Licenses = append(vm.Licenses, lic)
		d.licRanges = append(d.licRanges, ranges[i])
	}
	if p := l.ref(b.Network, ctx, "network", networkRefType); p != nil {
		vm.Network = p.(*Network)
	}
	if p := l.ref(b.SnapshotPolicy, ctx, "snapshot_policy", policyRefType); p != nil {
		vm.SnapshotPolicy = p.(*SnapshotPolicy)
	}
	vm.PlacementRange = b.DefRange
	if present(b.Placement) {
		vm.PlacementRange = b.Placement.Range()
	}
	if present(b.Host) && present(b.Placement) {
		l.errorf(b.Placement.Range(), "Both host and placement", "A vm either names its host (host = host.NAME) or lets legacyvm choose one per instance (placement = \"spread\" or \"pack\"). Remove one of them.")
	}
	if present(b.HostLabels) && !present(b.Placement) {
		l.errorf(b.HostLabels.Range(), "host_labels without placement", "host_labels selects the hosts that placement chooses from. Add placement = \"spread\" (or \"pack\"), or remove host_labels.")
	}
	if present(b.Host) {
		if p := l.ref(b.Host, ctx, "host", hostRefType); p != nil {
			vm.Host = p.(*Host)
		}
	} else if present(b.Placement) {
		if s, ok := l.enum(b.Placement, ctx, sc, "placement", []string{string(PlacementSpread), string(PlacementPack)}); ok {
			vm.Placement = Placement(s)
		}
		sel := l.stringMap(b.HostLabels, ctx, sc, "host_labels")
		if len(l.hosts) == 0 {
			vm.Host = l.implicitHost()
			vm.Placement = PlacementFixed
			if len(sel) > 0 {
				l.errorf(b.HostLabels.Range(), "No host to select", "host_labels selects among the profile's host blocks, but the profile declares none. Declare host blocks with labels, or remove host_labels.")
			}
		} else {
			for _, k := range sortedKeys(l.hosts) {
				h := l.hosts[k]
				if hasLabels(h.Labels, sel) {
					vm.Candidates = append(vm.Candidates, h)
				}
			}
			if len(vm.Candidates) == 0 {
				var want []string
				for _, k := range sortedKeys(sel) {
					want = append(want, fmt.Sprintf("%s = %q", k, sel[k]))
				}
				l.errorf(b.HostLabels.Range(), "No host matches host_labels", "No host block has all the labels %s. Add them to a host block's labels, or change host_labels.", strings.Join(want, ", "))
			}
			if vm.Placement == PlacementFixed {
				vm.Placement = PlacementSpread // an invalid value was reported
			}
		}
	} else {
		switch len(l.hosts) {
		case 0:
			vm.Host = l.implicitHost()
		case 1:
			for _, h := range l.hosts {
				vm.Host = h
			}
		default:
			l.errorf(b.DefRange, "Host not chosen", "The profile declares several hosts (%s), so each vm must say where it runs, for example host = host.%s, or let legacyvm choose one per instance with placement = \"spread\" (or \"pack\").", strings.Join(sortedKeys(l.hosts), ", "), sortedKeys(l.hosts)[0])
		}
	}
	vm.OEMStrings = l.stringList(b.OEMStrings, ctx, sc, "oem_strings")
	if v, ok := l.boolean(b.Autostart, ctx, sc, "autostart"); ok {
		vm.Autostart = v
	}
	if v, ok := l.boolean(b.GuestAgent, ctx, sc, "guest_agent"); ok {
		vm.GuestAgent = v
	}
	l.decodeVMDoors(d, sc)

	// Disk.
	for _, ib := range b.Installs {
		l.errorf(ib.DefRange, "Misplaced install block", "install belongs inside the vm's disk block: disk { install { iso = \"...\" } }. Move it there.")
	}
	switch len(b.Disks) {
	case 0:
		if len(b.Installs) == 0 {
			l.errorf(b.DefRange, "Missing disk block", "A vm needs a disk block: disk { image = \"/path/to/golden.qcow2\" } to clone a golden image, or disk { install { iso = \"/path/to/win7.iso\" } } to install from your Windows 7 media.")
		}
	default:
		for _, extra := range b.Disks[1:] {
			l.errorf(extra.DefRange, "Duplicate disk block", "A vm has one system disk, already declared at %s. Remove this one.", at(b.Disks[0].DefRange))
		}
		vm.Disk = l.decodeDisk(b.Disks[0], d, sc, osSet)
	}

	// Windows settings.
	vm.Windows = &Windows{TimeZone: "UTC", Locale: "en-US", InputLocale: "0409:00000409", AdminUser: DefaultAdminUser, DeclRange: b.DefRange}
	for _, extra := range b.Windows[min(1, len(b.Windows)):] {
		l.errorf(extra.DefRange, "Duplicate windows block", "A vm has one windows block, already declared at %s. Merge them.", at(b.Windows[0].DefRange))
	}
	if len(b.Windows) > 0 {
		d.compNameSrc = l.decodeWindows(b.Windows[0], d, sc)
	}

	// OS, memory and edition checks.
	if !osSet {
		return
	}
	lim := osLimits[vm.OS]
	if memSet {
		switch {
		case vm.MemoryBytes > lim.max && vm.OS == OSWin7x86:
			l.errorf(b.Memory.Range(), "Memory above the x86 limit", "32-bit Windows 7 can address at most 4 GiB, so memory for win7-x86 must be at most \"4GiB\" (and above 3 GiB part of it is lost to the PCI hole). Lower memory or use os = \"win7-x64\".")
		case vm.MemoryBytes > lim.max:
			l.errorf(b.Memory.Range(), "Memory above the x64 limit", "Windows 7 x64 can use at most 192 GiB (Professional, Enterprise, Ultimate). Lower memory to \"192GiB\" or less.")
		case vm.MemoryBytes == 0:
			l.errorf(b.Memory.Range(), "Invalid memory", "memory must be larger than zero, like memory = \"4GiB\".")
		case vm.MemoryBytes < lim.min:
			l.warnf(b.Memory.Range(), "Memory below the minimum", "Windows 7 %s needs at least %s of memory; with %s setup may fail or the guest may be very slow. Use memory = %q unless this is a test stand-in.", vm.OS, FormatSize(lim.min), FormatSize(vm.MemoryBytes), FormatSize(lim.min))
		case vm.OS == OSWin7x86 && vm.MemoryBytes > 3*gib:
			l.warnf(b.Memory.Range(), "Memory partly unusable", "32-bit Windows 7 loses part of the memory above 3 GiB to the PCI hole. Consider memory = \"3GiB\", or os = \"win7-x64\".")
		}
	}
	editions := map[license.Edition]hcl.Range{}
	for i, lic := range vm.Licenses {
		if lic.Edition != "" {
			if _, ok := editions[lic.Edition]; !ok {
				editions[lic.Edition] = d.licRanges[i]
			}
		}
	}
	if vm.Disk != nil && vm.Disk.Install != nil && vm.Disk.Install.Edition != "" {
		editions[vm.Disk.Install.Edition] = d.installEditionRange
	}
	for _, e := range sortedEditions(editions) {
		rng := editions[e]
		if vm.OS == OSWin7x64 && (e == license.EditionStarter || e == license.EditionHomeBasic) {
			l.errorf(rng, "Edition not available for x64", "Windows 7 %s only exists as 32-bit media. Use os = \"win7-x86\" for this edition, or a licence for another edition.", e)
			continue
		}
		if max, ok := editionMaxMemory[e]; ok && memSet && vm.MemoryBytes > max && vm.MemoryBytes <= lim.max {
			l.warnf(b.Memory.Range(), "Memory above the edition's limit", "Windows 7 %s uses at most %s of memory; the rest of the %s is wasted. Lower memory to %q.", e, FormatSize(max), FormatSize(vm.MemoryBytes), FormatSize(max))
		}
	}
	if in := vm.Disk; in != nil && in.Install != nil && in.Install.Edition != "" {
		for i, lic := range vm.Licenses {
			if lic.Edition != "" && lic.Edition != in.Install.Edition {
				l.errorf(d.licRanges[i], "Licence edition does not match install", "The install block installs %s, but license.%s is for %s; Windows setup rejects a key for another edition. Install the edition your licence covers.", in.Install.Edition, lic.Name, lic.Edition)
			}
		}
	}
	if w := vm.Windows; w.Activate && len(vm.Licenses) == 0 {
		l.errorf(d.activateRange, "Activation without licence", "activate = true runs Windows activation with the VM's product key, but the vm lists no licenses. Add licenses = [license.NAME] or remove activate.")
	}
}

// DefaultAdminUser is the local administrator account created at setup
// when the windows block does not name one.
const DefaultAdminUser = "legacyvm"

func sortedEditions(m map[license.Edition]hcl.Range) []license.Edition {
	out := make([]license.Edition, 0, len(m))
	for e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// hasLabels reports whether labels include every key/value of sel.
func hasLabels(labels, sel map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (l *loader) implicitHost() *Host {
	if l.implicit == nil {
		l.implicit = &Host{Name: implicitHostName, Accelerator: AccelAuto, StoragePool: "default", Implicit: true}
	}
	return l.implicit
}

// checkPath validates an image or ISO path and resolves it.
func (l *loader) checkPath(expr hcl.Expression, attr, s string) (string, bool) {
	switch {
	case strings.TrimSpace(s) == "":
		l.errorf(expr.Range(), "Empty path", "%s must be the path of a file on the libvirt host, like %s = \"/var/lib/libvirt/images/win7.qcow2\".", attr, attr)
		return "", false
	case strings.HasPrefix(s, "~"):
		l.errorf(expr.Range(), "Path with ~", "%s starts with ~, which is not expanded. Write the full path, like \"/home/me/...\", or a path relative to the profile directory.", attr)
		return "", false
	case strings.Contains(s, "://"):
		l.errorf(expr.Range(), "Path is a URL", "%s must be a local file path; legacyvm never downloads images. Download it yourself and give its path.", attr)
		return "", false
	}
	p := l.resolvePath(s)
	if dir, bad := SystemPath(p); bad {
		l.errorf(expr.Range(), "Path in a system directory", "%s %s is under %s, which holds devices, kernel interfaces, configuration or boot files, not disk images: legacyvm never gives such a file to a VM or makes a storage pool of its directory. Keep golden images and ISOs in a directory of their own, like /var/lib/libvirt/images.", attr, p, dir)
		return "", false
	}
	return p, true
}

// systemDirs are directories whose files are never disk images or ISOs.
var systemDirs = []string{"/proc", "/sys", "/dev", "/etc", "/boot", "/run", "/var/run"}

// SystemPath reports whether the absolute, clean path p is the root
// directory or lies in a system directory (/proc, /sys, /dev, /etc, /boot,
// /run), and which.
func SystemPath(p string) (dir string, bad bool) {
	if p == "/" {
		return "/", true
	}
	for _, d := range systemDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return d, true
		}
	}
	return "", false
}

func (l *loader) decodeDisk(b *diskBlock, decl *vmDecl, sc scope, osSet bool) *Disk {
	ctx := l.vmCtx
	vm := decl.vm
	d := &Disk{Clone: CloneLinked, Prepare: PrepareSpecialize, DeclRange: b.DefRange}
	hasImage := present(b.Image)
	for _, extra := range b.Installs[min(1, len(b.Installs)):] {
		l.errorf(extra.DefRange, "Duplicate install block", "A disk has one install block, already declared at %s.", at(b.Installs[0].DefRange))
	}
	switch {
	case !hasImage && len(b.Installs) == 0:
		l.errorf(b.DefRange, "Disk without source", "A disk needs either image = \"/path/to/golden.qcow2\" (a sysprepped golden image to clone) or an install { iso = \"/path/to/win7.iso\" } block (install from your own Windows 7 media).")
		return d
	case hasImage && len(b.Installs) > 0:
		l.errorf(b.Installs[0].DefRange, "Disk with both image and install", "A disk is either cloned from image or installed from media. Remove the install block to clone %s, or remove image to install.", "the image")
		return d
	}
	if n, ok := l.size(b.Size, ctx, sc, "size"); ok {
		if n < gib {
			l.errorf(b.Size.Range(), "Disk too small", "size must be at least 1 GiB, like size = \"60GiB\".")
		} else {
			d.SizeBytes = n
		}
	}
	if present(b.ImageVersion) && !hasImage {
		l.errorf(b.ImageVersion.Range(), "image_version without an image", "image_version selects a version of an image block (image = image.NAME); remove it, or clone an image block.")
	}
	if hasImage {
		if v, ok := l.value(b.Image, ctx, sc); ok && !v.IsNull() {
			switch {
			case v.Type().Equals(imageRefType):
				d.ImageRef = v.EncapsulatedValue().(*Image)
			case v.Type() == cty.String:
				if p, ok := l.checkPath(b.Image, "image", v.AsString()); ok {
					d.Image, d.ImageRange = p, b.Image.Range()
				}
			default:
				l.typeError(b.Image, "image", "the path of a golden image or an image block reference", `image = image.w7pro`, v)
			}
		}
		if present(b.ImageVersion) {
			if d.ImageRef == nil && d.Image != "" {
				l.errorf(b.ImageVersion.Range(), "image_version with an image path", "image_version selects a version of an image block that legacyvm builds (image = image.NAME); a path names one file. Remove image_version.")
			} else if s, ok := l.str(b.ImageVersion, ctx, sc, "image_version"); ok {
				if _, _, err := ParseImageVersion(s); err != nil {
					l.errorf(b.ImageVersion.Range(), "Invalid image_version", "image_version %s. Leave it out to keep each VM on the version it was cloned from, write \"latest\" to move every VM to the newest build (VMs on older versions are replaced), or a version number to pin one.", strings.TrimPrefix(err.Error(), ""))
				} else {
					d.ImageVersion, d.ImageVersionRange = strings.TrimPrefix(strings.TrimSpace(s), "v"), b.ImageVersion.Range()
				}
			}
		}
		if s, ok := l.enum(b.Clone, ctx, sc, "clone", []string{"linked", "full"}); ok {
			d.Clone = CloneMode(s)
		}
		if s, ok := l.enum(b.Prepare, ctx, sc, "prepare", []string{"specialize", "none"}); ok {
			d.Prepare = PrepareMode(s)
		}
		return d
	}
	// Installation from media.
	for _, e := range []struct {
		expr hcl.Expression
		name string
	}{{b.Clone, "clone"}, {b.Prepare, "prepare"}} {
		if present(e.expr) {
			l.errorf(e.expr.Range(), fmt.Sprintf("%s with install", e.name), "%s only applies to disks cloned from an image; an installed disk is created empty and set up by Windows setup with generated answer media. Remove %s.", e.name, e.name)
		}
	}
	d.Prepare = PrepareSpecialize
	if d.SizeBytes == 0 {
		d.SizeBytes = DefaultInstallDiskBytes
	} else if osSet && d.SizeBytes < osLimits[vm.OS].minDisk {
		l.errorf(b.Size.Range(), "Disk too small for Windows 7", "Windows 7 %s needs a disk of at least %s to install. Use size = \"40GiB\" or more.", vm.OS, FormatSize(osLimits[vm.OS].minDisk))
	}
	ib := b.Installs[0]
	in := &Install{Timeout: DefaultInstallTimeout, DeclRange: ib.DefRange}
	d.Install = in
	if l.required(ib.ISO, ib.DefRange, "install", "iso", `iso = "/srv/iso/win7-sp1-x64.iso"`) {
		if s, ok := l.str(ib.ISO, ctx, sc, "iso"); ok {
			if p, ok := l.checkPath(ib.ISO, "iso", s); ok {
				in.ISO, in.ISORange = p, ib.ISO.Range()
			}
		}
	}
	if s, ok := l.enum(ib.Edition, ctx, sc, "edition", editionNames()); ok {
		in.Edition, decl.installEditionRange = license.Edition(s), ib.Edition.Range()
	}
	if n, ok := l.integer(ib.ImageIndex, ctx, sc, "image_index", "image_index = 4"); ok {
		if n < 1 {
			l.errorf(ib.ImageIndex.Range(), "Invalid image_index", "image_index is the 1-based index of the image in the ISO's sources/install.wim (see wimlib-imagex info); it must be at least 1.")
		} else {
			in.ImageIndex = n
		}
	}
	if s, ok := l.str(ib.Timeout, ctx, sc, "timeout"); ok {
		if t, err := ParseDuration(s); err != nil {
			l.errorf(ib.Timeout.Range(), "Invalid duration", "timeout: %s.", err)
		} else if t < time.Minute {
			l.errorf(ib.Timeout.Range(), "Timeout too short", "Installing Windows 7 takes at least several minutes; use timeout = \"2h\" or similar.")
		} else {
			in.Timeout = t
		}
	}
	if in.Edition == "" && !present(ib.Edition) {
		if e := firstEdition(vm); e != "" {
			in.Edition = e
		} else if !present(ib.ImageIndex) {
			l.errorf(ib.DefRange, "Install edition unknown", "Say which edition to install from the ISO: edition = \"professional\" (or image_index = N), or list a licence in the vm's licenses, whose edition is then used.")
		}
	}
	return d
}

// firstEdition is the edition of the vm's first licence, once licences
// have been decoded (they are, before the disk).
func firstEdition(vm *VM) license.Edition {
	for _, lic := range vm.Licenses {
		if lic.Edition != "" {
			return lic.Edition
		}
	}
	return ""
}

// decodeWindows fills vm.Windows and returns the computer_name expression
// (evaluated per instance later), or nil.
func (l *loader) decodeWindows(b *windowsBlock, decl *vmDecl, sc scope) hcl.Expression {
	ctx := l.vmCtx
	vm := decl.vm
	w := vm.Windows
	w.DeclRange = b.DefRange
	if s, ok := l.str(b.TimeZone, ctx, sc, "time_zone"); ok {
		if s == "" || strings.Contains(s, "/") {
			l.errorf(b.TimeZone.Range(), "Invalid time zone", "time_zone takes a Windows time zone ID such as \"UTC\", \"W. Europe Standard Time\" or \"Pacific Standard Time\" (see tzutil /l), not an IANA name like %q.", s)
		} else {
			w.TimeZone = s
		}
	}
	if s, ok := l.str(b.Locale, ctx, sc, "locale"); ok {
		if !localeRe.MatchString(s) {
			l.errorf(b.Locale.Range(), "Invalid locale", "locale must be a language tag like \"en-US\" or \"de-DE\", not %q.", s)
		} else {
			w.Locale = s
		}
	}
	if s, ok := l.str(b.InputLocale, ctx, sc, "input_locale"); ok {
		if !inputLocaleRe.MatchString(s) {
			l.errorf(b.InputLocale.Range(), "Invalid input locale", "input_locale must be LANGID:KEYBOARDID like \"0409:00000409\" (US) or \"0407:00000407\" (German), or a language tag like \"en-US\"; not %q.", s)
		} else {
			w.InputLocale = s
		}
	}
	if s, ok := l.str(b.AdminUser, ctx, sc, "admin_user"); ok {
		if s == "" || len(s) > 20 || strings.ContainsAny(s, userNameBad) || strings.TrimRight(s, ". ") != s {
			l.errorf(b.AdminUser.Range(), "Invalid user name", "admin_user must be 1 to 20 characters without any of %s and must not end with a dot or space.", userNameBad)
		} else {
			w.AdminUser = s
		}
	}
	w.AdminPassword = l.secret(b.AdminPassword, ctx, sc, "admin_password", "Password", 0)
	if v, ok := l.boolean(b.Activate, ctx, sc, "activate"); ok {
		w.Activate = v
		decl.activateRange = b.Activate.Range()
	}
	if vm.Disk != nil && vm.Disk.Install == nil && vm.Disk.Prepare == PrepareNone {
		l.warnf(b.DefRange, "Windows settings unused", "prepare = \"none\" gives the VM no answer media, so the windows block has no effect. Remove it, or use prepare = \"specialize\" with a sysprepped image.")
		if w.Activate {
			l.errorf(b.Activate.Range(), "Activation without answer media", "activate = true runs at first logon from the answer media, which prepare = \"none\" leaves out.")
		}
	}
	if present(b.ComputerName) {
		return b.ComputerName
	}
	return nil
}

// assemble expands instances, hands out licence seats, checks names
// across VMs and fills the Profile's sorted slices.
func (l *loader) assemble() {
	p := l.p
	sort.SliceStable(l.vms, func(i, j int) bool { return l.vms[i].vm.Name < l.vms[j].vm.Name })
	instOwner := map[string]*vmDecl{}
	used := map[*License][]*Instance{}
	type compKey struct {
		net  *Network
		name string
	}
	compOwner := map[compKey]*Instance{}
	for _, d := range l.vms {
		vm := d.vm
		// Instances and names.
		var insts []*Instance
		for i := 1; i <= vm.Count; i++ {
			name := vm.Name
			if vm.CountSet {
				name = fmt.Sprintf("%s-%d", vm.Name, i)
			}
			insts = append(insts, &Instance{Name: name, Index: i, VM: vm, Host: vm.Host})
		}
		if last := insts[len(insts)-1].Name; len(last) > MaxInstanceNameLen && len(vm.Name) <= MaxInstanceNameLen {
			l.errorf(d.block.NameRange, "Instance name too long", "The instance name %q has %d characters; libvirt domain names made by legacyvm have at most %d. Shorten the vm name.", last, len(last), MaxInstanceNameLen)
		}
		collided := false
		for _, in := range insts {
			if other, ok := instOwner[in.Name]; ok && !collided {
				l.errorf(d.block.NameRange, "Instance name collision", "vm %q produces the instance %q, which vm %q at %s also produces. Rename one of the vms.", vm.Name, in.Name, other.vm.Name, at(other.block.DefRange))
				collided = true
			}
			instOwner[in.Name] = d
		}
		// Computer names.
		l.computerNames(d, insts)
		for _, in := range insts {
			if vm.Network == nil || in.ComputerName == "*" || in.ComputerName == "" {
				continue
			}
			k := compKey{vm.Network, strings.ToUpper(in.ComputerName)}
			if other, ok := compOwner[k]; ok && other.VM != vm {
				rng := d.block.NameRange
				if d.compNameSrc != nil {
					rng = d.compNameSrc.Range()
				}
				l.warnf(rng, "Duplicate computer name", "Instance %q gets the computer name %s, like %q of vm %q on the same network %q; Windows reports a name conflict. Set windows { computer_name = \"...\" } to tell them apart.", in.Name, in.ComputerName, other.Name, other.VM.Name, vm.Network.Name)
				break
			}
			compOwner[k] = in
		}
		// Seats: instances take the first listed licence with a free seat.
		total, unlimited := 0, false
		var parts []string
		for _, lic := range vm.Licenses {
			if lic.Seats == UnlimitedSeats {
				unlimited = true
				parts = append(parts, fmt.Sprintf("license.%s (unlimited)", lic.Name))
				continue
			}
			total += lic.Seats
			parts = append(parts, fmt.Sprintf("license.%s (%s)", lic.Name, plural(lic.Seats, "seat", "seats")))
		}
		if d.licensesBroken {
			// A reference was wrong: seat counts would only mislead.
		} else if len(vm.Licenses) > 0 && !unlimited && vm.Count > total {
			l.errorf(vm.LicensesRange, "Not enough licence seats", "vm %q has %s but its licences have %s in all: %s. Each instance needs a seat: add licences to licenses, raise seats where your licence allows it (mak), or lower count.", vm.Name, plural(vm.Count, "instance", "instances"), plural(total, "seat", "seats"), strings.Join(parts, ", "))
		} else if len(vm.Licenses) > 0 {
			reported := false
			for _, in := range insts {
				for _, lic := range vm.Licenses {
					if lic.Seats == UnlimitedSeats || len(used[lic]) < lic.Seats {
						in.License = lic
						used[lic] = append(used[lic], in)
						break
					}
				}
				if in.License == nil && !reported {
					reported = true
					var holders []string
					for _, lic := range vm.Licenses {
						var names []string
						for _, h := range used[lic] {
							names = append(names, h.Name)
						}
						holders = append(holders, fmt.Sprintf("license.%s (%s) is used by %s", lic.Name, plural(lic.Seats, "seat", "seats"), strings.Join(names, ", ")))
					}
					l.errorf(vm.LicensesRange, "Licence seats already taken", "Instance %q finds no free seat: %s. A licence's seats are shared by every vm that lists it (vms take seats in name order). Add licences or seats, or lower count.", in.Name, strings.Join(holders, "; "))
				}
			}
		}
		p.VMs = append(p.VMs, vm)
		p.Instances = append(p.Instances, insts...)
	}
	for _, k := range sortedKeys(l.images) {
		im := l.images[k]
		im.Host = l.imageHost(im, p.VMs)
		if im.Pool == "" && im.Host != nil {
			im.Pool = im.Host.StoragePool
		}
		p.Images = append(p.Images, im)
	}
	for _, k := range sortedKeys(l.vars) {
		p.Variables = append(p.Variables, l.vars[k])
	}
	for _, k := range sortedKeys(l.hosts) {
		p.Hosts = append(p.Hosts, l.hosts[k])
	}
	if l.implicit != nil {
		p.Hosts = append([]*Host{l.implicit}, p.Hosts...)
	}
	for _, k := range sortedKeys(l.licenses) {
		p.Licenses = append(p.Licenses, l.licenses[k])
	}
	for _, k := range sortedKeys(l.networks) {
		p.Networks = append(p.Networks, l.networks[k])
	}
	for _, k := range sortedKeys(l.policies) {
		p.SnapshotPolicies = append(p.SnapshotPolicies, l.policies[k])
	}
}

// computerNames sets each instance's Windows computer name.
func (l *loader) computerNames(d *vmDecl, insts []*Instance) {
	vm := d.vm
	if d.compNameSrc == nil {
		for _, in := range insts {
			in.ComputerName = defaultComputerName(vm.Name, in.Index, vm.CountSet)
		}
		return
	}
	expr := d.compNameSrc
	sc := scopeVM
	sc.count = vm.CountSet
	sc.countHint = "This vm does not set count, so there is no count.index. Add count = N, or remove the reference."
	usesIndex := false
	for _, t := range expr.Variables() {
		if t.RootName() == "count" {
			usesIndex = true
		}
	}
	byName := map[string]*Instance{}
	reported := false
	for _, in := range insts {
		ctx := l.vmCtx
		if vm.CountSet {
			ctx = l.vmCtx.NewChild()
			ctx.Variables = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(int64(in.Index))})}
		}
		s, ok := l.str(expr, ctx, sc, "computer_name")
		if !ok {
			in.ComputerName = defaultComputerName(vm.Name, in.Index, vm.CountSet)
			continue
		}
		if err := CheckComputerName(s); err != nil {
			which := ""
			if vm.CountSet {
				which = fmt.Sprintf(" (instance %s)", in.Name)
			}
			if !reported {
				l.errorf(expr.Range(), "Invalid computer name", "%s%s. Windows computer names have at most 15 letters, digits and hyphens, not only digits, and do not start or end with a hyphen.", upperFirst(err.Error()), which)
				reported = true
			}
			in.ComputerName = defaultComputerName(vm.Name, in.Index, vm.CountSet)
			continue
		}
		in.ComputerName = s
		if s == "*" {
			continue
		}
		if other, dup := byName[strings.ToUpper(s)]; dup {
			hint := ""
			if !usesIndex {
				hint = fmt.Sprintf(" Use count.index (1..%d) in it, like computer_name = \"%s-${count.index}\".", vm.Count, strings.ToUpper(truncateName(vm.Name, 12)))
			}
			l.errorf(expr.Range(), "Duplicate computer name", "Instances %q and %q both get the computer name %s; every instance needs its own.%s", other.Name, in.Name, s, hint)
			break
		}
		byName[strings.ToUpper(s)] = in
	}
	if !vm.CountSet || usesIndex {
		vm.Windows.ComputerName = ""
		if !vm.CountSet && len(insts) == 1 {
			vm.Windows.ComputerName = insts[0].ComputerName
		}
	}
}

func truncateName(s string, n int) string {
	if len(s) > n {
		return strings.TrimRight(s[:n], "-")
	}
	return s
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
