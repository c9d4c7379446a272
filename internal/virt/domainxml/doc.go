// Package domainxml renders virt specs into libvirt XML with
// libvirt.org/go/libvirtxml structs (never text templates) and parses
// libvirt's XML back into virt observations: the Windows 7 domain preset,
// isolated networks, legacyvm's nwfilters, qcow2 overlay volumes, internal
// snapshots and legacyvm's <metadata> namespace. Output is golden-tested and
// validated with virt-xml-validate.
package domainxml
