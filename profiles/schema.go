package profiles

import "github.com/hashicorp/hcl/v2"

// The structs below are the HCL schema, decoded with gohcl. Every
// attribute is an hcl.Expression: values are evaluated later in the right
// scope (variables, block references, count.index), and an absent
// attribute is a synthetic null expression, which means "use the default".

type fileSchema struct {
	Profiles         []*profileBlock        `hcl:"profile,block"`
	FingerprintKey   hcl.Expression         `hcl:"fingerprint_key,optional"`
	Variables        []*variableBlock       `hcl:"variable,block"`
	Locals           []*localsBlock         `hcl:"locals,block"`
	Hosts            []*hostBlock           `hcl:"host,block"`
	Licenses         []*licenseBlock        `hcl:"license,block"`
	Networks         []*networkBlock        `hcl:"network,block"`
	SnapshotPolicies []*snapshotPolicyBlock `hcl:"snapshot_policy,block"`
	VMs              []*vmBlock             `hcl:"vm,block"`
	Tests            []*testBlock           `hcl:"test,block"`
	Images           []*imageBlock          `hcl:"image,block"`
	Files            []*filesBlock          `hcl:"files,block"`
}

// profileBlock declares the profile's identity, so that renaming or
// moving its directory keeps its VMs.
type profileBlock struct {
	Name     hcl.Expression `hcl:"name,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type variableBlock struct {
	Name        string         `hcl:"name,label"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
	Default     hcl.Expression `hcl:"default,optional"`
	Type        hcl.Expression `hcl:"type,optional"`
	Description hcl.Expression `hcl:"description,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type localsBlock struct {
	Attrs    hcl.Attributes `hcl:",remain"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type hostBlock struct {
	Name        string         `hcl:"name,label"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
	URI         hcl.Expression `hcl:"uri,optional"`
	Accelerator hcl.Expression `hcl:"accelerator,optional"`
	StoragePool hcl.Expression `hcl:"storage_pool,optional"`
	MaxVMs      hcl.Expression `hcl:"max_vms,optional"`
	Labels      hcl.Expression `hcl:"labels,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type licenseBlock struct {
	Name       string         `hcl:"name,label"`
	NameRange  hcl.Range      `hcl:"name,label_range"`
	ProductKey hcl.Expression `hcl:"product_key,optional"`
	Edition    hcl.Expression `hcl:"edition,optional"`
	Channel    hcl.Expression `hcl:"channel,optional"`
	Seats      hcl.Expression `hcl:"seats,optional"`
	KMSHost    hcl.Expression `hcl:"kms_host,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type networkBlock struct {
	Name         string         `hcl:"name,label"`
	NameRange    hcl.Range      `hcl:"name,label_range"`
	Subnet       hcl.Expression `hcl:"subnet,optional"`
	DHCP         hcl.Expression `hcl:"dhcp,optional"`
	DNS          hcl.Expression `hcl:"dns,optional"`
	GuestToGuest hcl.Expression `hcl:"guest_to_guest,optional"`
	Allows       []*allowBlock  `hcl:"allow,block"`
	Egresses     []*egressBlock `hcl:"egress,block"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

// publishBlock is a door from the LAN to a guest port (see doors.go).
type publishBlock struct {
	Name           string         `hcl:"name,label"`
	NameRange      hcl.Range      `hcl:"name,label_range"`
	Listen         hcl.Expression `hcl:"listen,optional"`
	Port           hcl.Expression `hcl:"port,optional"`
	Protocol       hcl.Expression `hcl:"protocol,optional"`
	From           hcl.Expression `hcl:"from,optional"`
	MaxConnections hcl.Expression `hcl:"max_connections,optional"`
	DefRange       hcl.Range      `hcl:",def_range"`
}

// egressBlock is a door from guests to one outside service.
type egressBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	To        hcl.Expression `hcl:"to,optional"`
	Port      hcl.Expression `hcl:"port,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type allowBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Direction hcl.Expression `hcl:"direction,optional"`
	From      hcl.Expression `hcl:"from,optional"`
	To        hcl.Expression `hcl:"to,optional"`
	Protocol  hcl.Expression `hcl:"protocol,optional"`
	Port      hcl.Expression `hcl:"port,optional"`
	Ports     hcl.Expression `hcl:"ports,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type snapshotPolicyBlock struct {
	Name       string         `hcl:"name,label"`
	NameRange  hcl.Range      `hcl:"name,label_range"`
	Baseline   hcl.Expression `hcl:"baseline,optional"`
	Schedule   hcl.Expression `hcl:"schedule,optional"`
	Keep       hcl.Expression `hcl:"keep,optional"`
	MaxAge     hcl.Expression `hcl:"max_age,optional"`
	Memory     hcl.Expression `hcl:"memory,optional"`
	Settle     hcl.Expression `hcl:"settle,optional"`
	OnShutdown hcl.Expression `hcl:"on_shutdown,optional"`
	Window     hcl.Expression `hcl:"window,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type vmBlock struct {
	Name           string          `hcl:"name,label"`
	NameRange      hcl.Range       `hcl:"name,label_range"`
	Count          hcl.Expression  `hcl:"count,optional"`
	OS             hcl.Expression  `hcl:"os,optional"`
	Machine        hcl.Expression  `hcl:"machine,optional"`
	CPUs           hcl.Expression  `hcl:"cpus,optional"`
	Memory         hcl.Expression  `hcl:"memory,optional"`
	Licenses       hcl.Expression  `hcl:"licenses,optional"`
	Network        hcl.Expression  `hcl:"network,optional"`
	SnapshotPolicy hcl.Expression  `hcl:"snapshot_policy,optional"`
	Host           hcl.Expression  `hcl:"host,optional"`
	Placement      hcl.Expression  `hcl:"placement,optional"`
	HostLabels     hcl.Expression  `hcl:"host_labels,optional"`
	OEMStrings     hcl.Expression  `hcl:"oem_strings,optional"`
	Autostart      hcl.Expression  `hcl:"autostart,optional"`
	GuestAgent     hcl.Expression  `hcl:"guest_agent,optional"`
	Disks          []*diskBlock    `hcl:"disk,block"`
	Windows        []*windowsBlock `hcl:"windows,block"`
	Publishes      []*publishBlock `hcl:"publish,block"`
	Egresses       []*egressBlock  `hcl:"egress,block"`
	// Installs catches an install block written directly in the vm so
	// that the diagnostic can say where it belongs.
	Installs []*installBlock `hcl:"install,block"`
	DefRange hcl.Range       `hcl:",def_range"`
}

type diskBlock struct {
	Image        hcl.Expression  `hcl:"image,optional"`
	ImageVersion hcl.Expression  `hcl:"image_version,optional"`
	Clone        hcl.Expression  `hcl:"clone,optional"`
	Size         hcl.Expression  `hcl:"size,optional"`
	Prepare      hcl.Expression  `hcl:"prepare,optional"`
	Installs     []*installBlock `hcl:"install,block"`
	DefRange     hcl.Range       `hcl:",def_range"`
}

type installBlock struct {
	ISO        hcl.Expression `hcl:"iso,optional"`
	Edition    hcl.Expression `hcl:"edition,optional"`
	ImageIndex hcl.Expression `hcl:"image_index,optional"`
	Timeout    hcl.Expression `hcl:"timeout,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type windowsBlock struct {
	ComputerName  hcl.Expression `hcl:"computer_name,optional"`
	TimeZone      hcl.Expression `hcl:"time_zone,optional"`
	Locale        hcl.Expression `hcl:"locale,optional"`
	InputLocale   hcl.Expression `hcl:"input_locale,optional"`
	AdminUser     hcl.Expression `hcl:"admin_user,optional"`
	AdminPassword hcl.Expression `hcl:"admin_password,optional"`
	Activate      hcl.Expression `hcl:"activate,optional"`
	DefRange      hcl.Range      `hcl:",def_range"`
}
