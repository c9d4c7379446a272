package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// AccelEnv forces the accelerator for tests: "tcg" (or "qemu") or "kvm".
const AccelEnv = "LEGACYVM_TEST_ACCEL"

// accelFromEnv maps an explicit choice (option, else AccelEnv) to a domain
// type; "" means detect.
func accelFromEnv(opt string) (string, error) {
	v := opt
	if v == "" {
		v = os.Getenv(AccelEnv)
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return "", nil
	case "tcg", "qemu":
		return "qemu", nil
	case "kvm":
		return "kvm", nil
	}
	return "", fmt.Errorf("%s=%q: want tcg or kvm", AccelEnv, v)
}

// accelProbeFile caches the probe verdict until the next reboot (it lives
// on /run): the probe costs up to probeTimeout when KVM hangs.
func accelProbeFile() string { return filepath.Join(stateDir, "accel-probe") }

const probeTimeout = 12 * time.Second

// DetectAccel decides whether domains of this host can use KVM ("kvm") or
// must use TCG ("qemu"). libvirt must offer the kvm domain type, and the
// stand-in guest must really boot under KVM: on some nested hosts /dev/kvm
// exists but hangs or aborts an ordinary kernel. The probe boots the guest
// kernel under QEMU with -accel kvm directly (no network, inside e's
// namespace) once per boot of the host; the verdict is cached in /run.
func DetectAccel(ctx context.Context, e *Env) (string, error) {
	if _, err := os.Stat(kvmDevice); err != nil {
		return "qemu", nil
	}
	if _, err := e.Virsh(ctx, "domcapabilities", "--virttype", "kvm", "--arch", "x86_64", "--machine", "pc"); err != nil {
		return "qemu", nil
	}
	if b, err := os.ReadFile(accelProbeFile()); err == nil {
		if v := strings.TrimSpace(string(b)); v == "kvm" || v == "qemu" {
			return v, nil
		}
	}
	g, err := BuildGuest(ctx, GuestOptions{})
	if err != nil {
		return "", fmt.Errorf("accelerator probe needs the stand-in guest: %w", err)
	}
	verdict := "qemu"
	if probeKVM(ctx, e, g) == nil {
		verdict = "kvm"
	}
	_ = os.WriteFile(accelProbeFile(), []byte(verdict+"\n"), 0o644)
	return verdict, nil
}

var probeDone = regexp.MustCompile(`RIG poweroff`)

// probeKVM boots the guest kernel with -accel kvm and waits for it to power
// itself off.
func probeKVM(ctx context.Context, e *Env, g *GuestImages) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	serial := filepath.Join(e.Dir, "kvm-probe.serial")
	args := []string{"netns", "exec", e.NetNS, "qemu-system-x86_64",
		"-accel", "kvm", "-machine", "pc", "-m", "256", "-nodefaults", "-no-reboot",
		"-display", "none", "-monitor", "none", "-net", "none",
		"-serial", "file:" + serial,
		"-kernel", g.Vmlinux, "-initrd", g.Initrd,
		"-append", "console=ttyS0 quiet panic=-1 rig.ip=none rig.listen=0 rig.control=0 rig.halt=1",
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	out, err := cmd.CombinedOutput()
	log, _ := os.ReadFile(serial)
	if probeDone.Match(log) {
		return nil
	}
	if err == nil {
		err = errors.New("guest did not power off")
	}
	return fmt.Errorf("kvm probe: %w: %s", err, strings.TrimSpace(string(out)))
}
