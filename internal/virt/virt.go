package virt

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"
)

// Sentinel errors. Adapters wrap them (errors.Is works) and name the object.
var (
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: an object with that name (or UUID) already exists.
	ErrExists = errors.New("already exists")
	// ErrBusy: libvirt could not acquire the object's job lock; retry later.
	ErrBusy = errors.New("busy")
	// ErrInvalidState: the operation does not fit the object's state (for
	// example starting a running domain).
	ErrInvalidState = errors.New("invalid state")
	// ErrInvalid: libvirt rejected the definition.
	ErrInvalid = errors.New("invalid definition")
	// ErrUnsupported: the hypervisor cannot do this.
	ErrUnsupported = errors.New("unsupported")
	// ErrInUse: the object is still used by another (e.g. an nwfilter
	// referenced by a domain, a network with active interfaces).
	ErrInUse = errors.New("in use")
	// ErrConnection: the connection to libvirt failed or was lost.
	ErrConnection = errors.New("connection failed")
)

// Hypervisor is everything legacyvm asks of a virtualisation host. Every
// method takes ctx first; because the libvirt calls themselves cannot be
// interrupted, implementations check ctx between calls and bound their waits.
// All methods are safe for concurrent use. Only objects named in the calls
// are touched: listing returns everything, ownership is decided by callers
// from Metadata and name prefixes.
type Hypervisor interface {
	// Close releases the connection.
	Close() error
	// HostInfo describes the host: versions, accelerator support.
	HostInfo(ctx context.Context) (HostInfo, error)

	// Domains.
	ListDomains(ctx context.Context) ([]Domain, error)
	GetDomain(ctx context.Context, name string) (Domain, error)
	// DefineDomain creates or replaces the persistent definition of
	// spec.Name. When the domain exists, its pinned versioned machine type
	// is kept if it belongs to the same family as spec.Machine. Changes to a
	// running domain take effect at its next boot.
	DefineDomain(ctx context.Context, spec DomainSpec) (Domain, error)
	// UndefineDomain removes the definition (and libvirt snapshot
	// metadata, managed save, NVRAM). The domain must be shut off. Volumes
	// are not touched.
	UndefineDomain(ctx context.Context, name string) error
	StartDomain(ctx context.Context, name string) error
	// ShutdownDomain asks the guest to power off (ACPI) and returns at once.
	ShutdownDomain(ctx context.Context, name string) error
	// DestroyDomain powers the domain off at once (pulling the plug).
	DestroyDomain(ctx context.Context, name string) error
	// SetMetadata replaces legacyvm's metadata of a domain, in the
	// persistent definition and, when it runs, live; nothing else of the
	// definition changes.
	SetMetadata(ctx context.Context, name string, m *Metadata) error
	// SetAutostart marks the domain to start with libvirtd.
	SetAutostart(ctx context.Context, name string, on bool) error
	// SetInterfaceFilter sets the traffic filter reference of the domain's
	// NIC with mac (filter "" removes it, params are then ignored) in the
	// persistent definition and, when the domain runs, on the live
	// interface: libvirt re-binds the filter at once, without a restart.
	// ErrNotFound when no NIC has that MAC.
	SetInterfaceFilter(ctx context.Context, domain, mac, filter string, params []FilterParam) error
	// ChangeMedia changes the media of a CD-ROM drive (target dev, e.g.
	// "sdc") in the persistent definition and, when the domain runs, live.
	// Path "" ejects.
	ChangeMedia(ctx context.Context, domain, target, path string) error

	// Networks.
	ListNetworks(ctx context.Context) ([]Network, error)
	GetNetwork(ctx context.Context, name string) (Network, error)
	// DefineNetwork creates or replaces the network, starts it and marks
	// it autostart. A running network whose definition changed is
	// restarted only if it has no active interfaces; otherwise changed
	// DHCP reservations (VMs added or removed) apply at once, and any
	// other change applies at the next network restart (Network.Stale is
	// true until then).
	DefineNetwork(ctx context.Context, spec NetworkSpec) (Network, error)
	// DeleteNetwork stops and undefines the network.
	DeleteNetwork(ctx context.Context, name string) error
	// Leases returns DHCP leases on the network.
	Leases(ctx context.Context, network string) ([]Lease, error)

	// Network filters.
	ListFilters(ctx context.Context) ([]Filter, error)
	// DefineFilter creates or updates the filters spec describes
	// (see FilterSpec.Names). Running domains pick up the change.
	DefineFilter(ctx context.Context, spec FilterSpec) error
	// FilterDiff compares the filters defined on the host with what spec
	// renders to and describes each difference in a short phrase ("filter
	// lvm-lab-guard is missing", "rule 3 differs"); empty means they match.
	// Plan and verify use it to detect filters changed outside legacyvm.
	FilterDiff(ctx context.Context, spec FilterSpec) ([]string, error)
	// DeleteFilter undefines the named filter; ErrInUse while referenced.
	DeleteFilter(ctx context.Context, name string) error
	// FilterBindings lists the filters bound to interfaces of running
	// domains.
	FilterBindings(ctx context.Context) ([]FilterBinding, error)
	// BridgePorts lists the interfaces enslaved to a host bridge other
	// than the tap devices libvirt creates for domain NICs (vnetN, which
	// libvirt's interface driver leaves out): on a legacyvm network, any
	// port it lists is an uplink. Sorted by name. ErrNotFound when the
	// bridge does not exist; ErrUnsupported when the host cannot list them.
	BridgePorts(ctx context.Context, bridge string) ([]BridgePort, error)

	// Storage.
	GetPool(ctx context.Context, name string) (Pool, error)
	// EnsurePool defines, builds and starts a directory pool at path when
	// it does not exist.
	EnsurePool(ctx context.Context, name, path string) (Pool, error)
	// RemovePool stops a pool and removes its definition; its directory
	// and the files in it stay. ErrNotFound when there is no such pool.
	RemovePool(ctx context.Context, name string) error
	ListVolumes(ctx context.Context, pool string) ([]Volume, error)
	// VolumeByPath finds any volume in any active pool by path;
	// ErrNotFound if no pool knows the path.
	VolumeByPath(ctx context.Context, path string) (Volume, error)
	// CreateVolume creates a volume (an overlay when spec.BackingPath is
	// set); ErrExists if the name is taken.
	CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error)
	// CloneVolume creates spec as a full copy of the volume at sourcePath.
	CloneVolume(ctx context.Context, spec VolumeSpec, sourcePath string) (Volume, error)
	// UploadVolume creates a raw volume of size bytes and fills it from r.
	UploadVolume(ctx context.Context, spec VolumeSpec, r io.Reader, size int64) (Volume, error)
	// DownloadVolume writes the bytes of the volume's file (as stored: a
	// qcow2 volume yields its qcow2 file) to w through the storage API,
	// and returns how many were written. When max > 0 and the volume holds
	// more bytes, the download stops with an error wrapping ErrInvalid (w
	// may have received up to max bytes).
	DownloadVolume(ctx context.Context, pool, name string, w io.Writer, max int64) (int64, error)
	// UploadFile creates spec in its pool (its Format, capacity and
	// backing are ignored: the volume is the file's bytes, at the file's
	// size) and fills it with the local file at
	// path through libvirt's storage-volume upload stream: sparse (holes
	// of the file are not transferred, they stay holes), so it works over
	// a remote connection (qemu+tls, qemu+ssh). progress, when set, is
	// called with the bytes of the file covered so far and the total.
	// ErrExists if the name is taken; on failure the new volume is
	// deleted. libvirt refreshes the pool afterwards, so the volume's
	// Format is what libvirt probes from the content.
	UploadFile(ctx context.Context, spec VolumeSpec, path string, progress func(done, total int64)) (Volume, error)
	// VolumeSHA256 reads a volume back through a download stream and
	// returns the hex SHA-256 of its content (holes count as zeros): the
	// check that an upload arrived intact.
	VolumeSHA256(ctx context.Context, pool, name string) (string, error)
	DeleteVolume(ctx context.Context, pool, name string) error

	// Snapshots (internal only).
	ListSnapshots(ctx context.Context, domain string) ([]Snapshot, error)
	CreateSnapshot(ctx context.Context, domain string, spec SnapshotSpec) (Snapshot, error)
	// RevertSnapshot reverts and leaves the domain in the state the
	// snapshot recorded.
	RevertSnapshot(ctx context.Context, domain, name string) error
	DeleteSnapshot(ctx context.Context, domain, name string) error

	// Memory images.
	//
	// SaveDomain writes the running (or paused) domain's memory and device
	// state to a new volume in pool (a directory pool: the file is
	// <pool path>/<volume>, mode 0600) and stops the domain (shut off,
	// StopOther). The image embeds the live definition; its disks keep
	// the state they had at that instant only as long as nothing writes to
	// them (pair the image with a disk snapshot taken while the domain is
	// off). ErrInvalidState when the domain is not running, ErrExists when
	// the volume exists. Where the host supports it (libvirt 11.2+) the
	// image is written in the sparse format with parallel channels
	// (HostInfo.SaveFeatures says which).
	SaveDomain(ctx context.Context, domain, pool, volume string, opts SaveOptions) (Volume, error)
	// RestoreDomain starts the shut off domain from a memory image made by
	// SaveDomain (the image is kept: it can be restored again) and returns
	// once the domain runs again in the state it was saved in. The disks
	// are used as they are now. ErrInvalidState when the domain is not
	// shut off, ErrNotFound when the volume does not exist.
	RestoreDomain(ctx context.Context, domain, pool, volume string, opts SaveOptions) error

	// Layered memory baselines: a running domain's memory and disk state
	// captured in one step, without stopping it.
	//
	// PrepareLayer creates spec (a qcow2 overlay whose BackingPath is a
	// domain's system disk) and records in it an internal snapshot named
	// mark of its empty state, without snapshot metadata. Reverting to
	// mark later empties the layer again whatever was written to it,
	// keeping the other internal snapshots it holds. The backing file must
	// not be in use (its domain shut off). ErrExists when the volume
	// exists; on failure the new volume is deleted.
	PrepareLayer(ctx context.Context, spec VolumeSpec, mark string) (Volume, error)
	// SnapshotToLayer takes a memory baseline of the running domain and
	// lets it run on: its memory and device state go into a new volume
	// (an image RestoreDomain restores, as SaveDomain writes it), its disk
	// spec.Target stops taking writes (the layer's backing file, frozen)
	// and the domain goes on writing into spec.Layer, made by PrepareLayer
	// on top of that disk. The image is rewritten to restore onto the
	// layer, and snapshot spec.Name (the layer's mark) gets its metadata:
	// a disk-only snapshot of the shut off domain with spec.Description.
	// A reset is then RevertSnapshot(spec.Name) (the layer empties, the
	// domain stops) and RestoreDomain(image). When the domain already
	// runs on the layer and the image exists (an interrupted call), only
	// the remaining steps run. ErrInvalidState when the domain is not
	// running, ErrExists when the image volume or the snapshot exists
	// (while the domain is not on the layer yet), ErrInvalid when the
	// layer is not on top of the disk.
	SnapshotToLayer(ctx context.Context, domain string, spec LayerSnapshotSpec) (Snapshot, error)

	// Events delivers domain lifecycle events until ctx ends or the
	// connection is lost (the channel is then closed).
	Events(ctx context.Context) (<-chan Event, error)

	// AgentCommand sends one QEMU guest agent command (a JSON object,
	// {"execute": ..., "arguments": ...}) to the running domain's agent
	// and returns the agent's raw JSON reply, waiting at most timeout
	// (rounded up to whole seconds, at least one). The reply comes from
	// the guest and is untrusted: callers decode it strictly and bound
	// what they keep. Errors: ErrNotFound (no such domain),
	// ErrInvalidState (not running), ErrUnsupported (no agent channel),
	// ErrAgentUnavailable (the agent did not answer in time or is not
	// connected), ErrAgentCommand (the agent answered with an error; the
	// message is the agent's, sanitised).
	AgentCommand(ctx context.Context, domain string, command []byte, timeout time.Duration) ([]byte, error)

	// Screenshot takes a picture of the running domain's first display
	// through libvirt's screenshot stream (PNG from QEMU >= 7.1, PPM
	// from older ones; MIME says which). The bytes
	// come from the guest's framebuffer and are untrusted: at most
	// MaxScreenshotBytes are read (more is an error wrapping ErrInvalid);
	// callers decode them with bounds. ErrNotFound (no such domain),
	// ErrInvalidState (not running).
	Screenshot(ctx context.Context, domain string) (Screenshot, error)
	// OpenGraphics connects to the running domain's VNC display without
	// the network: libvirt hands over a socket already connected to QEMU
	// (virDomainOpenGraphicsFD). It only works on a local connection
	// (ErrUnsupported otherwise: callers then dial Domain.VNC, which is
	// always a loopback address). What comes back speaks RFB and is
	// untrusted. ErrNotFound, ErrInvalidState (not running),
	// ErrUnsupported (remote connection or no VNC display).
	OpenGraphics(ctx context.Context, domain string) (net.Conn, error)
	// DiskWrites returns how many bytes the running domain has written to
	// its disks (CD-ROMs left out) since its QEMU process started: every
	// start, revert and baseline restore starts a new process, so after a
	// reset it counts what the guest wrote since the baseline.
	// ErrNotFound, ErrInvalidState (not running).
	DiskWrites(ctx context.Context, domain string) (int64, error)
}

// MaxScreenshotBytes bounds a screenshot stream: a 4096x4096 PPM (RGB)
// and its header (a PNG of that size is smaller).
const MaxScreenshotBytes = 3*4096*4096 + 64

// Screenshot is a display picture as the hypervisor produced it.
type Screenshot struct {
	// MIME is the type libvirt reports: "image/png" or
	// "image/x-portable-pixmap".
	MIME string
	Data []byte
}

// Guest agent errors (see Hypervisor.AgentCommand).
var (
	// ErrAgentUnavailable: the guest agent is not connected or did not
	// answer in time.
	ErrAgentUnavailable = errors.New("guest agent not responding")
	// ErrAgentCommand: the guest agent answered with an error.
	ErrAgentCommand = errors.New("guest agent command failed")
)

// AgentOrgName is the name of the guest agent's virtio-serial port.
const AgentOrgName = "org.qemu.guest_agent.0"

// LayerSnapshotSpec describes SnapshotToLayer's baseline.
type LayerSnapshotSpec struct {
	// Name is the snapshot's name, the mark PrepareLayer put in the layer.
	Name        string
	Description string
	// Target is the domain's disk that moves onto the layer ("sda").
	Target string
	// Layer is the volume made by PrepareLayer.
	Layer VolumeRef
	// Image is the new memory image volume (a directory pool).
	Image VolumeRef
}

// SaveOptions tune SaveDomain and RestoreDomain.
type SaveOptions struct {
	// BypassCache reads or writes the image around the host's page cache
	// (VIR_DOMAIN_SAVE_BYPASS_CACHE, O_DIRECT): the image does not evict
	// other data from the cache, but a restore cannot profit from a
	// cached image either.
	BypassCache bool
}

// Accel is the libvirt domain type.
type Accel string

const (
	AccelKVM Accel = "kvm"
	AccelTCG Accel = "qemu" // libvirt's name for TCG domains
)

// HostInfo describes a hypervisor host.
type HostInfo struct {
	URI        string
	Hostname   string
	LibVersion uint32 // libvirt library version (major*1e6+minor*1e3+micro)
	// DaemonVersion is the libvirtd version.
	DaemonVersion uint32
	// KVM is true when libvirt offers the kvm domain type and a probe
	// guest with legacyvm's Windows 7 preset really runs under it.
	KVM bool
	// KVMProblem says why KVM is not usable (empty when it is).
	KVMProblem string
	// Machines maps machine aliases ("pc", "q35") to the versioned types
	// they expand to.
	Machines map[string]string
	Emulator string
	// SaveFeatures are the memory-image features newer than libvirt 9.0
	// that SaveDomain uses on this host: "sparse" (the sparse image
	// format, libvirt 11.2+) and "parallel" (several channels write and
	// read the image at once). Empty on older hosts.
	SaveFeatures []string
}

// DomainState is a domain's run state.
type DomainState string

const (
	StateRunning  DomainState = "running"
	StatePaused   DomainState = "paused"
	StateShutoff  DomainState = "shutoff"
	StateShutdown DomainState = "shutting-down"
	StateCrashed  DomainState = "crashed"
	StateOther    DomainState = "other"
)

// GuestMACPrefix starts every guest MAC address legacyvm assigns
// (QEMU's locally administered 52:54:00 range). The host guard lets guest
// frames through only to MACs in it (see package domainxml), so an
// interface with another MAC could not reach its peers.
const GuestMACPrefix = "52:54:00"

// StopReason is why a shut off domain stopped (libvirt's shutoff state
// reason). libvirt keeps it only while libvirtd runs: after a libvirtd
// restart an inactive domain reads StopUnknown.
type StopReason string

const (
	// StopShutdown: the guest powered itself off, or honoured an ACPI
	// shutdown request (legacyvm stop records its requests in the
	// domain's metadata to tell the two apart).
	StopShutdown StopReason = "shutdown"
	// StopDestroyed: forced off (virDomainDestroy).
	StopDestroyed StopReason = "destroyed"
	// StopCrashed: the emulator crashed.
	StopCrashed StopReason = "crashed"
	// StopFromSnapshot: a revert to a snapshot of the VM shut off.
	StopFromSnapshot StopReason = "from-snapshot"
	// StopOther: saved, migrated, failed to start, or the daemon stopped it.
	StopOther StopReason = "other"
	// StopUnknown: never started since libvirtd started, or libvirt did
	// not say.
	StopUnknown StopReason = "unknown"
)

// DomainSpec is the desired definition of a domain. The adapter renders it
// with the Windows 7 hardware preset (see package domainxml).
type DomainSpec struct {
	Name  string
	UUID  string // canonical 36-character form
	Title string // short description shown by virt-manager
	Accel Accel
	// Arch is "x86_64" (also for 32-bit guests; see win7-spec §1.12).
	Arch string
	// Machine is "pc" or "q35" (or a pinned versioned type).
	Machine     string
	VCPUs       int
	MemoryBytes uint64
	// SMBIOSSerial is stable for the life of the VM.
	SMBIOSSerial string
	// OEMStrings become SMBIOS type 11 strings.
	OEMStrings []string
	// Hyperv enables the Windows 7 Hyper-V enlightenment list (KVM only;
	// the renderer leaves them out for TCG).
	Hyperv     bool
	Disks      []DiskSpec
	Interfaces []InterfaceSpec
	// SerialLog, when set, is a host file that receives the guest's first
	// serial port output (through virtlogd; it starts over when QEMU
	// restarts).
	SerialLog string
	// GuestAgent adds the virtio-serial channel org.qemu.guest_agent.0
	// that QEMU's guest agent listens on (libvirt relays AgentCommand
	// through it; it opens no network path).
	GuestAgent bool
	// Metadata marks the domain as legacyvm's; it is required.
	Metadata *Metadata
}

// DiskDevice is "disk" or "cdrom".
type DiskDevice string

const (
	DeviceDisk  DiskDevice = "disk"
	DeviceCDROM DiskDevice = "cdrom"
)

// DiskSpec is one disk or CD-ROM drive.
type DiskSpec struct {
	Device DiskDevice
	Bus    string // "sata" (default) or "ide"
	Target string // "sda", "sdb", ...
	// Path is the file; "" for an empty CD-ROM drive.
	Path   string
	Format string // "qcow2" or "raw"
	// BootOrder > 0 puts the device in the boot order.
	BootOrder int
}

// InterfaceSpec is one NIC on a legacyvm network.
type InterfaceSpec struct {
	Network string
	MAC     string
	Model   string // "e1000"
	// Filter is the nwfilter referenced by the interface ("" = none).
	Filter string
	// FilterParams are passed to the filter, e.g. IP.
	FilterParams []FilterParam
	// PortIsolated sets <port isolated='yes'/>.
	PortIsolated bool
}

// FilterParam is a name/value passed to an nwfilter.
type FilterParam struct{ Name, Value string }

// Domain is an observed domain.
type Domain struct {
	Name  string
	UUID  string
	State DomainState
	// StopReason says why a shut off domain stopped; "" unless State is
	// StateShutoff.
	StopReason StopReason
	// Persistent is false for transient domains.
	Persistent bool
	Autostart  bool
	Accel      Accel
	Machine    string // as defined (pinned versioned type after define)
	VCPUs      int
	// MemoryBytes is the configured maximum memory.
	MemoryBytes uint64
	Disks       []DiskSpec
	Interfaces  []InterfaceSpec
	// VNC is "127.0.0.1:5900" style when a VNC display is active.
	VNC string
	// GuestAgent is true when the definition has the guest agent channel
	// (org.qemu.guest_agent.0).
	GuestAgent bool
	// Metadata is nil when the domain carries no legacyvm metadata.
	Metadata *Metadata
	// XML is the persistent (inactive) definition as libvirt returns it.
	XML string
}

// Metadata is legacyvm's ownership record, stored in the domain's (and
// network's) <metadata> under legacyvm's own XML namespace. It never holds a
// secret: only licence labels, fingerprints and last key groups.
type Metadata struct {
	Profile  string `json:"profile"`
	VM       string `json:"vm,omitempty"`       // vm block name (domains)
	Instance string `json:"instance,omitempty"` // instance name (domains)
	Network  string `json:"network,omitempty"`  // network name (networks)
	// SpecHash is a hash of the desired spec the object was built from.
	SpecHash string `json:"spec_hash"`
	// Image is the golden image or install ISO the disk came from.
	Image string `json:"image,omitempty"`
	// ImageName and ImageVersion name the registered image version (image
	// block and version number) the disk was cloned from; empty and 0 for
	// a disk from an image path or installation media.
	ImageName    string `json:"image_name,omitempty"`
	ImageVersion int    `json:"image_version,omitempty"`
	// ImageBuild marks a temporary image-build domain: the image it
	// builds. Such a domain is no VM of the profile.
	ImageBuild string `json:"image_build,omitempty"`
	// Volumes and Filters are the owned objects that belong to this domain.
	Volumes []VolumeRef `json:"volumes,omitempty"`
	Filters []string    `json:"filters,omitempty"`
	// License is the seat this domain holds, if any.
	License *LicenseRef `json:"license,omitempty"`
	// Policy is the snapshot policy in force.
	Policy *PolicyRef `json:"policy,omitempty"`
	// Created is when the object was first provisioned (UTC).
	Created time.Time `json:"created,omitempty"`
	// Provisioned is set once setup finished and the baseline was taken.
	Provisioned bool `json:"provisioned,omitempty"`
	// StopRequested is when `legacyvm stop` asked the guest to shut down:
	// the daemon does not treat that shutdown as the guest's own (no
	// revert on shutdown). Start clears it.
	StopRequested *time.Time `json:"stop_requested,omitempty"`
	// Doors are the publish and egress doors that concern this domain
	// (its own and its network's), in the order the profile declares
	// them. legacyvm daemon's relay reads them from here.
	Doors []DoorRef `json:"doors,omitempty"`
}

// Door kinds.
const (
	DoorPublish = "publish" // a LAN client reaches a guest port
	DoorEgress  = "egress"  // guests reach one outside service
)

// DoorRef is one door as recorded in a domain's metadata.
type DoorRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Scope is "vm" for the vm's own door, "network" for an egress every
	// guest of the network may use.
	Scope string `json:"scope"`
	// Listen is the host address and port a publish door listens on.
	Listen string `json:"listen,omitempty"`
	// Port is the guest port (publish) or the port on the network's host
	// address (egress).
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol,omitempty"`
	// From are the client networks a publish door accepts (CIDR).
	From []string `json:"from,omitempty"`
	// MaxConnections bounds concurrent connections (publish).
	MaxConnections int `json:"max_connections,omitempty"`
	// To is an egress door's service, host:port.
	To string `json:"to,omitempty"`
}

// VolumeRef names a volume owned by a domain.
type VolumeRef struct {
	Pool string `json:"pool"`
	Name string `json:"name"`
	// Role is "system" or "answer" (answer media, deleted after setup).
	Role string `json:"role"`
}

// LicenseRef is what legacyvm records about the licence a VM uses.
type LicenseRef struct {
	Label       string `json:"label"`
	Edition     string `json:"edition,omitempty"`
	Channel     string `json:"channel"`
	Fingerprint string `json:"fingerprint,omitempty"` // keyed HMAC of the key
	// SecretID identifies the fingerprint secret that made Fingerprint
	// (license.Fingerprinter.SecretID; "" in metadata written before
	// secret ids were recorded). It reveals nothing about the secret.
	SecretID  string `json:"secret_id,omitempty"`
	LastGroup string `json:"last_group,omitempty"` // last five characters
	Seats     int    `json:"seats,omitempty"`
}

// PolicyRef is the snapshot policy recorded with a domain.
type PolicyRef struct {
	Name       string `json:"name"`
	Baseline   string `json:"baseline"`
	Schedule   string `json:"schedule,omitempty"`
	Keep       int    `json:"keep,omitempty"`
	MaxAge     string `json:"max_age,omitempty"`
	Memory     bool   `json:"memory,omitempty"`
	OnShutdown string `json:"on_shutdown,omitempty"`
	// Window bounds the jitter of @daily/@weekly/@monthly ("01:00-05:00");
	// empty means the default window.
	Window string `json:"window,omitempty"`
}

// NetworkSpec is the desired definition of an isolated network. It never
// has a <forward> element.
type NetworkSpec struct {
	Name   string
	UUID   string
	Bridge string // at most 15 characters
	// MAC pins the bridge's MAC address. The traffic filter uses it to
	// recognise every frame a guest sends to the host, whatever host
	// address it targets.
	MAC string
	// Subnet is zero for a network without any host address.
	Subnet netip.Prefix
	// HostAddress is the bridge address (invalid = none).
	HostAddress netip.Addr
	// DHCPRange and DHCPHosts are used when DHCP is true.
	DHCP      bool
	DHCPStart netip.Addr
	DHCPEnd   netip.Addr
	DHCPHosts []DHCPHost
	// DNS enables libvirt's dnsmasq DNS (local only); off by default.
	DNS bool
	// PortIsolated isolates guests from each other.
	PortIsolated bool
	Metadata     *Metadata
}

// DHCPHost is a static lease.
type DHCPHost struct {
	MAC  string
	Name string
	IP   netip.Addr
}

// Network is an observed network.
type Network struct {
	Name         string
	UUID         string
	Bridge       string
	MAC          string
	Active       bool
	Autostart    bool
	ForwardMode  string // "" when there is no <forward> element
	Subnet       netip.Prefix
	HostAddress  netip.Addr
	DHCP         bool
	DHCPStart    netip.Addr
	DHCPEnd      netip.Addr
	DHCPHosts    []DHCPHost
	DNS          bool
	IPv6         bool
	PortIsolated bool
	// Stale is true when the running network differs from its persistent
	// definition.
	Stale bool
	// Running is the running network as its live definition describes it
	// when that differs from the persistent one (Stale); nil otherwise.
	// Only the fields read from XML are set (not Active, Autostart, Stale,
	// Running).
	Running  *Network
	Metadata *Metadata
	XML      string
}

// Lease is a DHCP lease.
type Lease struct {
	MAC      string
	IP       netip.Addr
	Hostname string
	Expiry   time.Time
}

// FilterSpec describes legacyvm's per-network traffic filter. It renders to
// two libvirt nwfilters, both chain root so that libvirt builds one ebtables
// chain per direction: Name (the anti-spoofing rules libvirt's clean-traffic
// holds, written out, and a reference to the guard) and Name+"-guard" (the
// host guard's rules, merged into the same chain by priority).
type FilterSpec struct {
	Name string
	UUID string // of the root filter; the guard's UUID is derived
	// BridgeMAC is the network bridge's MAC (NetworkSpec.MAC): frames to it
	// are frames to the host.
	BridgeMAC string
	// Subnet is the network's subnet (zero: layer-2 only network).
	Subnet netip.Prefix
	// HostAddress is the bridge address, if any.
	HostAddress netip.Addr
	DHCP        bool
	DNS         bool
	Allows      []AllowSpec
	// Doors are the flows the relay of each door needs (see DoorSpec).
	Doors []DoorSpec
}

// DoorSpec is the guard opening one door needs, seen from the guest: for
// a publish door, the host (the relay) connects from the host address to
// GuestIP:Port; for an egress door, GuestIP (or every guest when GuestIP is
// invalid) connects to the host address at Port. TCP only; replies are
// matched by ports (stateless, like allow rules).
type DoorSpec struct {
	Name    string // "publish rdp of app", for messages
	Kind    string // DoorPublish or DoorEgress
	GuestIP netip.Addr
	Port    uint16
}

// Names returns the libvirt nwfilter names this spec defines.
func (f FilterSpec) Names() []string { return []string{f.Name, f.Name + "-guard"} }

// AllowSpec is one permitted flow, seen from the guest.
type AllowSpec struct {
	Name      string
	Direction string // "in" or "out"
	Peer      string // "host"
	Protocol  string // "tcp", "udp", "icmp", "any"
	PortStart uint16 // 0 = any
	PortEnd   uint16
}

// Filter is an observed nwfilter.
type Filter struct {
	Name  string
	UUID  string
	Chain string
	// Refs are the filters it references.
	Refs []string
	XML  string
}

// FilterBinding is a filter bound to a running interface.
type FilterBinding struct {
	PortDev string // tap device, e.g. vnet3
	MAC     string
	Owner   string // domain name
	Filter  string
	Params  []FilterParam
}

// BridgePort is an interface enslaved to a bridge.
type BridgePort struct {
	Name string // e.g. eth1
	MAC  string
}

// Pool is a storage pool.
type Pool struct {
	Name   string
	Path   string
	Active bool
	// Available is free space in bytes.
	Available uint64
}

// VolumeSpec is a volume to create.
type VolumeSpec struct {
	Pool          string
	Name          string
	CapacityBytes uint64
	Format        string // "qcow2" or "raw"
	// BackingPath makes the volume a qcow2 overlay of that file.
	BackingPath   string
	BackingFormat string
	// Mode is the file mode (default 0600).
	Mode uint32
}

// Volume is an observed volume.
type Volume struct {
	Pool            string
	Name            string
	Path            string
	Format          string
	CapacityBytes   uint64
	AllocationBytes uint64
	BackingPath     string
	// Mode is the file's permission bits as libvirt reports them (0 when
	// it does not say).
	Mode uint32
}

// SnapshotSpec is a snapshot to take.
type SnapshotSpec struct {
	Name        string
	Description string
	// Memory includes RAM state when the domain runs (a running domain's
	// snapshot without memory is not possible internally: the adapter
	// returns ErrUnsupported).
	Memory bool
}

// Snapshot is an observed internal snapshot.
type Snapshot struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Parent      string    `json:"parent,omitempty"`
	Created     time.Time `json:"created"`
	// State is the domain state the snapshot recorded.
	State   DomainState `json:"state"`
	Memory  bool        `json:"memory"`
	Current bool        `json:"current"`
}

// EventKind is a lifecycle event kind.
type EventKind string

const (
	EventStarted   EventKind = "started"
	EventStopped   EventKind = "stopped"
	EventShutdown  EventKind = "shutdown"
	EventSuspended EventKind = "suspended"
	EventResumed   EventKind = "resumed"
	EventDefined   EventKind = "defined"
	EventUndefined EventKind = "undefined"
	EventCrashed   EventKind = "crashed"
)

// Event is a domain lifecycle event.
type Event struct {
	Domain string
	Kind   EventKind
	// Detail is libvirt's detail in words, e.g. "shutdown" (guest powered
	// off), "destroyed", "from-snapshot", "failed".
	Detail string
	Time   time.Time
}
