package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/orchestrator"
)

// ImageListOptions are the inputs of `legacyvm image list`.
type ImageListOptions struct {
	Factory *Factory
	Path    string
	Names   []string
}

func NewCmdImageList(f *Factory, runF func(*ImageListOptions) error) *cobra.Command {
	opts := &ImageListOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "list [PATH] [NAME...]",
		Short: "List the registered versions of a profile's images",
		Long: `List shows every registered version of the profile's image blocks (or of the
ones named): version, build time, edition and architecture, the source ISO's
checksum, the content checksum, the file mode (0444: read-only) and the VMs
cloned from it. Versions are read from libvirt (the image volumes and their
metadata volumes). What an interrupted build left is removed first.`,
		Example: `  legacyvm image list examples/golden-image
  legacyvm image list -o json examples/golden-image w7pro | jq '.versions[] | {version, used_by}'`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = pathArg(args)
			if len(args) > 1 {
				opts.Names = args[1:]
			}
			if runF != nil {
				return runF(opts)
			}
			return imageListRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func imageListRun(ctx context.Context, opts *ImageListOptions) error {
	f := opts.Factory
	_, images, err := f.loadImages(opts.Path, opts.Names)
	if err != nil {
		return err
	}
	all := []orchestrator.ImageVersion{}
	var building []string
	for _, im := range images {
		hv, uri, err := f.connectImage(ctx, im)
		if err != nil {
			return err
		}
		e := f.engine(hv)
		b, err := cleanLeftovers(ctx, f, e, uri, im)
		if err == nil {
			var inv *orchestrator.ImageInventory
			inv, err = e.ListImages(ctx, im.Pool, im.Name)
			if err == nil {
				all = append(all, inv.Versions...)
				if b && len(inv.Building) > 0 {
					building = append(building, im.Name)
				}
			}
		}
		hv.Close()
		if err != nil {
			return err
		}
	}
	for _, b := range building {
		f.IO.Status("image %s: a build is running", b)
	}
	if f.JSON() {
		return writeJSON(f, imageVersionsDoc{docHeader: v1, Versions: imageVersionsToJSON(all)})
	}
	if len(all) == 0 {
		fmt.Fprintln(f.IO.Out, "No image versions registered (legacyvm image build builds one).")
		return nil
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tVERSION\tBUILT (UTC)\tEDITION\tARCH\tMODE\tSOURCE SHA256\tCONTENT SHA256\tUSED BY")
	for _, v := range all {
		used := strings.Join(v.UsedBy, ",")
		if used == "" {
			used = "-"
		}
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Version, v.Meta.BuiltAt.UTC().Format("2006-01-02 15:04"),
			v.Meta.Edition, v.Meta.Arch, v.Mode, short(v.Meta.SourceSHA256), short(v.Meta.ContentSHA256), used)
	}
	return tw.Flush()
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
