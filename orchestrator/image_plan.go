package orchestrator

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/profiles"
)

// checkImageRefs reports VMs whose image has no registered version to
// clone, or not the version they ask for.
func checkImageRefs(p *profiles.Profile, o *observation, updates []string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	reported := map[string]bool{}
	for _, vm := range p.VMs {
		d := vm.Disk
		if d == nil || d.ImageRef == nil {
			continue
		}
		im := d.ImageRef
		vers := o.ImageVersions[im.Name]
		_, n, _ := profiles.ParseImageVersion(d.ImageVersion)
		switch {
		case len(vers) == 0:
			if reported[im.Name] {
				continue
			}
			reported[im.Name] = true
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Image not built yet",
				Detail: fmt.Sprintf("vm %q clones image %q, but pool %s holds no registered version of it. Build it first: legacyvm image build %s %s",
					vm.Name, im.Name, im.Pool, p.Path, im.Name),
				Subject: d.DeclRange.Ptr()})
		case n > 0 && !slices.ContainsFunc(vers, func(v ImageVersion) bool { return v.Version == n }):
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Image version not registered",
				Detail: fmt.Sprintf("image_version asks for version %d of image %q, but pool %s holds %s. Pick one of those, or \"latest\" (legacyvm image list shows them).",
					n, im.Name, im.Pool, versionList(vers)),
				Subject: d.ImageVersionRange.Ptr()})
		}
	}
	for _, u := range updates {
		found := false
		for _, im := range p.Images {
			found = found || im.Name == u
		}
		if !found {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Unknown image in --image-update",
				Detail:  fmt.Sprintf("--image-update %s names no image block of profile %s.", u, p.Name)})
		}
	}
	return diags
}

func versionList(vers []ImageVersion) string {
	s := ""
	for i, v := range vers {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("v%d", v.Version)
	}
	return s
}

// resolveImageVersion picks the version a VM's disk clones: the one
// image_version names; the newest for "latest" or --image-update; else the
// one the existing VM was cloned from (pinned; NewerImage says when a newer
// one exists), or the newest for a new VM.
func resolveImageVersion(dv *desiredVM, in *profiles.Instance, t hostTarget, o *observation) {
	d := in.VM.Disk
	im := d.ImageRef
	dv.ImageName = im.Name
	var vers []ImageVersion
	if o != nil {
		vers = o.ImageVersions[im.Name]
	}
	if len(vers) == 0 {
		// checkImageRefs reported it; nothing can be cloned.
		dv.Image = fmt.Sprintf("(image %s: no registered version)", im.Name)
		return
	}
	latest := vers[len(vers)-1]
	pick := func(v ImageVersion) { dv.Image, dv.ImageVersion = v.Path, v.Version }
	wantLatest, n, _ := profiles.ParseImageVersion(d.ImageVersion)
	if slices.Contains(t.ImageUpdates, im.Name) {
		wantLatest = true
	}
	switch {
	case n > 0:
		for _, v := range vers {
			if v.Version == n {
				pick(v)
				return
			}
		}
		pick(latest) // checkImageRefs reported it
		return
	case wantLatest:
		pick(latest)
		return
	}
	if od, ok := o.Domains[in.Name]; ok && od.Metadata != nil && od.Metadata.ImageName == im.Name {
		for _, v := range vers {
			if v.Version == od.Metadata.ImageVersion {
				pick(v)
				if latest.Version > v.Version {
					dv.NewerImage = latest.Version
				}
				return
			}
		}
	}
	pick(latest)
}

// checkImageSources warns, at plan time and for a local host, about image
// blocks whose source ISO is missing or unreadable: VMs can still clone
// versions already built, but the next image build would fail. (The
// checksum is compared by image build, which reads the whole ISO.)
func checkImageSources(p *profiles.Profile, h *profiles.Host, uri string, o *observation) hcl.Diagnostics {
	if !isLocalURI(uri) {
		return nil
	}
	var diags hcl.Diagnostics
	for _, im := range p.Images {
		if im.Host != h || im.Source.ISO == "" {
			continue
		}
		if summary, detail := checkLocalISO(o.file(im.Source.ISO), im.Source.ISO, uri); summary != "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning,
				Summary: "Image source: " + summary,
				Detail:  detail + fmt.Sprintf(" VMs can still clone the versions of image %q already built; legacyvm image build would fail.", im.Name),
				Subject: im.Source.ISORange.Ptr()})
		}
	}
	return diags
}
