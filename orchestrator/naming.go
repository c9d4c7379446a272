package orchestrator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/uuid"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// namePrefix starts the name of every network, bridge, nwfilter and volume
// legacyvm creates. Domains keep the instance name the user chose; they are
// recognised by their metadata.
const namePrefix = "lvm-"

// identityNamespace seeds name-based UUIDs (RFC 4122 v5) for legacyvm objects.
var identityNamespace = uuid.MustParse("6f1c2a4e-8d0b-5e7a-9c3f-4b2d1e0a7c55")

// networkName is the libvirt network (and bridge) name of a profile network.
// profiles validates network names so that this stays within Linux's
// 15-character interface name limit.
func networkName(network string) string { return namePrefix + network }

// filterName is the root nwfilter of a profile network; its guard is
// filterName + "-guard" (see virt.FilterSpec.Names).
func filterName(network string) string { return namePrefix + network }

// systemVolumeName is the system disk volume of an instance.
func systemVolumeName(instance string) string { return namePrefix + instance + "-system.qcow2" }

// answerVolumeName is the answer-media volume of an instance.
func answerVolumeName(instance string) string { return namePrefix + instance + "-answer.iso" }

// isOwnedName reports whether a network, filter or volume name carries
// legacyvm's prefix.
func isOwnedName(name string) bool { return strings.HasPrefix(name, namePrefix) }

// identity is the stable hardware identity of an instance: the same inputs
// give the same UUID, MAC and SMBIOS serial on every run and every machine,
// so re-applying never changes what Windows sees.
type identity struct {
	UUID   string
	MAC    string
	Serial string
}

func instanceIdentity(profile, instance string) identity {
	key := "domain/" + profile + "/" + instance
	sum := sha256.Sum256([]byte(key))
	return identity{
		UUID:   uuid.NewSHA1(identityNamespace, []byte(key)).String(),
		MAC:    localMAC(sum[:3]),
		Serial: "LVM-" + strings.ToUpper(hex.EncodeToString(sum[3:11])),
	}
}

func networkIdentity(profile, network string) (uuidStr, mac string) {
	key := "network/" + profile + "/" + network
	sum := sha256.Sum256([]byte(key))
	return uuid.NewSHA1(identityNamespace, []byte(key)).String(), localMAC(sum[:3])
}

func filterUUID(profile, network string) string {
	return uuid.NewSHA1(identityNamespace, []byte("filter/"+profile+"/"+network)).String()
}

// localMAC builds a MAC in QEMU's 52:54:00 range from three bytes.
func localMAC(b []byte) string {
	return fmt.Sprintf("%s:%02x:%02x:%02x", virt.GuestMACPrefix, b[0], b[1], b[2])
}

// hostAddrOffset is where instance reservations start inside a subnet
// (.1 is the host; .2-.9 are left for the user's static needs).
const hostAddrOffset = 10

// addrAt returns the n-th address of p (0 = network address).
func addrAt(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// subnetSize is the number of addresses in p (IPv4).
func subnetSize(p netip.Prefix) int { return 1 << (32 - p.Bits()) }

// dhcpPool returns the dynamic range: the top quarter of the subnet, minus
// the broadcast address. Reservations are allocated below it.
func dhcpPool(p netip.Prefix) (start, end netip.Addr, reservable int) {
	size := subnetSize(p)
	q := size / 4
	if q < 2 {
		q = 2
	}
	start = addrAt(p, size-q)
	end = addrAt(p, size-2)
	return start, end, size - q - hostAddrOffset
}
