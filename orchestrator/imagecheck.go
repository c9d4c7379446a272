package orchestrator

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/profiles"
)

// checkGoldenImages checks, at plan time and for a libvirt daemon on this
// machine, the golden image of every vm of p that clones one: when the
// file exists it must be, after resolving symbolic links, a readable
// regular file outside the system directories (profiles.SystemPath) that
// starts like a disk image (a qcow2 header, or a raw disk's boot sector
// signature). A missing file is left to the checks that report it.
// Only the vms placed on host (all when nil) are checked. Problems are
// diagnostics at the image attribute. It reads the files observeHost
// observed.
func checkGoldenImages(p *profiles.Profile, host *profiles.Host, uri string, o *observation) hcl.Diagnostics {
	if !isLocalURI(uri) {
		return nil
	}
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	for _, vm := range p.VMs {
		if vm.Disk == nil || vm.Disk.Image == "" || seen[vm.Disk.Image] || (host != nil && vm.Host != nil && vm.Host.Name != host.Name) {
			continue
		}
		seen[vm.Disk.Image] = true
		rng := vm.Disk.ImageRange
		if rng.Filename == "" {
			rng = vm.Disk.DeclRange
		}
		if summary, detail := checkLocalImage(o.file(vm.Disk.Image), vm.Disk.Image); summary != "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
		}
	}
	return diags
}

var qcow2Magic = []byte{'Q', 'F', 'I', 0xfb}

// checkLocalImage returns a diagnostic summary and detail when path (whose
// observed state is f) is not usable as a golden image; "" when it is or
// does not exist.
func checkLocalImage(f localFile, path string) (summary, detail string) {
	if errors.Is(f.realErr, fs.ErrNotExist) {
		return "", ""
	}
	if f.realErr != nil {
		return "Golden image not readable", fmt.Sprintf("The file %s cannot be reached: %s. Make it and its directories readable.", path, pathErr(f.realErr))
	}
	if dir, bad := profiles.SystemPath(f.real); bad {
		return "Golden image in a system directory", fmt.Sprintf("%s leads to %s, under %s, which holds devices, kernel interfaces, configuration or boot files, not disk images. Keep golden images in a directory of their own, like /var/lib/libvirt/images.", path, f.real, dir)
	}
	switch {
	case f.statErr != nil:
		return "Golden image not readable", fmt.Sprintf("The file %s cannot be reached: %s.", path, pathErr(f.statErr))
	case !f.mode.IsRegular():
		return "Golden image is not a file", fmt.Sprintf("%s is not a regular file (%s). image must name a qcow2 or raw disk image file; legacyvm never gives a device or special file to a VM.", path, f.mode.Type())
	}
	if f.openErr != nil {
		return "Golden image not readable", fmt.Sprintf("The file %s exists but cannot be opened for reading: %s.", path, pathErr(f.openErr))
	}
	head, n := f.head, len(f.head)
	switch {
	case bytes.HasPrefix(head, qcow2Magic):
		return "", ""
	case n == 512 && head[510] == 0x55 && head[511] == 0xaa && f.size%512 == 0:
		return "", "" // a raw disk with a boot sector (MBR, or GPT's protective MBR)
	}
	return "Golden image is not a disk image", fmt.Sprintf("%s is neither a qcow2 image nor a raw disk with a boot sector. image must name a sysprepped Windows 7 disk image (qemu-img info %s shows what it is).", path, path)
}
