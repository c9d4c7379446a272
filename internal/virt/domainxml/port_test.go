package domainxml

import "testing"

func TestInterfacePortIsolated(t *testing.T) {
	const dom = `<domain type='kvm'><name>lab-1</name><devices>
  <interface type='network'><mac address='52:54:00:AA:00:01'/><source network='lvm-lab'/><port isolated='no'/></interface>
  <interface type='network'><mac address='52:54:00:aa:00:02'/><source network='lvm-lab'/><port isolated='yes'/></interface>
  <interface type='network'><mac address='52:54:00:aa:00:03'/><source network='lvm-lab'/></interface>
</devices></domain>`
	for _, tc := range []struct{ xml, mac, want string }{
		{dom, "52:54:00:aa:00:01", "no"}, // MACs compare in any case
		{dom, "52:54:00:AA:00:02", "yes"},
		{dom, "52:54:00:aa:00:03", ""},
		{dom, "52:54:00:aa:00:09", ""},
		{"", "52:54:00:aa:00:01", ""},
		{"<domain", "52:54:00:aa:00:01", ""},
	} {
		if got := InterfacePortIsolated(tc.xml, tc.mac); got != tc.want {
			t.Errorf("InterfacePortIsolated(%.20q, %s) = %q, want %q", tc.xml, tc.mac, got, tc.want)
		}
	}
}
