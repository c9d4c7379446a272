package virttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
)

// probeOffset is where QemuWriteDisk writes: 48 MiB into the image, past
// the stand-in guest's 24 MiB boot filesystem and inside the suite's 64 MiB
// overlays.
const probeOffset = 48 << 20

var probeValue atomic.Uint32

// QemuWriteDisk is a Harness.WriteDisk for real qcow2 images: it writes a
// 4 KiB block of a new byte value with qemu-io (the image must not be in
// use) and returns the value as the token.
func QemuWriteDisk(ctx context.Context, path string) (string, error) {
	v := probeValue.Add(1)%254 + 1
	cmd := fmt.Sprintf("write -P %d %d 4k", v, probeOffset)
	if out, err := exec.CommandContext(ctx, "qemu-io", "-f", "qcow2", "-c", cmd, path).CombinedOutput(); err != nil {
		return "", fmt.Errorf("qemu-io %s %s: %w: %s", cmd, path, err, out)
	}
	return strconv.Itoa(int(v)), nil
}

// QemuReadDisk is a Harness.ReadDisk for real qcow2 images: the byte value
// at the probe offset (0 where nothing was written), read with qemu-io
// without taking the image lock.
func QemuReadDisk(ctx context.Context, path string) (string, error) {
	cmd := fmt.Sprintf("read -v %d 1", probeOffset)
	out, err := exec.CommandContext(ctx, "qemu-io", "-f", "qcow2", "-r", "-U", "-c", cmd, path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("qemu-io %s %s: %w: %s", cmd, path, err, out)
	}
	// "03000000:  2a  *" : offset, then the bytes in hex.
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasSuffix(f[0], ":") {
			b, err := strconv.ParseUint(f[1], 16, 8)
			if err != nil {
				return "", fmt.Errorf("qemu-io read %s: unexpected output %q", path, line)
			}
			return strconv.Itoa(int(b)), nil
		}
	}
	return "", fmt.Errorf("qemu-io read %s: no data in %q", path, out)
}

// QemuInternalSnapshots is a Harness.InternalSnapshots for real qcow2
// images (qemu-img info, without taking the image lock).
func QemuInternalSnapshots(ctx context.Context, path string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "-U", "--output=json", path).Output()
	if err != nil {
		return nil, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	var info struct {
		Snapshots []struct {
			Name string `json:"name"`
		} `json:"snapshots"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&info); err != nil {
		return nil, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	names := []string{}
	for _, s := range info.Snapshots {
		names = append(names, s.Name)
	}
	return names, nil
}
