package hostcheck

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// vnetTap matches the tap devices libvirt names for domain NICs.
var vnetTap = regexp.MustCompile(`^vnet[0-9]+$`)

// BridgePorts lists the members of a local bridge from
// /sys/class/net/BRIDGE/brif, leaving out libvirt's vnetN taps as its
// interface driver does.
func (h System) BridgePorts(ctx context.Context, bridge string) ([]virt.BridgePort, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := h.path(filepath.Join("sys/class/net", bridge, "brif"))
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bridge %s is not on this machine: %w", bridge, virt.ErrNotFound)
		}
		return nil, err
	}
	out := []virt.BridgePort{}
	for _, e := range ents {
		if vnetTap.MatchString(e.Name()) {
			continue
		}
		mac, _ := h.Read(filepath.Join("sys/class/net", e.Name(), "address"))
		out = append(out, virt.BridgePort{Name: e.Name(), MAC: mac})
	}
	return out, nil
}

// Socket is a listening TCP socket or a bound UDP socket.
type Socket struct {
	Proto string // "tcp" or "udp"
	Addr  netip.Addr
	Port  uint16
}

func (s Socket) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(s.Addr, s.Port), s.Proto)
}

// ListeningSockets reads /proc/net/{tcp,tcp6,udp,udp6} of the namespace
// the reader runs in: TCP sockets in LISTEN state and UDP sockets bound
// and not connected.
func (h System) ListeningSockets(ctx context.Context) ([]Socket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Socket
	for _, f := range []struct{ file, proto, state string }{
		{"tcp", "tcp", "0A"}, {"tcp6", "tcp", "0A"}, {"udp", "udp", "07"}, {"udp6", "udp", "07"},
	} {
		fh, err := os.Open(h.path(filepath.Join("proc/net", f.file)))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		first := true
		for sc.Scan() {
			if first {
				first = false
				continue
			}
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != f.state {
				continue
			}
			addr, port, ok := parseProcAddr(fields[1])
			if ok {
				out = append(out, Socket{Proto: f.proto, Addr: addr, Port: port})
			}
		}
		fh.Close()
	}
	return out, nil
}

// parseProcAddr parses /proc/net's "0100007F:0016" (IPv4) or 32 hex
// digits (IPv6), each 32-bit word in host (little-endian) order.
func parseProcAddr(s string) (netip.Addr, uint16, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, false
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return addr.Unmap(), uint16(port), true
}
