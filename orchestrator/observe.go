package orchestrator

// Observation: the only part of planning that talks to a host.
//
// Planning has two halves. The observer (this file) asks each host, and
// this machine, everything a plan needs: the host's domains, snapshots,
// networks, filters (and how they differ from what the profile renders
// to), pools and volumes, registered image versions, the pools legacyvm
// made for image directories, the state of the local files the profile
// names (install ISOs, golden images, image sources, images to upload) and
// whether the doors' listen addresses are free (through the injected
// Options.ProbeListen). The planner (plan.go, makePlan; seats in licenses.go,
// checkSeats) is then a pure function of the profile, the observation and
// the key identities read once per command (secretbundle.go): it takes no
// context and no hypervisor, and reads no file.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/profiles"
)

// observation is what a host holds that matters to one profile, gathered by
// the observer before planning.
type observation struct {
	Host virt.HostInfo
	// Domains, Networks, Filters hold every object of that kind on the
	// host, by name (ownership is decided by the planner).
	Domains  map[string]virt.Domain
	Networks map[string]virt.Network
	Filters  map[string]virt.Filter
	// FilterDiffs holds, for each desired filter that exists, how the host
	// differs from the desired rules (empty: identical).
	FilterDiffs map[string][]string
	// PoolFound is false when the target pool does not exist.
	PoolFound bool
	Pool      virt.Pool
	// Volumes in the target pool, by name.
	Volumes map[string]virt.Volume
	// Snapshots of domains the profile owns, by domain name.
	Snapshots map[string][]virt.Snapshot
	// ListenProblems maps the listen addresses of the profile's doors to
	// why they cannot be used ("" = free); nil when nobody probed (a
	// remote host).
	ListenProblems map[string]string
	// Bindings are the traffic filters bound to the NICs of running
	// domains (listed only when a domain of the profile runs).
	Bindings []virt.FilterBinding
	// Images maps every golden image and install ISO the profile uses to
	// the volume libvirt knows at that path; missing paths are absent.
	Images map[string]virt.Volume
	// ImageVersions holds, per image block the profile's VMs clone, the
	// versions registered in the image's pool (sorted by version).
	ImageVersions map[string][]ImageVersion

	// imagePools holds the lookups of the pools legacyvm makes for image
	// directories (imagePoolName), by pool name: the directories of
	// install ISOs a remote host does not show, and (destroy) those of
	// the profile's domains' images. A pool not looked up counts as
	// absent.
	imagePools map[string]poolLookup
	// files holds what this machine's file system says about the paths
	// planning checks, by path.
	files map[string]localFile
}

// poolLookup is the answer to a pool lookup: the pool, or the error
// (wrapping virt.ErrNotFound when there is none).
type poolLookup struct {
	pool virt.Pool
	err  error
}

// localFile is what this machine's file system says about a path: where
// its symbolic links lead, its mode and size, whether it opens, and its
// first bytes (read only from regular files).
type localFile struct {
	real    string
	realErr error // of filepath.EvalSymlinks
	statErr error // of os.Stat (follows links)
	mode    fs.FileMode
	size    int64
	openErr error  // of os.Open (tried for regular files, and when stat fails)
	head    []byte // the first 512 bytes (fewer when the file is shorter)
}

func newObservation() *observation {
	return &observation{
		Domains:       map[string]virt.Domain{},
		Networks:      map[string]virt.Network{},
		Filters:       map[string]virt.Filter{},
		FilterDiffs:   map[string][]string{},
		Volumes:       map[string]virt.Volume{},
		Snapshots:     map[string][]virt.Snapshot{},
		Images:        map[string]virt.Volume{},
		ImageVersions: map[string][]ImageVersion{},
		imagePools:    map[string]poolLookup{},
		files:         map[string]localFile{},
	}
}

// observeDomains lists the domains of every connected host that has not
// been listed yet (placement needs them before the profile is split by
// host). A host whose list fails gets Err.
func observeDomains(ctx context.Context, conns []*hostConn) {
	for _, c := range conns {
		if c.HV == nil || c.Domains != nil {
			continue
		}
		doms, err := c.HV.ListDomains(ctx)
		if err != nil {
			c.Err = fmt.Errorf("list domains on %s: %w", c.URI, err)
			_ = c.HV.Close()
			c.HV = nil
			continue
		}
		if doms == nil {
			doms = []virt.Domain{}
		}
		c.Domains = doms
	}
}

// observeHost gathers everything planning part (the part of a profile
// placed on host, see Split) needs from the host at uri and from this
// machine. doms are the host's domains when placement listed them (nil:
// listed here).
func observeHost(ctx context.Context, hv virt.Hypervisor, part *profiles.Profile, host *profiles.Host, uri string, opts Options, doms []virt.Domain) (*observation, error) {
	poolName := poolOf(host)
	var images []string
	seen := map[string]bool{}
	for _, in := range part.Instances {
		d := in.VM.Disk
		img := d.Image
		if d.Install != nil {
			img = d.Install.ISO
		}
		if img != "" && !seen[img] {
			seen[img] = true
			images = append(images, img)
		}
	}
	o, err := observeObjects(ctx, hv, part.Name, poolName, images, doms)
	if err != nil {
		return nil, err
	}
	if err := observeImageVersions(ctx, hv, part, o); err != nil {
		return nil, err
	}
	local := isLocalURI(uri)
	// Install ISOs: on this machine for a local host; else the pool
	// legacyvm made for the ISO's directory, when libvirt does not show
	// the ISO itself.
	for _, vm := range part.VMs {
		if vm.Disk == nil || vm.Disk.Install == nil || vm.Disk.Install.ISO == "" {
			continue
		}
		iso := vm.Disk.Install.ISO
		if local {
			o.observeFile(iso)
			continue
		}
		if _, ok := o.Images[iso]; !ok {
			o.observeImagePool(ctx, hv, filepath.Dir(iso))
		}
	}
	if local {
		for _, vm := range part.VMs {
			if vm.Disk != nil && vm.Disk.Image != "" {
				o.observeFile(vm.Disk.Image)
			}
		}
		for _, im := range part.Images {
			if im.Host == host && im.Source.ISO != "" {
				o.observeFile(im.Source.ISO)
			}
		}
	} else {
		// Golden images the host lacks are uploaded from this machine.
		for _, in := range part.Instances {
			d := in.VM.Disk
			if d == nil || d.Install != nil || d.Image == "" {
				continue
			}
			if _, ok := o.Images[d.Image]; ok {
				continue
			}
			if _, ok := o.Volumes[UploadedImageName(d.Image)]; ok {
				continue
			}
			o.observeFile(d.Image)
		}
	}
	// What the profile renders to on this host, from what was observed so
	// far (pure), for the filter diffs and the listen probes. A profile
	// that cannot be rendered is reported by the planner.
	t, _ := planTarget(part, host, uri, o, opts.settings())
	ds, err := desiredFor(part, t, o)
	if err != nil {
		return o, nil
	}
	for _, dn := range ds.Networks {
		if _, ok := o.Filters[dn.Filter.Name]; !ok {
			continue
		}
		diffs, err := hv.FilterDiff(ctx, dn.Filter)
		if err != nil {
			return nil, err
		}
		o.FilterDiffs[dn.Filter.Name] = diffs
	}
	if local {
		o.probeDoors(ds, opts.ProbeListen, opts.OwnListeners)
	}
	return o, nil
}

// observeForDestroy gathers what destroying the profile's objects on a
// host needs: every domain, network and filter, the snapshots of the
// profile's domains, the volumes of poolName and the pools legacyvm made
// for the image directories of the profile's domains.
func observeForDestroy(ctx context.Context, hv virt.Hypervisor, profile, poolName string) (*observation, error) {
	o, err := observeObjects(ctx, hv, profile, poolName, nil, nil)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(o.Domains) {
		d := o.Domains[name]
		if ownedBy(d.Metadata, profile) && d.Metadata.Image != "" {
			o.observeImagePool(ctx, hv, filepath.Dir(filepath.Clean(d.Metadata.Image)))
		}
	}
	return o, nil
}

// observeObjects lists what the host holds: every domain (doms when not
// nil), network and filter, the snapshots of the profile's domains, the
// volumes of poolName and the volumes libvirt knows at the image paths.
func observeObjects(ctx context.Context, hv virt.Hypervisor, profile string, poolName string, images []string, doms []virt.Domain) (*observation, error) {
	o := newObservation()
	var err error
	if o.Host, err = hv.HostInfo(ctx); err != nil {
		return nil, err
	}
	if doms == nil {
		if doms, err = hv.ListDomains(ctx); err != nil {
			return nil, err
		}
	}
	running := false
	for _, d := range doms {
		o.Domains[d.Name] = d
		if d.Metadata != nil && d.Metadata.Profile == profile {
			running = running || d.State != virt.StateShutoff
			snaps, err := hv.ListSnapshots(ctx, d.Name)
			if err != nil && !errors.Is(err, virt.ErrNotFound) {
				return nil, err
			}
			o.Snapshots[d.Name] = snaps
		}
	}
	if running {
		if o.Bindings, err = hv.FilterBindings(ctx); err != nil {
			return nil, err
		}
	}
	nets, err := hv.ListNetworks(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		o.Networks[n.Name] = n
	}
	filters, err := hv.ListFilters(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range filters {
		o.Filters[f.Name] = f
	}
	if poolName != "" {
		pool, err := hv.GetPool(ctx, poolName)
		switch {
		case err == nil:
			o.PoolFound, o.Pool = true, pool
			vols, err := hv.ListVolumes(ctx, poolName)
			if err != nil {
				return nil, err
			}
			for _, v := range vols {
				o.Volumes[v.Name] = v
			}
		case errors.Is(err, virt.ErrNotFound):
		default:
			return nil, err
		}
	}
	for _, path := range images {
		v, err := hv.VolumeByPath(ctx, path)
		switch {
		case err == nil:
			o.Images[path] = v
		case errors.Is(err, virt.ErrNotFound):
		default:
			return nil, fmt.Errorf("look up image %s: %w", path, err)
		}
	}
	return o, nil
}

// observeImageVersions reads the registered versions of every image block
// the profile's VMs clone.
func observeImageVersions(ctx context.Context, hv virt.Hypervisor, p *profiles.Profile, o *observation) error {
	seen := map[*profiles.Image]bool{}
	for _, in := range p.Instances {
		im := in.VM.Disk.ImageRef
		if im == nil || seen[im] {
			continue
		}
		seen[im] = true
		if _, err := hv.GetPool(ctx, im.Pool); err != nil {
			continue // checkImageRefs says so
		}
		inv, err := listImages(ctx, hv, im.Pool, im.Name)
		if err != nil {
			return err
		}
		o.ImageVersions[im.Name] = inv.Versions
	}
	return nil
}

// observeImagePool looks up the pool legacyvm makes for an image
// directory.
func (o *observation) observeImagePool(ctx context.Context, hv virt.Hypervisor, dir string) {
	name := imagePoolName(dir)
	if _, done := o.imagePools[name]; done {
		return
	}
	p, err := hv.GetPool(ctx, name)
	o.imagePools[name] = poolLookup{pool: p, err: err}
}

// imagePool is the observed lookup of the pool legacyvm makes for dir.
func (o *observation) imagePool(dir string) (name string, l poolLookup) {
	name = imagePoolName(dir)
	l, ok := o.imagePools[name]
	if !ok {
		l.err = fmt.Errorf("storage pool %s: %w", name, virt.ErrNotFound)
	}
	return name, l
}

// observeFile records what this machine's file system says about path.
func (o *observation) observeFile(path string) {
	if _, done := o.files[path]; !done {
		o.files[path] = statLocalFile(path)
	}
}

// statLocalFile reads what this machine's file system says about path. It
// never opens anything but a regular file (a FIFO would block).
func statLocalFile(path string) localFile {
	var f localFile
	f.real, f.realErr = filepath.EvalSymlinks(path)
	st, err := os.Stat(path)
	f.statErr = err
	switch {
	case err != nil:
		if fh, err := os.Open(path); err != nil {
			f.openErr = err
		} else {
			fh.Close()
		}
	default:
		f.mode, f.size = st.Mode(), st.Size()
		if !st.Mode().IsRegular() {
			break
		}
		fh, err := os.Open(path)
		if err != nil {
			f.openErr = err
			break
		}
		head := make([]byte, 512)
		n, _ := io.ReadFull(fh, head)
		f.head = head[:n]
		fh.Close()
	}
	return f
}

// file is the observed state of a local path. A path nobody observed
// (a bug) panics.
func (o *observation) file(path string) localFile {
	f, ok := o.files[path]
	if !ok {
		panic(fmt.Sprintf("planning uses local file %s, which the observer did not look at", path))
	}
	return f
}

// probeDoors records which publish listen addresses (and egress ports on
// existing bridges) are already taken on this machine, leaving out the
// addresses the relay itself holds (ours): planning reports a door on a
// taken port as a diagnostic before anything changes.
func (o *observation) probeDoors(ds *desiredState, probe func(addr string) error, ours map[string]bool) {
	if probe == nil {
		return
	}
	o.ListenProblems = map[string]string{}
	check := func(addr string) {
		if ours[addr] {
			return
		}
		if _, done := o.ListenProblems[addr]; done {
			return
		}
		err := probe(addr)
		switch {
		case err == nil:
			o.ListenProblems[addr] = ""
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			// The bridge (or interface) does not exist yet: nothing holds it.
			o.ListenProblems[addr] = ""
		default:
			o.ListenProblems[addr] = err.Error()
		}
	}
	for _, dv := range ds.VMs {
		for _, p := range dv.Instance.VM.Publishes {
			check(p.Listen.String())
		}
	}
	for _, dn := range ds.Networks {
		if !dn.Spec.HostAddress.IsValid() {
			continue
		}
		for _, d := range dn.Filter.Doors {
			if d.Kind == virt.DoorEgress {
				check(netip.AddrPortFrom(dn.Spec.HostAddress, d.Port).String())
			}
		}
	}
}
