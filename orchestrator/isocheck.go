package orchestrator

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// checkInstallISOs checks, at plan time, the Windows ISO of every vm of p
// that installs from media: for a local URI the file must exist, be a
// non-empty regular file and open for reading; for a remote URI libvirt
// must know it as a volume (a pool lookup; the storage pool legacyvm
// creates for the ISO's directory must, when it exists, contain the file).
// Problems are diagnostics at the iso attribute. It reads what observeHost
// observed (o.Images, the image pools, the local files); the error is a
// pool lookup that failed.
func checkInstallISOs(p *profiles.Profile, uri string, o *observation) (hcl.Diagnostics, error) {
	local := isLocalURI(uri)
	var diags hcl.Diagnostics
	for _, vm := range p.VMs {
		if vm.Disk == nil || vm.Disk.Install == nil || vm.Disk.Install.ISO == "" {
			continue
		}
		in := vm.Disk.Install
		rng := in.ISORange
		if rng.Empty() && rng.Filename == "" {
			rng = in.DeclRange
		}
		if local {
			if summary, detail := checkLocalISO(o.file(in.ISO), in.ISO, uri); summary != "" {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
			}
			continue
		}
		if _, ok := o.Images[in.ISO]; ok {
			continue
		}
		dir := filepath.Dir(in.ISO)
		pool, look := o.imagePool(dir)
		switch err := look.err; {
		case err == nil:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Installation ISO not found on the host",
				Detail: fmt.Sprintf("The host %s has no file %s: the storage pool %s that legacyvm made for %s does not contain it. Copy your Windows 7 ISO there (then virsh pool-refresh %s), or correct the path.",
					uri, in.ISO, pool, dir, pool),
				Subject: rng.Ptr()})
		case errors.Is(err, virt.ErrNotFound):
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning,
				Summary: "Installation ISO not checked yet",
				Detail: fmt.Sprintf("No storage pool on %s shows the directory %s, so plan cannot tell whether %s is there. Apply first creates the storage pool %s for that directory and stops with an error if the ISO is missing.",
					uri, dir, in.ISO, pool),
				Subject: rng.Ptr()})
		default:
			return diags, fmt.Errorf("look up storage pool %s for %s: %w", pool, in.ISO, err)
		}
	}
	return diags, nil
}

// checkLocalISO returns a diagnostic summary and detail when path (whose
// observed state is f) is not a readable, non-empty regular file; "" when
// it is.
func checkLocalISO(f localFile, path, uri string) (summary, detail string) {
	where := fmt.Sprintf("%s is a libvirt daemon on this machine, so QEMU reads the ISO from this machine's file system", uri)
	if f.realErr == nil {
		if dir, bad := profiles.SystemPath(f.real); bad {
			return "Installation ISO in a system directory", fmt.Sprintf("%s leads to %s, under %s, which holds devices, kernel interfaces, configuration or boot files: legacyvm never gives such a file to a VM. Give the path of the .iso file of your Windows 7 installation media.", path, f.real, dir)
		}
	}
	err := f.statErr
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "Installation ISO not found", fmt.Sprintf("The file %s does not exist (%s). Correct iso, or copy your Windows 7 installation ISO there.", path, where)
	case err != nil:
		return "Installation ISO not readable", fmt.Sprintf("The file %s cannot be reached: %s. Make it and its directories readable.", path, pathErr(err))
	case f.mode.IsDir():
		return "Installation ISO is a directory", fmt.Sprintf("%s is a directory. iso must name the .iso file of your Windows 7 installation media, not its unpacked contents.", path)
	case !f.mode.IsRegular():
		return "Installation ISO is not a file", fmt.Sprintf("%s is not a regular file. Give the path of the .iso file of your Windows 7 installation media.", path)
	case f.size == 0:
		return "Installation ISO is empty", fmt.Sprintf("%s is an empty file (an interrupted copy or download?). Copy your Windows 7 installation ISO again.", path)
	}
	if f.openErr != nil {
		return "Installation ISO not readable", fmt.Sprintf("The file %s exists but cannot be opened for reading: %s. Make it readable (chmod a+r %s).", path, pathErr(f.openErr), path)
	}
	return "", ""
}

// pathErr is the reason of a *fs.PathError without the repeated path.
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
