package domainxml

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// TestLibvirtAcceptsGolden feeds the golden documents to libvirt's own
// parser and formatter through virsh and the in-process test driver
// (test:///default: no daemon, no host changes) and checks that the facts
// survive libvirt. libvirt's QEMU-specific checks and nwfilters are not
// covered here (the test driver has neither); the adapter's conformance
// tests run against a real libvirtd for those.
func TestLibvirtAcceptsGolden(t *testing.T) {
	virsh, err := exec.LookPath("virsh")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("virsh not found (install libvirt-clients); CI=true requires it")
		}
		t.Skip("virsh not found (install libvirt-clients)")
	}
	// run executes virsh commands in one test-driver session and returns
	// the XML document of the given root element from its output.
	run := func(t *testing.T, root, cmds string) string {
		t.Helper()
		out, err := exec.Command(virsh, "-q", "-c", "test:///default", cmds).CombinedOutput()
		if err != nil {
			t.Fatalf("virsh %q: %v\n%s", cmds, err, out)
		}
		m := regexp.MustCompile(`(?s)<` + root + `[ >].*</` + root + `>`).Find(out)
		if m == nil {
			t.Fatalf("virsh %q printed no <%s>:\n%s", cmds, root, out)
		}
		return string(m)
	}
	golden := func(t *testing.T, name string) (path, doc string) {
		t.Helper()
		path = filepath.Join("testdata", name+".xml")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return path, string(b)
	}

	for _, name := range []string{"domain-x64-pc-kvm", "domain-x64-q35-kvm", "domain-x86-pc-kvm", "domain-x64-pc-tcg", "domain-install-q35"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path, doc := golden(t, name)
			want, err := ParseDomain(doc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseDomain(run(t, "domain", "define "+path+"; dumpxml "+want.Name))
			if err != nil {
				t.Fatal(err)
			}
			got.XML, want.XML = "", ""
			if !reflect.DeepEqual(got, want) {
				t.Errorf("libvirt changed the facts:\n got  %+v\n want %+v", got, want)
			}
		})
	}
	for _, name := range []string{"network-dhcp-hosts", "network-l2", "network-dns-isolated"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path, doc := golden(t, name)
			want, err := ParseNetwork(doc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseNetwork(run(t, "network", "net-define "+path+"; net-dumpxml "+want.Name))
			if err != nil {
				t.Fatal(err)
			}
			got.XML, want.XML = "", ""
			if !reflect.DeepEqual(got, want) {
				t.Errorf("libvirt changed the facts:\n got  %+v\n want %+v", got, want)
			}
		})
	}
	for _, name := range []string{"volume-overlay", "volume-raw"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path, doc := golden(t, name)
			want, err := ParseVolume(doc)
			if err != nil {
				t.Fatal(err)
			}
			out := run(t, "volume", "vol-create default-pool "+path+"; vol-dumpxml --pool default-pool "+want.Name)
			if !strings.Contains(out, "<mode>") {
				t.Errorf("libvirt dropped the permissions:\n%s", out)
			}
			got, err := ParseVolume(out)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != want.Name || got.Format != want.Format || got.CapacityBytes != want.CapacityBytes ||
				got.BackingPath != want.BackingPath || got.Path == "" {
				t.Errorf("libvirt changed the facts:\n got  %+v\n want %+v", got, want)
			}
		})
	}
	t.Run("pool", func(t *testing.T) {
		t.Parallel()
		path, _ := golden(t, "pool")
		out := run(t, "pool", "pool-define "+path+"; pool-dumpxml legacyvm")
		if !strings.Contains(out, "<path>/var/lib/libvirt/images/legacyvm</path>") || !strings.Contains(out, "type='dir'") {
			t.Errorf("pool:\n%s", out)
		}
	})
	for _, tt := range []struct {
		name, start string
		state       virt.DomainState
		memory      bool
	}{
		{"snapshot-running", "start acct-1; ", virt.StateRunning, true},
		{"snapshot-shutoff", "", virt.StateShutoff, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			domPath, _ := golden(t, "domain-x64-pc-kvm")
			path, doc := golden(t, tt.name)
			want, err := ParseSnapshot(doc)
			if err != nil {
				t.Fatal(err)
			}
			out := run(t, "domainsnapshot", "define "+domPath+"; "+tt.start+"snapshot-create acct-1 "+path+"; snapshot-dumpxml acct-1 "+want.Name)
			got, err := ParseSnapshot(out)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != want.Name || got.Description != want.Description || got.State != tt.state || got.Memory != tt.memory {
				t.Errorf("got %+v, want name %q, state %s, memory %v", got, want.Name, tt.state, tt.memory)
			}
			// Disks align to internal snapshots; the read-only CD stays out.
			if !strings.Contains(out, "<disk name='sda' snapshot='internal'/>") || !strings.Contains(out, "<disk name='sdb' snapshot='no'/>") {
				t.Errorf("disk alignment:\n%s", out)
			}
		})
	}
}
