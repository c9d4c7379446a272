package winguest

import (
	"testing"

	"github.com/legacyvm/legacyvm/internal/license"
)

func TestPresetFor(t *testing.T) {
	tests := []struct {
		os                            string
		arch, procArch                string
		min, max, def, defDisk, minDk uint64
	}{
		{OSWin7x64, "x86_64", "amd64", 2 * gib, 192 * gib, 4 * gib, 40 * gib, 20 * gib},
		{OSWin7x86, "x86_64", "x86", 1 * gib, 4 * gib, 2 * gib, 40 * gib, 16 * gib},
	}
	for _, tt := range tests {
		p, ok := PresetFor(tt.os)
		if !ok {
			t.Fatalf("PresetFor(%q) not found", tt.os)
		}
		if p.OS != tt.os || p.Arch != tt.arch || p.ProcessorArchitecture != tt.procArch {
			t.Errorf("%s: OS %q Arch %q ProcessorArchitecture %q", tt.os, p.OS, p.Arch, p.ProcessorArchitecture)
		}
		if p.Machine != "pc" || p.DiskBus != "sata" || p.NIC != "e1000" || p.DefaultCPUs != 2 {
			t.Errorf("%s: machine %q disk %q nic %q cpus %d", tt.os, p.Machine, p.DiskBus, p.NIC, p.DefaultCPUs)
		}
		if p.MinMemory != tt.min || p.MaxMemory != tt.max || p.DefaultMemory != tt.def || p.DefaultDiskBytes != tt.defDisk || p.MinDiskBytes != tt.minDk {
			t.Errorf("%s: memory %d..%d default %d disk %d min %d", tt.os, p.MinMemory, p.MaxMemory, p.DefaultMemory, p.DefaultDiskBytes, p.MinDiskBytes)
		}
		if p.DefaultMemory < p.MinMemory || p.DefaultMemory > p.MaxMemory || p.DefaultDiskBytes < p.MinDiskBytes {
			t.Errorf("%s: defaults outside the limits", tt.os)
		}
	}
	for _, bad := range []string{"", "win7", "win10-x64", "WIN7-X64"} {
		if _, ok := PresetFor(bad); ok {
			t.Errorf("PresetFor(%q) found a preset", bad)
		}
	}
	for _, n := range OSNames() {
		if _, ok := PresetFor(n); !ok {
			t.Errorf("OSNames lists %q without a preset", n)
		}
	}
}

func TestPresetEditionLimits(t *testing.T) {
	x64, _ := PresetFor(OSWin7x64)
	x86, _ := PresetFor(OSWin7x86)
	tests := []struct {
		p       Preset
		e       license.Edition
		max     uint64
		shipped bool
	}{
		{x64, license.EditionProfessional, 192 * gib, true},
		{x64, license.EditionHomePremium, 16 * gib, true},
		{x64, license.EditionHomeBasic, 8 * gib, false},
		{x64, license.EditionStarter, 2 * gib, false},
		{x64, "", 192 * gib, true},
		{x86, license.EditionStarter, 2 * gib, true},
		{x86, license.EditionHomeBasic, 4 * gib, true},
		{x86, license.EditionUltimate, 4 * gib, true},
		{x86, "datacenter", 4 * gib, false},
	}
	for _, tt := range tests {
		if got := tt.p.MaxMemoryFor(tt.e); got != tt.max {
			t.Errorf("%s %s: MaxMemoryFor = %d MiB, want %d MiB", tt.p.OS, tt.e, got/mib, tt.max/mib)
		}
		if got := tt.p.HasEdition(tt.e); got != tt.shipped {
			t.Errorf("%s %s: HasEdition = %v", tt.p.OS, tt.e, got)
		}
	}
	if x86.WarnMemoryAbove != 3*gib || x64.WarnMemoryAbove != 0 {
		t.Errorf("WarnMemoryAbove x86 %d x64 %d", x86.WarnMemoryAbove, x64.WarnMemoryAbove)
	}
}
