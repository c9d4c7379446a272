package winguest

import "github.com/legacyvm/legacyvm/internal/license"

const (
	mib = 1 << 20
	gib = 1 << 30
)

// OS names of the presets, as profiles write them.
const (
	OSWin7x64 = "win7-x64"
	OSWin7x86 = "win7-x86"
)

// Preset is the virtual hardware and sizing of one guest OS. Values come
// from win7-spec §1.1 and §1.10 (libosinfo's win-7 entry, Microsoft's
// memory limits) and DESIGN.md (i440fx, SATA, e1000, SeaBIOS).
type Preset struct {
	// OS is the preset name ("win7-x64", "win7-x86").
	OS string
	// Arch is the libvirt <os><type arch>. Both presets use "x86_64": a
	// 32-bit Windows runs on 64-bit-capable virtual hardware, as on real
	// PCs of its time (and as virt-install and dockur run it).
	Arch string
	// ProcessorArchitecture is the answer-file component attribute:
	// "amd64" or "x86". A wrong value makes Setup ignore components.
	ProcessorArchitecture string
	// Machine is the libvirt machine type family ("pc" = i440fx); libvirt
	// expands it to a versioned type at define time.
	Machine string
	// DiskBus is the bus of the system disk and CD-ROMs ("sata", inbox
	// msahci driver).
	DiskBus string
	// NIC is the network card model ("e1000", inbox driver).
	NIC string
	// MinMemory and MaxMemory bound the memory a VM may have (bytes);
	// MaxMemory is the most any edition of this architecture can use (see
	// MaxMemoryFor for one edition).
	MinMemory, MaxMemory uint64
	// WarnMemoryAbove is the memory above which the guest sees less than it
	// is given (x86: the PCI hole); 0 = no warning.
	WarnMemoryAbove uint64
	// DefaultMemory, DefaultCPUs and DefaultDiskBytes apply when a profile
	// does not say.
	DefaultMemory    uint64
	DefaultCPUs      int
	DefaultDiskBytes uint64
	// MinDiskBytes is libosinfo's minimum disk size.
	MinDiskBytes uint64
}

var presets = map[string]Preset{
	OSWin7x64: {
		OS: OSWin7x64, Arch: "x86_64", ProcessorArchitecture: "amd64", Machine: "pc", DiskBus: "sata", NIC: "e1000",
		MinMemory: 2 * gib, MaxMemory: 192 * gib, DefaultMemory: 4 * gib, DefaultCPUs: 2,
		DefaultDiskBytes: 40 * gib, MinDiskBytes: 20 * gib,
	},
	OSWin7x86: {
		OS: OSWin7x86, Arch: "x86_64", ProcessorArchitecture: "x86", Machine: "pc", DiskBus: "sata", NIC: "e1000",
		MinMemory: 1 * gib, MaxMemory: 4 * gib, WarnMemoryAbove: 3 * gib, DefaultMemory: 2 * gib, DefaultCPUs: 2,
		DefaultDiskBytes: 40 * gib, MinDiskBytes: 16 * gib,
	},
}

// PresetFor returns the preset of os ("win7-x64" or "win7-x86"); ok is
// false for any other name.
func PresetFor(os string) (Preset, bool) {
	p, ok := presets[os]
	return p, ok
}

// OSNames lists the preset names in display order.
func OSNames() []string { return []string{OSWin7x64, OSWin7x86} }

// MaxMemoryFor returns the most memory edition e can use on this
// architecture (Microsoft's "Memory Limits for Windows Releases"): x86 4 GiB
// (Starter 2 GiB); x64 Home Basic 8 GiB, Home Premium 16 GiB, Professional,
// Enterprise and Ultimate 192 GiB. An empty or unknown edition gives
// MaxMemory.
func (p Preset) MaxMemoryFor(e license.Edition) uint64 {
	if e == license.EditionStarter {
		return 2 * gib
	}
	if p.ProcessorArchitecture == "amd64" {
		switch e {
		case license.EditionHomeBasic:
			return 8 * gib
		case license.EditionHomePremium:
			return 16 * gib
		}
	}
	return p.MaxMemory
}

// HasEdition reports whether edition e exists for this architecture as far
// as libosinfo knows: Starter and Home Basic only as 32-bit media
// (win7-spec §1.10; Home Basic x64 was sold in some markets, so callers may
// let the user override a false answer). An empty edition is accepted.
func (p Preset) HasEdition(e license.Edition) bool {
	if e == license.EditionStarter || e == license.EditionHomeBasic {
		return p.ProcessorArchitecture == "x86"
	}
	for _, known := range license.Editions {
		if e == known {
			return true
		}
	}
	return e == ""
}
