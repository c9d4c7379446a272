package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

func NewCmdImage(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build, list and delete golden images made from your own Windows 7 media",
		Long: `An image block in a profile describes a golden image: your Windows 7 ISO (checked
by SHA-256), extra media (drivers, agent, updates; directories are made into
ISOs), and steps to run before sysprep generalizes the system. "image build"
installs it in a temporary VM without any network, runs the steps and sysprep,
and registers the result as version N: a read-only volume
lvm-image-NAME-vN.qcow2 with its metadata lvm-image-NAME-vN.meta.json in the
image's storage pool. libvirt holds everything; there is no local state.

VMs clone an image by reference (disk { image = image.NAME }). A VM stays on
the version it was cloned from until you ask for a newer one (image_version =
"latest", or apply --image-update NAME). See docs/images.md.`,
	}
	cmd.AddCommand(NewCmdImageBuild(f, nil), NewCmdImageList(f, nil), NewCmdImageDelete(f, nil))
	return cmd
}

// selectImages picks the image blocks named (all when names is empty).
func selectImages(p *profiles.Profile, names []string) ([]*profiles.Image, error) {
	if len(names) == 0 {
		if len(p.Images) == 0 {
			return nil, fmt.Errorf("profile %s declares no image block", p.Name)
		}
		return p.Images, nil
	}
	var out []*profiles.Image
	for _, n := range names {
		var found *profiles.Image
		for _, im := range p.Images {
			if im.Name == n {
				found = im
			}
		}
		if found == nil {
			var all []string
			for _, im := range p.Images {
				all = append(all, im.Name)
			}
			return nil, fmt.Errorf("profile %s has no image block %q (it declares: %v)", p.Name, n, all)
		}
		out = append(out, found)
	}
	return out, nil
}

// cleanLeftovers removes what an interrupted build of im left, when no
// build of it runs (its lock is free), and says so on stderr. It returns
// whether a build is running.
func cleanLeftovers(ctx context.Context, f *Factory, e *orchestrator.Session, uri string, im *profiles.Image) (building bool, err error) {
	held, err := lock.Image(ctx, uri, im.Name, "image clean-up")
	if err != nil {
		return true, nil // a build holds it
	}
	defer held.Release()
	return false, removeLeftovers(ctx, f, e, im)
}

// removeLeftovers removes what an interrupted build of im left, saying
// what on stderr; the caller holds the image's lock.
func removeLeftovers(ctx context.Context, f *Factory, e *orchestrator.Session, im *profiles.Image) error {
	done, err := e.CleanImageLeftovers(ctx, im.Pool, im.Name)
	for _, d := range done {
		f.IO.Status("image %s: removed what an interrupted build left: %s", im.Name, d)
	}
	return err
}

// loadImages loads the profile at path and picks its image blocks named
// (all when names is empty).
func (f *Factory) loadImages(path string, names []string) (*profiles.Profile, []*profiles.Image, error) {
	p, err := f.loadProfile(path)
	if err != nil {
		return nil, nil, err
	}
	images, err := selectImages(p, names)
	if err != nil {
		return nil, nil, err
	}
	return p, images, nil
}

// connectImage connects to the host that holds im's pool and returns the
// connection and the host's URI.
func (f *Factory) connectImage(ctx context.Context, im *profiles.Image) (virt.Hypervisor, string, error) {
	uri := f.planOptions().HostURI(im.Host)
	hv, err := f.Connect(ctx, uri)
	if err != nil {
		return nil, "", fmt.Errorf("connect to %s: %w", uri, err)
	}
	return hv, uri, nil
}
