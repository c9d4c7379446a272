package profiles

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/legacyvm/legacyvm/internal/license"
)

func loadValid(t *testing.T, path string, opts LoadOptions) *Profile {
	t.Helper()
	if opts.Getenv == nil {
		opts.Getenv = fixtureEnv
	}
	p, diags := Load(path, opts)
	for _, d := range diags {
		t.Errorf("unexpected diagnostic: %s", d.Error())
	}
	if t.Failed() {
		t.FailNow()
	}
	return p
}

func TestValidProfileModel(t *testing.T) {
	p := loadValid(t, "testdata/valid/acct", LoadOptions{})
	dir, _ := filepath.Abs("testdata/valid/acct")

	if p.Name != "acct" || p.Dir != dir || len(p.Sources) != 2 {
		t.Fatalf("name %q dir %q sources %d", p.Name, p.Dir, len(p.Sources))
	}
	byName := func(n string) *VM {
		for _, vm := range p.VMs {
			if vm.Name == n {
				return vm
			}
		}
		t.Fatalf("no vm %q", n)
		return nil
	}
	acct, build, long := byName("acct"), byName("build"), byName("a-very-long-vm-name")

	// Sizes, durations, prefixes.
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"acct memory", acct.MemoryBytes, uint64(4 << 30)},
		{"acct disk size (60G is binary)", acct.Disk.SizeBytes, uint64(60 << 30)},
		{"acct image resolved", acct.Disk.Image, filepath.Join(dir, "images/golden.qcow2")},
		{"acct clone default", acct.Disk.Clone, CloneLinked},
		{"acct prepare default", acct.Disk.Prepare, PrepareSpecialize},
		{"acct cpus from var", acct.CPUs, 2},
		{"acct machine default", acct.Machine, "pc"},
		{"acct oem strings", acct.OEMStrings, []string{"tier=default-tier"}},
		{"acct host is the only host", acct.Host.Name, "lab1"},
		{"build memory", build.MemoryBytes, uint64(2560 << 20)},
		{"build machine", build.Machine, "q35"},
		{"build install timeout", build.Disk.Install.Timeout, 90 * time.Minute},
		{"build install index", build.Disk.Install.ImageIndex, 4},
		{"build install edition from licence", build.Disk.Install.Edition, license.EditionEnterprise},
		{"build install disk default", build.Disk.SizeBytes, uint64(DefaultInstallDiskBytes)},
		{"build edition", build.Edition(), license.EditionEnterprise},
		{"build has no policy", build.SnapshotPolicy == nil, true},
		{"build windows defaults", *build.Windows, Windows{TimeZone: "UTC", Locale: "en-US", InputLocale: "0409:00000409", AdminUser: DefaultAdminUser, DeclRange: build.DeclRange}},
		{"long clone", long.Disk.Clone, CloneFull},
		{"long has no network", long.Network == nil, true},
		{"policy max_age", acct.SnapshotPolicy.MaxAge, 14 * 24 * time.Hour},
		{"policy keep", acct.SnapshotPolicy.Keep, 3},
		{"policy baseline default", acct.SnapshotPolicy.Baseline, "clean"},
		{"policy on_shutdown", acct.SnapshotPolicy.OnShutdown, OnShutdownRevert},
		{"policy memory", acct.SnapshotPolicy.Memory, true},
		{"subnet", acct.Network.Subnet, netip.MustParsePrefix("10.77.0.0/24")},
		{"host address (allow rule with host)", acct.Network.HostAddress, netip.MustParseAddr("10.77.0.1")},
		{"guest_to_guest", acct.Network.GuestToGuest, false},
		{"dhcp default", acct.Network.DHCP, false},
		{"allows", len(acct.Network.Allows), 2},
		{"rdp rule", *acct.Network.Allows[0], AllowRule{Name: "rdp", Direction: DirectionIn, Peer: PeerHost, Protocol: ProtoTCP, Ports: PortRange{3389, 3389}, DeclRange: acct.Network.Allows[0].DeclRange}},
		{"range rule", acct.Network.Allows[1].Ports, PortRange{1000, 2000}},
		{"l2 network has no subnet", build.Network.Subnet.IsValid() || build.Network.HostAddress.IsValid(), false},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// Licences and their secret sources: nothing was read.
	lics := map[string]*License{}
	for _, l := range p.Licenses {
		lics[l.Name] = l
	}
	if got := lics["a"].ProductKey; got.Kind != license.SourceEnv || got.Name != "ACCT_KEY_A" {
		t.Errorf("license a source = %v", got)
	}
	if got := lics["b"].ProductKey; got.Kind != license.SourceFile || got.Path != filepath.Join(dir, "keys/b.txt") {
		t.Errorf("license b source = %v", got)
	}
	if got := lics["k"].ProductKey; got.Kind != license.SourceCommand || !reflect.DeepEqual(got.Argv, []string{"pass", "show", "win7/kms"}) {
		t.Errorf("license k source = %v", got)
	}
	if lics["k"].Seats != UnlimitedSeats || lics["k"].KMSHost != "kms.example.org:1688" || lics["b"].Seats != 2 || lics["a"].Seats != 1 {
		t.Errorf("seats a=%d b=%d k=%d", lics["a"].Seats, lics["b"].Seats, lics["k"].Seats)
	}
	if got := acct.Windows.AdminPassword; got.Kind != license.SourceEnv || got.Name != "ADMIN_PW" {
		t.Errorf("admin password source = %v", got)
	}
	if lics["a"].ProductKeyRange.Start.Line != 30 {
		t.Errorf("product key range = %v", lics["a"].ProductKeyRange)
	}

	// Instances, computer names and seats (first licence with a free seat).
	type inst struct{ name, comp, lic string }
	var got []inst
	for _, in := range p.Instances {
		ln := ""
		if in.License != nil {
			ln = in.License.Name
		}
		got = append(got, inst{in.Name, in.ComputerName, ln})
	}
	want := []inst{
		{"a-very-long-vm-name-1", "A-VERY-LONG-V-1", "k"},
		{"a-very-long-vm-name-2", "A-VERY-LONG-V-2", "k"},
		{"acct-1", "ACCT-1", "a"},
		{"acct-2", "ACCT-2", "b"},
		{"acct-3", "ACCT-3", "b"},
		{"build", "BUILD", "k"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("instances:\n got %v\nwant %v", got, want)
	}
	if len(p.Hosts) != 1 || p.Hosts[0].Implicit || p.Hosts[0].Accelerator != AccelTCG || p.Hosts[0].StoragePool != "images" {
		t.Errorf("hosts = %+v", p.Hosts[0])
	}
}

func TestVariablePrecedence(t *testing.T) {
	env := func(vals map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	}
	for _, c := range []struct {
		name             string
		opts             LoadOptions
		cpus             int
		tier, tierFrom   string
		image, imageFrom string
	}{
		{"defaults", LoadOptions{}, 2, "default-tier", "default", "images/golden.qcow2", "default"},
		{"env beats default", LoadOptions{Getenv: env(map[string]string{"LEGACYVM_VAR_tier": "env-tier", "LEGACYVM_VAR_cpus": "3"})}, 3, "env-tier", "env LEGACYVM_VAR_tier", "images/golden.qcow2", "default"},
		{"var-file beats env", LoadOptions{VarFiles: []string{"testdata/varfiles/prod.hcl"}, Getenv: env(map[string]string{"LEGACYVM_VAR_tier": "env-tier"})}, 4, "from-file", "-var-file testdata/varfiles/prod.hcl", "images/golden.qcow2", "default"},
		{"-var beats var-file", LoadOptions{Vars: []string{"tier=cli", "golden=/abs/g.qcow2"}, VarFiles: []string{"testdata/varfiles/prod.hcl"}}, 4, "cli", "-var", "/abs/g.qcow2", "-var"},
		{"last -var wins", LoadOptions{Vars: []string{"tier=one", "tier=two=2"}}, 2, "two=2", "-var", "images/golden.qcow2", "default"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.opts.Getenv == nil {
				c.opts.Getenv = env(nil)
			}
			p := loadValid(t, "testdata/valid/acct", c.opts)
			vars := map[string]*Variable{}
			for _, v := range p.Variables {
				vars[v.Name] = v
			}
			var acct *VM
			for _, vm := range p.VMs {
				if vm.Name == "acct" {
					acct = vm
				}
			}
			if acct.CPUs != c.cpus {
				t.Errorf("cpus = %d, want %d", acct.CPUs, c.cpus)
			}
			if got := vars["tier"].Value.AsString(); got != c.tier || vars["tier"].ValueFrom != c.tierFrom {
				t.Errorf("tier = %q from %q, want %q from %q", got, vars["tier"].ValueFrom, c.tier, c.tierFrom)
			}
			if got := vars["golden"].Value.AsString(); got != c.image || vars["golden"].ValueFrom != c.imageFrom {
				t.Errorf("golden = %q from %q", got, vars["golden"].ValueFrom)
			}
			if want := "tier=" + c.tier; acct.OEMStrings[0] != want {
				t.Errorf("oem string = %q, want %q", acct.OEMStrings[0], want)
			}
		})
	}
}

func TestLoadOptionErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		path    string
		opts    LoadOptions
		summary string
	}{
		{"undeclared -var", "testdata/valid/acct", LoadOptions{Vars: []string{"tire=x"}}, "Value for undeclared variable"},
		{"malformed -var", "testdata/valid/acct", LoadOptions{Vars: []string{"tier"}}, "Invalid --var option"},
		{"wrong type from -var", "testdata/valid/acct", LoadOptions{Vars: []string{"cpus=many"}}, "Invalid value for variable"},
		{"wrong type from env", "testdata/valid/acct", LoadOptions{Getenv: func(k string) (string, bool) { return "x", k == "LEGACYVM_VAR_cpus" }}, "Invalid value for variable"},
		{"missing var-file", "testdata/valid/acct", LoadOptions{VarFiles: []string{"testdata/varfiles/nope.hcl"}}, "Cannot read variables file"},
		{"missing profile", "testdata/nope", LoadOptions{}, "Profile not found"},
		{"empty directory", "testdata/varfiles/..", LoadOptions{}, "No profile files"},
		{"bad profile name", "testdata/valid/acct", LoadOptions{Name: "Acct Lab"}, "Invalid profile name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.opts.Getenv == nil {
				c.opts.Getenv = fixtureEnv
			}
			p, diags := Load(c.path, c.opts)
			if p == nil || p.Sources == nil {
				t.Fatal("Load returned no profile or no Sources")
			}
			if !diags.HasErrors() {
				t.Fatalf("no error, want %q", c.summary)
			}
			var sums []string
			for _, d := range diags {
				sums = append(sums, d.Summary)
			}
			if !strings.Contains(strings.Join(sums, "|"), c.summary) {
				t.Errorf("diagnostics %q do not include %q", sums, c.summary)
			}
		})
	}
}

func TestSourcesSetOnFailure(t *testing.T) {
	p, diags := Load("testdata/invalid/duplicates.hcl", LoadOptions{Getenv: fixtureEnv})
	if !diags.HasErrors() {
		t.Fatal("want errors")
	}
	if p.Sources["testdata/invalid/duplicates.hcl"] == nil {
		t.Fatalf("Sources = %v", p.Sources)
	}
	var _ hcl.Diagnostics = diags
}
