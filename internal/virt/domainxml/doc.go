// Package domainxml renders virt specs into libvirt XML with
// libvirt.org/go/libvirtxml structs (never text templates) and parses
// libvirt's XML back into virt observations: the Windows 7 domain preset,
// isolated networks, legacyvm's nwfilters, qcow2 overlay volumes, directory
// pools, internal snapshots and legacyvm's <metadata> namespace.
//
// # Contract
//
// Every render function (Domain, Network, Filters, Volume, Pool, Snapshot,
// MetadataXML) is pure: the same spec gives the same document, byte for
// byte, and nothing is looked up on the host. An incomplete or inconsistent
// spec is an error that names the object ("domain \"acct-1\": ..."); a
// render function never returns a partial document. The *XML variants
// marshal the same structs. Output is golden-tested (testdata/, go test
// -update rewrites it) and every golden file passes virt-xml-validate.
//
// Every Parse function accepts what libvirt returns, including the
// defaults it adds (addresses, aliases, controllers, a pinned versioned
// machine type, backing chains, allocated VNC ports). It fills only what
// the XML holds: domain state, persistence, autostart, network activity,
// the pool of a volume and the current snapshot are for the caller.
//
// No secret ever reaches libvirt: the virt types carry no product key or
// password, and every free-text field that ends up in XML (titles, SMBIOS
// serial and OEM strings, filter parameters, metadata, snapshot
// descriptions) is refused when it looks like a Windows product key.
//
// # Network isolation: the host guard
//
// A legacyvm network has no <forward> element, so libvirt routes nothing
// off the bridge; but guests on an isolated libvirt network still reach the
// host itself, and Linux answers on every interface for every one of its
// addresses (weak host model). Windows 7 guests are untrusted, so every NIC
// references a per-network nwfilter pair rendered by Filters:
//
//	<Name>        chain root: anti-spoofing rules + a reference to <Name>-guard
//	<Name>-guard  chain root: the host guard's rules
//
// Both filters use chain root, so libvirt merges the guard's rules into
// the interface's root chain and sorts all of them by priority: a NIC's
// filter is one ebtables chain per direction (libvirt-J-vnetN for frames
// the guest sends, libvirt-P-vnetN for frames to it), with no sub-chain.
// Earlier versions referenced libvirt's built-in clean-traffic, whose
// included filters became nine sub-chains per NIC with the guard's; each
// sub-chain costs libvirt about ten ebtables commands at every domain start
// and restore, run one by one under a libvirtd-wide lock (158 commands per
// NIC start before, 80 now; bench/README.md). The root filter holds
// clean-traffic's rules written out (no-mac-spoofing, no-ip-spoofing,
// allow-incoming-ipv4, no-arp-spoofing, allow ARP, no-other-l2-traffic,
// qemu-announce-self), reading the interface parameters $MAC and $IP that
// the domain's <filterref> passes. The whole chain, in priority order
// (out = sent by the guest, in = sent to it):
//
//	-950       out  source MAC not $MAC                                drop   (root)
//	-900       out  DHCP request from 0.0.0.0 to the broadcast address return (guard, when DHCP)
//	-850       out  IPv4 from a source not $IP                         drop   (root)
//	-800..-260      the guard's other rules (below)                    return/drop
//	-200       out, in  IPv4                                           accept (root)
//	-100, -99  out  ARP whose sender MAC is not $MAC, or sender IP not $IP  drop (root)
//	-90        out, in  ARP                                            accept (root)
//	10, 20     qemu's announce frames (0x835 out; Request_Reverse RARP
//	           from $MAC to broadcast, out and in)                     accept (root)
//	1000       out, in  anything else (IPv6, other RARP, other ethertypes)  drop (root)
//
// One difference with clean-traffic: its no-ip-spoofing let any UDP from
// 0.0.0.0 through (the guard then stopped it where the host was
// concerned); here only the DHCP requests the guard returns at -900 may use
// 0.0.0.0, and any other packet from it (to another guest too) is dropped.
//
// A "return" ends the root chain, which the nat table's PREROUTING and
// POSTROUTING chains jump to only for this tap (their policy is ACCEPT):
// for the frame it is the same as "accept". Since the guard's returns sit
// after the spoof drops and every guard drop sits before the -200 IPv4
// accepts, nothing the guard lets through skips the anti-spoofing and
// nothing it drops reaches an accept. The guard holds only <ip> rules,
// which libvirt turns into ebtables rules: they work without br_netfilter,
// unlike <tcp>/<udp> rules, which become iptables rules that silently do
// nothing when bridge-nf-call-iptables is off.
//
// Directions are seen from the guest ("out" = sent by the guest) and are
// always written explicitly in the guard; "inout" is never used there
// because libvirt mirrors its addresses on one side. The guard's actions
// are "return" and "drop".
//
// How the guard recognises the host: the bridge's MAC address is pinned
// (NetworkSpec.MAC = FilterSpec.BridgeMAC, M below). Every unicast frame a
// guest sends to the host carries M as destination, whatever host address
// it targets (the bridge address, an address of another host interface,
// another network's bridge address), and every frame the host sends to a
// guest carries M as source. So the guard matches MACs, not a list of host
// addresses it cannot know. With H the bridge address, the chain is:
//
//	priority    dir  match                                            action
//	-900        out  udp 68->67 from 0.0.0.0 to ff:ff:ff:ff:ff:ff/255.255.255.255  return  (DHCP, when DHCP)
//	-800..-798  out  udp 68->67 to ff:ff:ff:ff:ff:ff/255.255.255.255  return  (DHCP from $IP: rebinding)
//	            out  udp 68->67 to M/H                                return
//	            in   udp 67->68 from M/H                              return
//	-790..-787  out  udp and tcp to M/H port 53                       return  (DNS, when DNS)
//	            in   udp and tcp from M/H port 53                     return
//	-700..-401  allow rules with peer "host" (below)                  return
//	-400..-301  doors (publish and egress relays)                     return
//	-300        out  to M (any IPv4)                                  drop
//	-295        out  udp from port 67 (a guest's DHCP replies)        drop
//	-290        out  to H behind any MAC                              drop
//	-280..-278  out  to ff:ff:ff:ff:ff:ff, to the IPv4 multicast MACs
//	                 (01:00:5e/25), or to 224.0.0.0/4                 drop
//	-277        out  to the subnet's broadcast address, any MAC       drop  (with a subnet)
//	-276        out  to 255.255.255.255, any MAC                      drop
//	-275        out  to an address outside the subnet (match='no')  drop  (with a subnet)
//	-274        out  to a MAC outside 52:54:00/24 (match='no')        drop
//	-270        in   from M (any IPv4)                                drop
//	-260        in   from H behind any MAC                            drop
//
// Allow rules (AllowSpec, peer "host", H required), P = the port range:
//
//	in  tcp|udp P  in-frames from M/H to guest port P, and out-frames
//	               from guest port P to M/H ports 1024-65535 (replies)
//	out tcp|udp P  out-frames to M/H port P, and in-frames from M/H port
//	               P to guest ports 1024-65535 (replies)
//	icmp           ICMP to and from M/H, whatever the direction
//	any            all IPv4 to and from M/H, whatever the direction
//
// A tcp/udp allow without a port opens that protocol both ways (profiles
// write it port = "any", on purpose).
//
// These rules are stateless (ebtables has no connection tracking), which
// is their known limitation: the reply side is matched by ports only. An
// "in" allow for port P therefore also lets the guest send, from its port
// P, to every port from 1024 up on the bridge address H: a guest can reach
// unprivileged host services listening on H or on 0.0.0.0 by choosing P as
// its source port. (The reply side of an "out"
// allow only admits frames from the host, which the MAC spoof drop guarantees
// no guest can forge.) Keep allow rules few, and on hosts with allow rules
// bind services that guests must not reach to specific addresses (not
// 0.0.0.0) or to ports below 1024.
//
// Frames between guests (another guest's MAC) are untouched by the guard:
// guest-to-guest isolation is <port isolated='yes'/> on the network and
// the interfaces.
//
// Broadcast and multicast (decided here): every group-addressed frame a
// guest sends is also delivered to the host's bridge interface, and the
// host accepts broadcast and multicast IPv4, and even unicast IPv4 inside
// a broadcast frame (drop_unicast_in_l2_multicast is 0 by default). So a
// guest could reach host services (mDNS, LLMNR, NetBIOS, SSDP, DHCP
// itself...) without M. The guard therefore drops guest IPv4 frames to the
// broadcast MAC, to the IPv4 multicast MACs and to multicast addresses,
// except the DHCP requests returned above. libvirt only accepts MAC masks
// of leading ones, so the group bit alone cannot be matched; instead -274
// lets guest frames through only to MACs in the range legacyvm gives
// guests (virt.GuestMACPrefix, 52:54:00/24): any other group MAC
// (01:00:5e:80:..., 33:33:..., 03:...) is dropped. Before it, -277 and -276
// drop the subnet's broadcast address and the limited broadcast whatever
// the MAC (a guest frame to 10.77.0.255 inside a group MAC reached every
// UDP socket the host binds to 0.0.0.0: nmbd, rpcbind, snmpd, syslog; the
// replies were dropped, so only one-way probes saw it), and -275 drops
// every guest frame to an address outside the network's subnet (nothing
// outside it has a legitimate receiver on an isolated network). -295 drops
// the replies of a DHCP server a guest runs (from port 67, whatever the
// destination): on guest_to_guest networks its unicast offers would
// otherwise reach other guests and hand them a rogue router or DNS server.
// The price: broadcast and multicast discovery between guests (NetBIOS
// name broadcasts, LLMNR, SSDP, WS-Discovery) does not work; guests find
// each other by address, or by name through the network's local DNS when
// DNS is on (DHCP reservations register their names). Unicast IPv4 to H
// behind another MAC (a forged or mislearned neighbour entry) is dropped
// too (-290), and the host's own broadcasts and multicasts come from M and
// are dropped on the way in (-270), like anything the host would route
// onto the bridge. A frame to a host address that belongs
// to another bridge, sent to that bridge's MAC, is not delivered to the
// host's stack at all (the kernel drops frames for a foreign MAC), and
// IPv6 never passes the root filter.
//
// A network without a host address (layer 2 only) gets the same guard
// without the H rules: nothing is returned, everything to or from M and
// every group-addressed IPv4 frame is dropped.
//
// The guard is one layer: the network itself has no IPv6 and no DNS unless
// asked, and legacyvm doctor checks host conditions (ebtables present,
// rp_filter, firewalld zones) that the filter cannot see.
//
// # Metadata
//
// Domains and networks carry one element in Namespace inside <metadata>
// (domains also carry libosinfo's win7 annotation, which virt-manager
// reads). MetadataXML writes it (Domain and Network embed it);
// MetadataFragment is the namespace-less form virDomainSetMetadata takes
// (key MetadataPrefix, uri Namespace) and virDomainGetMetadata returns;
// ParseMetadata reads both and finds the element among foreign ones. nwfilters and volumes cannot carry metadata: they are named
// with legacyvm's prefix and listed in their domain's metadata.
package domainxml
