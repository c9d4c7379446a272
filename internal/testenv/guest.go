package testenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

//go:embed guest/build.sh
var buildScript []byte

//go:embed guest/init.sh
var initScript []byte

// guestFormat changes whenever the Go side of the build (the installer ISO
// layout below) changes, so old cache entries are not reused.
const guestFormat = "installer-iso-v2"

// CacheEnv overrides the cache root (default $HOME/.cache/legacyvm).
const CacheEnv = "LEGACYVM_CACHE"

// InstallerLabel is the volume label of GuestImages.Installer.
const InstallerLabel = "LEGACYVM-STANDIN"

// GuestImages are the stand-in guest's files. They are shared by every test
// of every process: never write to them, use GoldenCopy or a qcow2 overlay.
// All paths are readable by the QEMU user.
type GuestImages struct {
	// Disk is the BIOS-bootable qcow2 system disk (SeaBIOS -> syslinux ->
	// Linux) that boots from IDE, SATA or virtio; the golden image for
	// overlays.
	Disk string
	// Vmlinux (uncompressed, PVH) and Initrd are for direct kernel boot
	// (<kernel>, <initrd>, <cmdline>): the fastest boot under TCG.
	Vmlinux string
	Initrd  string
	// Cmdline is the kernel command line the disk boots with (console on
	// ttyS0, TCG boot tuning); use it as the base of <cmdline>.
	Cmdline string
	// Installer is a bootable ISO (El Torito, isolinux) labelled
	// LEGACYVM-STANDIN that boots the same kernel with rig.answercd=1
	// rig.install=1: the stand-in for a Windows installation DVD. It copies
	// the stand-in system to the first empty disk, reports the answer
	// file's ComputerName and powers off.
	Installer string
	// Busybox is a static busybox for the host side of tests, e.g.
	// env.Run(ctx, g.Busybox, "ping", "-c1", ip) (the host need not have
	// ping or nc).
	Busybox string
	// Dir holds all of the above plus manifest.txt.
	Dir string
}

// GuestOptions tune BuildGuest. The zero value is what tests use.
type GuestOptions struct {
	// CacheDir is the cache root (default: $LEGACYVM_CACHE, else
	// $HOME/.cache/legacyvm).
	CacheDir string
	// Logf receives the build's progress (nil: silent).
	Logf func(format string, args ...any)
}

// CacheRoot returns the cache root BuildGuest uses by default.
func CacheRoot() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "legacyvm")
}

// BuildGuest returns the stand-in guest, building it once per set of build
// inputs (the scripts in guest/, the Debian kernel and busybox versions,
// the host's isolinux): cache entry <root>/guest-<hash>. Concurrent callers
// (other test binaries) wait on a flock for the one that builds.
func BuildGuest(ctx context.Context, opts GuestOptions) (*GuestImages, error) {
	root := opts.CacheDir
	if root == "" {
		root = CacheRoot()
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	for _, c := range []string{"apt-get", "apt-cache", "dpkg-deb", "qemu-img", "mkfs.fat", "mcopy", "syslinux", "xz", "readelf"} {
		if _, err := exec.LookPath(c); err != nil {
			return nil, fmt.Errorf("build stand-in guest: missing command %s (packages: qemu-utils dosfstools mtools syslinux syslinux-common isolinux xz-utils binutils)", c)
		}
	}
	key, err := guestKey(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("guest cache %q: %w", root, err)
	}
	dir := filepath.Join(root, "guest-"+key)
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("guest cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("guest cache lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		logf("testenv: building stand-in guest in %s", dir)
		if err := buildGuestDir(ctx, root, dir, logf); err != nil {
			return nil, err
		}
	}
	pub, err := publish(dir, key)
	if err != nil {
		return nil, err
	}
	cmdline, err := os.ReadFile(filepath.Join(pub, "cmdline.txt"))
	if err != nil {
		return nil, fmt.Errorf("stand-in guest: %w", err)
	}
	return &GuestImages{
		Disk:      filepath.Join(pub, "guest.qcow2"),
		Vmlinux:   filepath.Join(pub, "vmlinux"),
		Initrd:    filepath.Join(pub, "initrd.img"),
		Cmdline:   strings.TrimSpace(string(cmdline)),
		Installer: filepath.Join(pub, "installer.iso"),
		Busybox:   filepath.Join(pub, "busybox"),
		Dir:       pub,
	}, nil
}

// guestKey hashes the build inputs.
func guestKey(ctx context.Context) (string, error) {
	h := sha256.New()
	for _, b := range [][]byte{buildScript, initScript, []byte(guestFormat)} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	kpkg := os.Getenv("LEGACYVM_GUEST_KERNEL")
	if kpkg == "" {
		out, err := exec.CommandContext(ctx, "apt-cache", "depends", "linux-image-amd64").Output()
		if err != nil {
			return "", fmt.Errorf("resolve guest kernel package: apt-cache depends linux-image-amd64: %w (run apt-get update)", err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
				kpkg = f[1]
				break
			}
		}
		if kpkg == "" {
			return "", errors.New("resolve guest kernel package: linux-image-amd64 depends on no linux-image-* (run apt-get update)")
		}
	}
	// The versions of every package build.sh downloads (keep in step with
	// its AGENT_PKGS and the nc.udp probe).
	pkgs := append([]string{"show", "--no-all-versions", kpkg, "busybox-static", "netcat-traditional"}, agentPackages...)
	out, err := exec.CommandContext(ctx, "apt-cache", pkgs...).Output()
	if err != nil {
		return "", fmt.Errorf("resolve guest package versions: %w (run apt-get update)", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Package:") || strings.HasPrefix(l, "Version:") {
			fmt.Fprintln(h, l)
		}
	}
	for _, f := range isolinuxFiles {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return "", fmt.Errorf("installer ISO needs %s (package %s): %w", f.src, f.pkg, err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// agentPackages are the Debian packages of the guest agent and the
// libraries it loads (build.sh's AGENT_PKGS).
var agentPackages = []string{"qemu-guest-agent", "libc6", "libglib2.0-0", "libpcre2-8-0", "libnuma1", "libudev1", "liburing2"}

var isolinuxFiles = []struct{ src, dst, pkg string }{
	{"/usr/lib/ISOLINUX/isolinux.bin", "ISOLINUX/ISOLINUX.BIN", "isolinux"},
	{"/usr/lib/syslinux/modules/bios/ldlinux.c32", "ISOLINUX/LDLINUX.C32", "syslinux-common"},
}

func buildGuestDir(ctx context.Context, root, dir string, logf func(string, ...any)) error {
	tmp, err := os.MkdirTemp(root, filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("build stand-in guest: %w", err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "src")
	out := filepath.Join(tmp, "out")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fmt.Errorf("build stand-in guest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(src, "build.sh"), buildScript, 0o755); err != nil {
		return fmt.Errorf("build stand-in guest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(src, "init.sh"), initScript, 0o755); err != nil {
		return fmt.Errorf("build stand-in guest: %w", err)
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(src, "build.sh"), out)
	cmd.Env = append(os.Environ(), "LEGACYVM_GUEST_DL="+filepath.Join(root, "debs"))
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build stand-in guest: build.sh: %w\n%s", err, log.String())
	}
	logf("%s", strings.TrimSpace(log.String()))
	if err := buildInstallerISO(out); err != nil {
		return err
	}
	for _, f := range []string{"standin.img", "vmlinuz", "initrd.img.gz"} {
		_ = os.Remove(filepath.Join(out, f)) // kept inside guest.qcow2 / installer.iso
	}
	if err := os.WriteFile(filepath.Join(out, "complete"), nil, 0o644); err != nil {
		return fmt.Errorf("build stand-in guest: %w", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(out, dir); err != nil {
		return fmt.Errorf("build stand-in guest: %w", err)
	}
	return nil
}

// buildInstallerISO writes out/installer.iso: isolinux booting vmlinuz +
// initrd with rig.answercd=1 rig.install=1, and STANDIN.GZ, the system disk
// that the guest's init copies to an empty disk.
func buildInstallerISO(out string) error {
	ws, err := os.MkdirTemp(out, ".iso-")
	if err != nil {
		return fmt.Errorf("installer ISO: %w", err)
	}
	defer os.RemoveAll(ws)
	if err := os.Mkdir(filepath.Join(ws, "ISOLINUX"), 0o755); err != nil {
		return fmt.Errorf("installer ISO: %w", err)
	}
	for _, f := range isolinuxFiles {
		if err := CopyFile(f.src, filepath.Join(ws, f.dst), 0o644); err != nil {
			return fmt.Errorf("installer ISO: %w", err)
		}
	}
	cmdline, err := os.ReadFile(filepath.Join(out, "cmdline.txt"))
	if err != nil {
		return fmt.Errorf("installer ISO: %w", err)
	}
	cfg := fmt.Sprintf("DEFAULT standin\nPROMPT 0\nTIMEOUT 0\nLABEL standin\n  KERNEL /VMLINUZ\n  INITRD /INITRD.GZ\n  APPEND %s rig.answercd=1 rig.install=1\n",
		strings.TrimSpace(string(cmdline)))
	if err := os.WriteFile(filepath.Join(ws, "ISOLINUX", "ISOLINUX.CFG"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("installer ISO: %w", err)
	}
	for src, dst := range map[string]string{"vmlinuz": "VMLINUZ", "initrd.img.gz": "INITRD.GZ"} {
		if err := CopyFile(filepath.Join(out, src), filepath.Join(ws, dst), 0o644); err != nil {
			return fmt.Errorf("installer ISO: %w", err)
		}
	}
	if err := gzipFile(filepath.Join(out, "standin.img"), filepath.Join(ws, "STANDIN.GZ")); err != nil {
		return fmt.Errorf("installer ISO: %w", err)
	}
	readme := "legacyvm stand-in installer: a tiny Linux that imitates an operating system installation for legacyvm's tests.\n"
	if err := os.WriteFile(filepath.Join(ws, "README.TXT"), []byte(readme), 0o644); err != nil {
		return fmt.Errorf("installer ISO: %w", err)
	}
	err = WriteISO(filepath.Join(out, "installer.iso"), ws, InstallerLabel, &iso9660.ElTorito{
		BootCatalog: "/ISOLINUX/BOOT.CAT",
		Entries: []*iso9660.ElToritoEntry{{
			Platform:  iso9660.BIOS,
			Emulation: iso9660.NoEmulation,
			BootFile:  "/ISOLINUX/ISOLINUX.BIN",
			BootTable: true,
		}},
	})
	if err != nil {
		return fmt.Errorf("installer ISO: %w", err)
	}
	return nil
}

// WriteISO writes the directory tree src as an ISO9660 image with Joliet
// names (what Windows Setup reads) to dst, bootable when boot is non-nil.
// Tests use it to make answer media.
func WriteISO(dst, src, label string, boot *iso9660.ElTorito) error {
	if boot != nil {
		for _, e := range boot.Entries {
			if e.BootTable {
				e.SetLoadSize(4) // isolinux: load 2 KiB, like genisoimage -boot-load-size 4
			}
		}
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("write ISO %q: %w", dst, err)
	}
	defer f.Close()
	isofs, err := iso9660.Create(file.New(f, false), 0, 0, 2048, src)
	if err != nil {
		return fmt.Errorf("write ISO %q: %w", dst, err)
	}
	if err := isofs.Finalize(iso9660.FinalizeOptions{
		Joliet:           true,
		VolumeIdentifier: label,
		ElTorito:         boot,
	}); err != nil {
		return fmt.Errorf("write ISO %q: %w", dst, err)
	}
	if boot != nil {
		if err := bootRecordFirst(f); err != nil {
			return fmt.Errorf("write ISO %q: %w", dst, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write ISO %q: %w", dst, err)
	}
	return nil
}

// bootRecordFirst moves the El Torito boot record volume descriptor to
// sector 17, where BIOSes (SeaBIOS among them) look for it; go-diskfs puts
// the Joliet descriptor there. Volume descriptors are self-contained, so
// swapping two of them keeps the image valid.
func bootRecordFirst(f *os.File) error {
	const sector = 2048
	buf := make([]byte, sector)
	for s := int64(17); s < 16+8; s++ {
		if _, err := f.ReadAt(buf, s*sector); err != nil {
			return fmt.Errorf("read volume descriptor %d: %w", s, err)
		}
		if string(buf[1:6]) != "CD001" || buf[0] == 255 {
			return errors.New("no El Torito boot record before the descriptor set terminator")
		}
		if buf[0] != 0 {
			continue
		}
		if s == 17 {
			return nil
		}
		other := make([]byte, sector)
		if _, err := f.ReadAt(other, 17*sector); err != nil {
			return fmt.Errorf("read volume descriptor 17: %w", err)
		}
		if _, err := f.WriteAt(buf, 17*sector); err != nil {
			return fmt.Errorf("write volume descriptor 17: %w", err)
		}
		if _, err := f.WriteAt(other, s*sector); err != nil {
			return fmt.Errorf("write volume descriptor %d: %w", s, err)
		}
		return nil
	}
	return errors.New("no El Torito boot record")
}

// publish returns a directory with dir's files that the QEMU user can read:
// dir itself when every parent is traversable by others, otherwise a
// hard-linked (or copied) mirror in the temp dir.
func publish(dir, key string) (string, error) {
	if err := chmodTree(dir); err != nil {
		return "", err
	}
	if traversable(dir) {
		return dir, nil
	}
	pub := filepath.Join(os.TempDir(), "legacyvm-guest-"+key)
	if _, err := os.Stat(filepath.Join(pub, "complete")); err == nil {
		return pub, nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "legacyvm-guest-"+key+".tmp-")
	if err != nil {
		return "", fmt.Errorf("publish stand-in guest: %w", err)
	}
	defer os.RemoveAll(tmp)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("publish stand-in guest: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "complete" {
			continue
		}
		s, d := filepath.Join(dir, e.Name()), filepath.Join(tmp, e.Name())
		if err := os.Link(s, d); err != nil {
			if err := CopyFile(s, d, 0o644); err != nil {
				return "", fmt.Errorf("publish stand-in guest: %w", err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		return "", fmt.Errorf("publish stand-in guest: %w", err)
	}
	if err := chmodTree(tmp); err != nil {
		return "", err
	}
	_ = os.RemoveAll(pub)
	if err := os.Rename(tmp, pub); err != nil {
		return "", fmt.Errorf("publish stand-in guest: %w", err)
	}
	return pub, nil
}

// chmodTree makes dir 0755 and its regular files 0644 (read-only for QEMU,
// which only ever reads the shared images).
func chmodTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() || d.Name() == "busybox" {
			mode = 0o755
		}
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("stand-in guest: %w", err)
		}
		return nil
	})
}

// traversable reports whether every directory from / to dir has the
// execute bit for others.
func traversable(dir string) bool {
	p, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(p)
		if parent == p {
			return true
		}
		p = parent
	}
}

// CopyFile copies src to a new or truncated dst with the given mode.
func CopyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return fmt.Errorf("gzip %s: %w", src, err)
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return fmt.Errorf("gzip %s: %w", src, err)
	}
	return out.Close()
}

// GoldenCopy copies the golden disk into dir (a PoolDir, for instance) and
// returns the copy's path. Use it when libvirt must own the file (it
// chowns disks it uses); the copy is private to the caller.
func (g *GuestImages) GoldenCopy(t testing.TB, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, fmt.Sprintf("golden-%s.qcow2", sanitize(t.Name())))
	if err := CopyFile(g.Disk, dst, 0o644); err != nil {
		t.Fatalf("copy golden disk: %v", err)
	}
	return dst
}
