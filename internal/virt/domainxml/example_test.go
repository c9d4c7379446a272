package domainxml_test

import (
	"fmt"
	"net/netip"

	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
)

// Filters returns the guard first: define the filters in this order, since
// the root filter references the guard. Both use chain root, so libvirt
// merges their rules into one chain per direction.
func ExampleFilters() {
	fs, err := domainxml.Filters(virt.FilterSpec{
		Name:        "lvm-lab",
		UUID:        "c3a5e7f9-1b2d-4c6e-8f0a-2b4d6e8f0a1c",
		BridgeMAC:   "52:54:00:4c:56:01",
		Subnet:      netip.MustParsePrefix("10.77.0.0/24"),
		HostAddress: netip.MustParseAddr("10.77.0.1"),
		DHCP:        true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range fs {
		fmt.Println(f.Name, f.Chain, f.Priority, len(f.Entries))
	}
	// Output:
	// lvm-lab-guard root 0 16
	// lvm-lab root 0 12
}

// An adapter that updates the metadata of an existing domain passes the
// fragment to virDomainSetMetadata and reads the result back with
// ParseMetadata.
func ExampleMetadataFragment() {
	m := &virt.Metadata{Profile: "lab", Instance: "lab-1", SpecHash: "sha256:00"}
	frag, _ := domainxml.MetadataFragment(m)
	fmt.Println(frag)
	// dom.SetMetadata(libvirt.DOMAIN_METADATA_ELEMENT, frag,
	//	domainxml.MetadataPrefix, domainxml.Namespace, libvirt.DOMAIN_AFFECT_CONFIG)
	back, _ := domainxml.ParseMetadata(frag)
	fmt.Println(back.Instance)
	// Output:
	// <owner>
	//   <profile>lab</profile>
	//   <instance>lab-1</instance>
	//   <spec-hash>sha256:00</spec-hash>
	// </owner>
	// lab-1
}
