package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

// ImageDeleteOptions are the inputs of `legacyvm image delete`.
type ImageDeleteOptions struct {
	Path    string
	Name    string
	Version int
}

func newCmdImageDelete(f *Factory) *cobra.Command {
	opts := &ImageDeleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete PATH NAME",
		Short: "Delete registered versions of an image",
		Long: `Delete removes version --version of image NAME (every version without it): its
disk volume and its metadata volume. A version that VMs are cloned from
(linked clones are overlays of it) is refused, listing those VMs; nothing is
deleted then. Destroy the VMs, or move them to another version first (apply
--image-update NAME).`,
		Example: `  legacyvm image delete examples/golden-image w7pro --version 1
  legacyvm image delete examples/golden-image w7pro`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path, opts.Name = args[0], args[1]
			return imageDeleteRun(cmd, f, opts)
		},
	}
	cmd.Flags().IntVar(&opts.Version, "version", 0, "the version to delete (default: all)")
	return cmd
}

func imageDeleteRun(cmd *cobra.Command, f *Factory, opts *ImageDeleteOptions) error {
	ctx := cmd.Context()
	p, err := f.loadProfile(opts.Path)
	if err != nil {
		return err
	}
	images, err := selectImages(p, []string{opts.Name})
	if err != nil {
		return err
	}
	im := images[0]
	uri := orchestrator.HostURI(im.Host, f.planOptions())
	hv, err := f.Connect(ctx, uri)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", uri, err)
	}
	defer hv.Close()
	lock, err := orchestrator.LockImage(ctx, uri, im.Name, "image delete")
	if err != nil {
		return fmt.Errorf("image %s: a build of it runs: %w", im.Name, err)
	}
	defer lock.Release()
	e := f.engine(hv)
	done, err := e.CleanImageLeftovers(ctx, im.Pool, im.Name)
	for _, d := range done {
		f.IO.Status("image %s: removed what an interrupted build left: %s", im.Name, d)
	}
	if err != nil {
		return err
	}
	del, err := e.DeleteImage(ctx, im.Pool, im.Name, opts.Version)
	if err != nil {
		return err
	}
	if f.JSON() {
		return writeJSON(f, del)
	}
	for _, v := range del {
		fmt.Fprintf(f.IO.Out, "Deleted image %s version %d (%s).\n", v.Name, v.Version, v.Volume)
	}
	return nil
}
