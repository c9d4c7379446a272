package testenv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(reapChildEnv) != "" {
		reapChild() // never returns
	}
	os.Exit(testenv.Main(m))
}

// virsh runs virsh against e and fails the test on error.
func virsh(t testing.TB, ctx context.Context, e *testenv.Env, args ...string) string {
	t.Helper()
	out, err := e.Virsh(ctx, args...)
	if err != nil {
		t.Fatalf("%v\ndaemon log:\n%s", err, lastLines(e.DaemonLog(), 20))
	}
	return string(out)
}

// defineXML writes doc to a file and runs "virsh <verb> FILE".
func defineXML(t testing.TB, ctx context.Context, e *testenv.Env, verb string, doc interface{ Marshal() (string, error) }) {
	t.Helper()
	x, err := doc.Marshal()
	if err != nil {
		t.Fatalf("marshal %T: %v", doc, err)
	}
	f := filepath.Join(t.TempDir(), "obj.xml")
	if err := os.WriteFile(f, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	virsh(t, ctx, e, verb, f)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// isolatedNetwork is a libvirt network without <forward> (isolated), with
// DHCP and one reservation per MAC (name -> mac, ip .10+i).
func isolatedNetwork(name, bridge, prefix string, hosts map[string]string) *libvirtxml.Network {
	n := &libvirtxml.Network{
		Name:   name,
		Bridge: &libvirtxml.NetworkBridge{Name: bridge, STP: "off", Delay: "0"},
		IPs: []libvirtxml.NetworkIP{{
			Address: prefix + ".1",
			Netmask: "255.255.255.0",
			DHCP: &libvirtxml.NetworkDHCP{
				Ranges: []libvirtxml.NetworkDHCPRange{{Start: prefix + ".100", End: prefix + ".199"}},
			},
		}},
	}
	i := 0
	for host, mac := range hosts {
		n.IPs[0].DHCP.Hosts = append(n.IPs[0].DHCP.Hosts, libvirtxml.NetworkDHCPHost{MAC: mac, Name: host, IP: fmt.Sprintf("%s.%d", prefix, 10+i)})
		i++
	}
	return n
}

// vm describes a stand-in guest domain shaped like legacyvm's Windows 7
// preset where it matters here: pc machine, SeaBIOS, SATA disk and CD-ROMs,
// e1000 NIC.
type vm struct {
	name      string
	accel     string
	disk      string   // qcow2 system disk on SATA (sda); "" = none
	cdroms    []string // ISO files on SATA CD-ROM drives
	bootCD    bool     // boot from the first CD-ROM, then the disk
	network   string   // libvirt network; "" = no NIC
	mac       string
	filterIP  string // if set: clean-traffic nwfilter with IP=filterIP
	serialLog string // serial console log
	fileLog   bool   // <serial type='file'> instead of pty + <log>
	rig       []string
}

func (v vm) domain() *libvirtxml.Domain {
	d := &libvirtxml.Domain{
		Type:   v.accel,
		Name:   v.name,
		Memory: &libvirtxml.DomainMemory{Value: 256, Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		OS: &libvirtxml.DomainOS{
			Type:   &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			SMBios: &libvirtxml.DomainSMBios{Mode: "sysinfo"},
		},
		SysInfo: []libvirtxml.DomainSysInfo{{SMBIOS: &libvirtxml.DomainSysInfoSMBIOS{
			OEMStrings: &libvirtxml.DomainSysInfoOEMStrings{Entry: []string{strings.Join(append([]string{"rig.name=" + v.name}, v.rig...), " ")}},
		}}},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OnPoweroff: "destroy",
		OnReboot:   "destroy",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
			MemBalloon:  &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	order := uint(1)
	if v.bootCD && len(v.cdroms) > 0 {
		order = 2
	}
	if v.disk != "" {
		d.Devices.Disks = append(d.Devices.Disks, libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: v.disk}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "sda", Bus: "sata"},
			Boot:   &libvirtxml.DomainDeviceBoot{Order: order},
		})
	}
	for i, iso := range v.cdroms {
		disk := libvirtxml.DomainDisk{
			Device:   "cdrom",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: iso}},
			Target:   &libvirtxml.DomainDiskTarget{Dev: fmt.Sprintf("sd%c", 'b'+i), Bus: "sata"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		}
		if i == 0 && v.bootCD {
			disk.Boot = &libvirtxml.DomainDeviceBoot{Order: 1}
		}
		d.Devices.Disks = append(d.Devices.Disks, disk)
	}
	if v.network != "" {
		nic := libvirtxml.DomainInterface{
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: v.network}},
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: v.mac},
			Model:  &libvirtxml.DomainInterfaceModel{Type: "e1000"},
		}
		if v.filterIP != "" {
			nic.FilterRef = &libvirtxml.DomainInterfaceFilterRef{
				Filter:     "clean-traffic",
				Parameters: []libvirtxml.DomainInterfaceFilterParam{{Name: "IP", Value: v.filterIP}},
			}
		}
		d.Devices.Interfaces = append(d.Devices.Interfaces, nic)
	}
	port := uint(0)
	serial := libvirtxml.DomainSerial{Target: &libvirtxml.DomainSerialTarget{Port: &port}}
	if v.fileLog {
		serial.Source = &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: v.serialLog}}
	} else {
		serial.Source = &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
		serial.Log = &libvirtxml.DomainChardevLog{File: v.serialLog, Append: "off"}
	}
	d.Devices.Serials = []libvirtxml.DomainSerial{serial}
	return d
}

// define defines and starts v; the domain is destroyed and undefined when
// the test ends.
func (v vm) start(t testing.TB, ctx context.Context, e *testenv.Env) {
	t.Helper()
	defineXML(t, ctx, e, "define", v.domain())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = e.Virsh(ctx, "destroy", v.name)
		_, _ = e.Virsh(ctx, "undefine", v.name, "--snapshots-metadata")
	})
	virsh(t, ctx, e, "start", v.name)
}

// waitState polls until the domain reaches state (virsh domstate).
func waitState(t testing.TB, ctx context.Context, e *testenv.Env, name, state string) {
	t.Helper()
	for {
		out, err := e.Virsh(ctx, "domstate", name)
		if err == nil && strings.TrimSpace(string(out)) == state {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("domain %s did not reach %q (last: %s %v)", name, state, strings.TrimSpace(string(out)), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rootNetState is the root namespace's interfaces and addresses.
func rootNetState(t testing.TB) (links, addrs string) {
	t.Helper()
	l, err := exec("ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	a, err := exec("ip", "-o", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	return ifaceNames(l), a
}

// ifaceNames keeps "index: name" of each "ip -o link" line (counters and
// flags change on their own).
func ifaceNames(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			b.WriteString(f[0] + " " + f[1] + "\n")
		}
	}
	return b.String()
}
