package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/lock"
)

// ImageDeleteOptions are the inputs of `legacyvm image delete`.
type ImageDeleteOptions struct {
	Factory *Factory
	Path    string
	Name    string
	Version int
}

func NewCmdImageDelete(f *Factory, runF func(*ImageDeleteOptions) error) *cobra.Command {
	opts := &ImageDeleteOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "delete PATH NAME",
		Short: "Delete registered versions of an image",
		Long: `Delete removes version --version of image NAME (every version without it): its
disk volume and its metadata volume. A version that VMs are cloned from
(linked clones are overlays of it) is refused, listing those VMs; nothing is
deleted then. Destroy the VMs, or move them to another version first (apply
--image-update NAME).`,
		Example: `  legacyvm image delete examples/golden-image w7pro --version 2
  legacyvm image delete -o json examples/golden-image w7pro --version 2`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path, opts.Name = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			return imageDeleteRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Version, "version", 0, "the version to delete (default: all)")
	return cmd
}

func imageDeleteRun(ctx context.Context, opts *ImageDeleteOptions) error {
	f := opts.Factory
	_, images, err := f.loadImages(opts.Path, []string{opts.Name})
	if err != nil {
		return err
	}
	im := images[0]
	hv, uri, err := f.connectImage(ctx, im)
	if err != nil {
		return err
	}
	defer hv.Close()
	held, err := lock.Image(ctx, uri, im.Name, "image delete")
	if err != nil {
		return fmt.Errorf("image %s: a build of it runs: %w", im.Name, err)
	}
	defer held.Release()
	e := f.engine(hv)
	if err := removeLeftovers(ctx, f, e, im); err != nil {
		return err
	}
	del, err := e.DeleteImage(ctx, im.Pool, im.Name, opts.Version)
	if err != nil {
		return err
	}
	if f.JSON() {
		return writeJSON(f, imageDeleteDoc{docHeader: v1, Deleted: imageVersionsToJSON(del)})
	}
	for _, v := range del {
		fmt.Fprintf(f.IO.Out, "Deleted image %s version %d (%s).\n", v.Name, v.Version, v.Volume)
	}
	return nil
}
