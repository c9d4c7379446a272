package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/lock"
	"github.com/legacyvm/legacyvm/orchestrator"
)

// ImageBuildOptions are the inputs of `legacyvm image build`.
type ImageBuildOptions struct {
	Factory *Factory
	Path    string
	Names   []string
	Timeout time.Duration
}

func NewCmdImageBuild(f *Factory, runF func(*ImageBuildOptions) error) *cobra.Command {
	opts := &ImageBuildOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "build [PATH] [NAME...]",
		Short: "Build the next version of an image block",
		Long: `Build installs Windows 7 from the image block's source ISO in a temporary VM
(lvm-build-NAME) that has no network interface, with a generated answer file
that holds no product key: setup, extra media attached as CD-ROMs, the steps,
then sysprep /generalize /oobe /shutdown. Progress shows the phase the guest
reports on its serial console and the time elapsed. When the guest has
generalized and powered off, the disk is copied to the read-only volume
lvm-image-NAME-vN.qcow2 (mode 0444) and its metadata (edition, architecture,
source ISO checksum, build time, legacyvm version, content checksum) is
written to lvm-image-NAME-vN.meta.json: only then is version N registered.

A build that fails, times out (--timeout, default the block's timeout) or is
interrupted removes the build VM and every volume it made, registers
nothing, and names the phase that failed with the last lines of the guest's
serial console. After a build killed outright, the next image command
removes what it left. Without NAME, every image block of the profile is
built, one after the other.`,
		Example: `  legacyvm image build examples/golden-image w7pro
  legacyvm image build --timeout 4h examples/golden-image
  legacyvm image build -o json examples/golden-image w7pro | jq '.versions[].version'`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = pathArg(args)
			if len(args) > 1 {
				opts.Names = args[1:]
			}
			if runF != nil {
				return runF(opts)
			}
			return imageBuildRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 0, "give up after this long (default: the image block's timeout, 3h)")
	return cmd
}

func imageBuildRun(ctx context.Context, opts *ImageBuildOptions) error {
	f := opts.Factory
	p, images, err := f.loadImages(opts.Path, opts.Names)
	if err != nil {
		return err
	}
	var built []*orchestrator.ImageVersion
	for _, im := range images {
		hv, uri, err := f.connectImage(ctx, im)
		if err != nil {
			return err
		}
		err = func() error {
			defer hv.Close()
			held, err := lock.Image(ctx, uri, im.Name, "image build")
			if err != nil {
				return fmt.Errorf("image %s: another build of it runs: %w", im.Name, err)
			}
			defer held.Release()
			e := f.engine(hv)
			if err := removeLeftovers(ctx, f, e, im); err != nil {
				return err
			}
			v, err := e.BuildImage(ctx, im, orchestrator.BuildOptions{
				Profile: p.Name, URI: uri, SerialLogDir: f.planOptions().SerialLogDir,
				Timeout: opts.Timeout, LegacyvmVersion: version,
			})
			if err != nil {
				return err
			}
			built = append(built, v)
			if !f.JSON() {
				fmt.Fprintf(f.IO.Out, "Built image %s version %d: %s in pool %s (read-only, %s), content sha256 %s.\n",
					v.Name, v.Version, v.Volume, v.Pool, v.Mode, v.Meta.ContentSHA256)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	if f.JSON() {
		doc := imageVersionsDoc{docHeader: v1, Versions: []imageVersionJSON{}}
		for _, v := range built {
			doc.Versions = append(doc.Versions, imageVersionToJSON(*v))
		}
		return writeJSON(f, doc)
	}
	return nil
}
