package profiles

import (
	"net/netip"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/legacyvm/legacyvm/internal/license"
)

// Profile is a loaded, validated profile: every reference resolved, every
// size in bytes, every duration parsed, count expanded into Instances.
// Slices are sorted by name. DeclRange fields point at the block header in
// the source so later stages (planning, seat accounting) can report located
// diagnostics.
type Profile struct {
	// Name identifies the profile in libvirt metadata and locks: the name
	// declared in a profile { name = "..." } block, else the base name of
	// the directory, or of the file without its extension.
	Name string
	// NameRange is where the name was declared; nil when it comes from the
	// path (or LoadOptions.Name).
	NameRange *hcl.Range
	// Path is the directory or file that was loaded, as given.
	Path string
	// Dir is the directory that relative paths in the profile resolve
	// against (absolute).
	Dir string
	// Sources holds every parsed file by filename, for diagnostic snippets.
	// It is set even when loading fails.
	Sources map[string]*hcl.File

	// FingerprintKey is where an organisation's shared fingerprint secret
	// lives (fingerprint_key = env/file/command): 64 hexadecimal
	// characters. Kind SourceNone: each user's own secret file is used.
	FingerprintKey license.Source
	// FingerprintKeyRange is the range of the fingerprint_key expression.
	FingerprintKeyRange hcl.Range

	Variables        []*Variable
	Hosts            []*Host
	Licenses         []*License
	Networks         []*Network
	SnapshotPolicies []*SnapshotPolicy
	VMs              []*VM
	// Images are the image blocks (golden images legacyvm builds).
	Images []*Image
	// Instances are the VMs after count expansion, sorted by VM name and
	// then Index (acct-2 before acct-10). These are what become libvirt
	// domains.
	Instances []*Instance
	// Tests are the test blocks, in declaration order.
	Tests []*Test
}

// Variable is an input variable and the value it ended up with.
type Variable struct {
	Name        string
	Description string
	Default     cty.Value // cty.NilVal when there is no default
	Value       cty.Value // final value after -var, -var-file, LEGACYVM_VAR_*
	// ValueFrom says where Value came from: "default", "-var", "-var-file
	// <file>" or "env LEGACYVM_VAR_<name>".
	ValueFrom string
	DeclRange hcl.Range
}

// Accelerator selects how guests are run.
type Accelerator string

const (
	AccelAuto Accelerator = "auto" // KVM when it really works, else TCG
	AccelKVM  Accelerator = "kvm"
	AccelTCG  Accelerator = "tcg"
)

// DefaultURI is used when no host block, flag or LIBVIRT_DEFAULT_URI says
// otherwise.
const DefaultURI = "qemu:///system"

// Host is a libvirt connection target.
type Host struct {
	Name        string
	URI         string
	Accelerator Accelerator
	// StoragePool is the libvirt pool that holds overlays and answer
	// media; default "default".
	StoragePool string
	// MaxVMs is the most VMs managed by legacyvm (any profile) that
	// placement puts on this host; 0 means no limit.
	MaxVMs int
	// Labels are free-form key/value pairs a vm's host_labels select on.
	Labels map[string]string
	// Implicit is true for the host synthesised when a profile declares none.
	Implicit  bool
	DeclRange hcl.Range
}

// License is a Windows licence the user owns. The key is not read when a
// profile is loaded; ProductKey says where it lives.
type License struct {
	Name       string
	ProductKey license.Source
	// ProductKeyRange is the range of the product_key expression.
	ProductKeyRange hcl.Range
	Edition         license.Edition
	Channel         license.Channel
	// Seats is how many VMs may use this licence at once (default 1).
	// UnlimitedSeats (0) for a kms licence that does not set seats.
	Seats int
	// KMSHost is the organisation's KMS host (channel kms only).
	KMSHost   string
	DeclRange hcl.Range
}

// Direction of an allow rule, seen from the guest.
type Direction string

const (
	DirectionIn  Direction = "in"  // traffic to the guest
	DirectionOut Direction = "out" // traffic from the guest
)

// Protocol of an allow rule.
type Protocol string

const (
	ProtoTCP  Protocol = "tcp"
	ProtoUDP  Protocol = "udp"
	ProtoICMP Protocol = "icmp"
	ProtoAny  Protocol = "any"
)

// PortRange is an inclusive range of ports; the zero value means any port.
type PortRange struct{ Start, End uint16 }

// IsAny reports whether the range matches every port.
func (p PortRange) IsAny() bool { return p.Start == 0 && p.End == 0 }

// Peer is the other end of an allowed flow.
type Peer string

const (
	// PeerHost is the virtualisation host (the bridge address).
	PeerHost Peer = "host"
)

// AllowRule is an explicitly permitted flow; everything else is denied.
type AllowRule struct {
	Name      string
	Direction Direction
	// Peer is PeerHost for flows to or from the host. (Further peers may
	// be added; planning rejects what it does not know.)
	Peer      Peer
	Protocol  Protocol
	Ports     PortRange
	DeclRange hcl.Range
}

// Network is an isolated lab network.
type Network struct {
	Name string
	// Subnet is the zero Prefix when the network carries no IP at all
	// (pure layer 2: guests need static addresses).
	Subnet netip.Prefix
	// HostAddress is the first address of Subnet when the host needs an
	// address on the bridge (DHCP, DNS or an allow rule with the host);
	// invalid otherwise.
	HostAddress  netip.Addr
	DHCP         bool
	DNS          bool
	GuestToGuest bool
	Allows       []*AllowRule
	// Egresses are doors every guest on the network may use.
	Egresses  []*Egress
	DeclRange hcl.Range
}

// Publish is a door from outside to one guest port: the relay run by
// legacyvm daemon listens on Listen, accepts only clients in From, and
// connects to the guest's Port from the host's side of the bridge.
type Publish struct {
	Name        string
	Listen      netip.AddrPort
	ListenRange hcl.Range
	Port        uint16
	Protocol    Protocol // tcp
	// From are the client networks allowed (never empty).
	From []netip.Prefix
	// MaxConnections bounds concurrent connections (default 20).
	MaxConnections int
	DeclRange      hcl.Range
}

// Egress is a door from guests to one outside service: guests connect to
// the network's host address at Port and the relay connects onward to To
// (host name or address and port, resolved by the host at connect time).
type Egress struct {
	Name      string
	To        string
	Port      uint16
	PortRange hcl.Range
	DeclRange hcl.Range
}

// DefaultMaxConnections is a publish door's max_connections default.
const DefaultMaxConnections = 20

// ShutdownAction says what happens when a guest powers itself off.
type ShutdownAction string

const (
	OnShutdownKeep   ShutdownAction = "keep"
	OnShutdownRevert ShutdownAction = "revert"
)

// SnapshotPolicy protects VMs with a baseline and scheduled snapshots.
type SnapshotPolicy struct {
	Name string
	// Baseline is the name of the protected snapshot taken after
	// provisioning; default "clean".
	Baseline string
	// Schedule is the cron expression or @alias as written; empty means no
	// scheduled snapshots. It has been checked with the same parser the
	// scheduler uses.
	Schedule string
	// Keep is the number of newest scheduled snapshots kept (>= 1).
	Keep int
	// MaxAge removes scheduled snapshots older than this; 0 = no limit.
	MaxAge time.Duration
	Memory bool
	// Settle is how long a VM runs after provisioning before its memory
	// baseline is taken (so a reset resumes a booted desktop, not a boot).
	Settle     time.Duration
	OnShutdown ShutdownAction
	// Window bounds the per-VM jitter of @daily, @weekly and @monthly
	// ("01:00-05:00", host local time). Empty: DefaultWindow for those
	// aliases; always empty for @hourly and cron expressions.
	Window    string
	DeclRange hcl.Range
}

// OS is the guest operating system preset.
type OS string

const (
	OSWin7x64 OS = "win7-x64"
	OSWin7x86 OS = "win7-x86"
)

// CloneMode says how a golden image becomes a VM disk.
type CloneMode string

const (
	CloneLinked CloneMode = "linked" // qcow2 overlay on the golden image
	CloneFull   CloneMode = "full"   // full copy
)

// PrepareMode says what per-VM setup a golden image needs.
type PrepareMode string

const (
	PrepareSpecialize PrepareMode = "specialize" // per-VM answer media for the specialize pass
	PrepareNone       PrepareMode = "none"
)

// Disk is a VM's system disk: either cloned from a golden Image or
// installed from media (Install). Exactly one of Image and Install is set.
type Disk struct {
	// Image is the absolute path of a golden image given as a string; ""
	// when ImageRef is set.
	Image string
	// ImageRange is the range of the image expression, for plan-time
	// checks of the file.
	ImageRange hcl.Range
	// ImageRef is the image block the disk clones (image = image.NAME);
	// the version is chosen at plan time from what libvirt holds.
	ImageRef *Image
	// ImageVersion is ImageVersionPinned, ImageVersionLatest or a version
	// number ("3"); only with ImageRef.
	ImageVersion      string
	ImageVersionRange hcl.Range
	Clone             CloneMode
	SizeBytes         uint64 // 0 = size of the image (linked/full) or 40 GiB (install)
	Prepare           PrepareMode
	Install           *Install
	DeclRange         hcl.Range
}

// Install describes installation from the user's own Windows 7 media.
type Install struct {
	ISO string // absolute path of the Windows 7 ISO
	// ISORange is the range of the iso expression, for plan-time checks of
	// the file.
	ISORange hcl.Range
	// Edition selects the image in install.wim (by name) unless ImageIndex
	// is set.
	Edition    license.Edition
	ImageIndex int // 0 = select by edition name
	// Timeout bounds the wait for setup to power the guest off.
	Timeout   time.Duration
	DeclRange hcl.Range
}

// Windows holds per-VM Windows settings used in answer files.
type Windows struct {
	// ComputerName is the computer_name written for a vm without count;
	// "" otherwise. Instance.ComputerName is always set and is what answer
	// files use (computer_name may use count.index, 1..count).
	ComputerName string
	TimeZone     string // Windows time-zone ID, default "UTC"
	Locale       string // e.g. "en-US"
	InputLocale  string // e.g. "0409:00000409"
	AdminUser    string // local administrator account created at setup
	// AdminPassword is where the administrator password lives.
	AdminPassword license.Source
	// Activate runs slmgr /ato at first logon.
	Activate  bool
	DeclRange hcl.Range
}

// VM is a vm block: one template, possibly several instances.
type VM struct {
	Name string
	// Count is the number of instances; CountSet reports whether count
	// was written (instances are then named NAME-1..NAME-N).
	Count    int
	CountSet bool
	OS       OS
	// Machine is "pc" (i440fx, default) or "q35"; libvirt pins the
	// versioned type at define time.
	Machine     string
	CPUs        int
	MemoryBytes uint64
	Disk        *Disk
	Windows     *Windows // never nil after loading (defaults applied)
	// Licenses are the licences whose seats the instances take, in order.
	Licenses []*License
	// LicensesRange is the range of the licenses expression (the block
	// header when absent), for seat diagnostics at plan time.
	LicensesRange  hcl.Range
	Network        *Network        // nil: no network interface
	SnapshotPolicy *SnapshotPolicy // nil: no policy (no baseline)
	// Host is where the instances run when the vm names one (or the
	// profile has a single host); nil when Placement chooses per instance.
	Host *Host
	// Placement is PlacementFixed (Host is set) or the policy that picks
	// a host among Candidates for each instance.
	Placement Placement
	// Candidates are the hosts a placed vm may use: every host whose
	// labels include all of host_labels, sorted by name. Only set with
	// placement.
	Candidates []*Host
	// PlacementRange is the range of the placement expression, for
	// diagnostics at plan time (the block header when absent).
	PlacementRange hcl.Range
	// OEMStrings are passed to the guest as SMBIOS type 11 strings.
	OEMStrings []string
	// Autostart starts the VM with the host.
	Autostart bool
	// GuestAgent adds the QEMU guest agent's virtio-serial channel
	// (org.qemu.guest_agent.0) that exec, cp and test use. Default false:
	// see docs/guest-agent.md.
	GuestAgent bool
	// Publishes and Egresses are the vm's doors (see docs/doors.md).
	Publishes []*Publish
	Egresses  []*Egress
	DeclRange hcl.Range
}

// Instance is one VM after count expansion: the unit that becomes a
// libvirt domain.
type Instance struct {
	Name  string // domain name: VM.Name, or VM.Name-N when count is set
	Index int    // 1-based; 1 when count is not set
	VM    *VM
	// License is the licence whose seat this instance takes (seats are
	// handed out in the order of VM.Licenses); nil when the VM lists none.
	License *License
	// ComputerName is the Windows computer name (at most 15 characters):
	// windows.computer_name evaluated for this instance, or derived from
	// the instance name (upper case, the vm name cut so that "-N" fits).
	ComputerName string
	// Host is the host the instance runs on: VM.Host for a vm with a
	// fixed host; for a placed vm it is set by the orchestrator's
	// placement at plan time and nil before (see orchestrator.Place).
	Host *Host
}

// Placement says how a vm's instances are put on hosts.
type Placement string

const (
	// PlacementFixed: every instance on VM.Host.
	PlacementFixed Placement = ""
	// PlacementSpread: each new instance on the candidate host with the
	// fewest legacyvm VMs.
	PlacementSpread Placement = "spread"
	// PlacementPack: each new instance on the first candidate host (by
	// name) below its max_vms.
	PlacementPack Placement = "pack"
)

// Edition is the Windows edition the VM runs: the install block's edition,
// else the edition of its first licence; "" when neither says.
func (vm *VM) Edition() license.Edition {
	if vm.Disk != nil && vm.Disk.Install != nil && vm.Disk.Install.Edition != "" {
		return vm.Disk.Install.Edition
	}
	for _, l := range vm.Licenses {
		if l.Edition != "" {
			return l.Edition
		}
	}
	return ""
}
