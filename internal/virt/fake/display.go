package fake

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// The fake display: every running domain shows a fixed-size picture (a
// pattern derived from its name, so two domains differ) through
// Screenshot (PNG, as libvirt 9 with QEMU 7.2 sends) and through OpenGraphics (a minimal
// RFB 3.8 server: no authentication, raw encoding, 32 bits per pixel).
const (
	displayWidth  = 64
	displayHeight = 48
)

// pixel is the fake display's colour at (x, y) of domain name.
func pixel(name string, x, y int) (r, g, b byte) {
	var seed byte
	for _, c := range name {
		seed = seed*31 + byte(c)
	}
	return byte(x*4) ^ seed, byte(y*5) + seed, 0x80 | byte(x+y)
}

// Screenshot implements virt.Hypervisor.
func (h *Hypervisor) Screenshot(ctx context.Context, name string) (virt.Screenshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "screenshot"
	if err := h.begin(ctx, "Screenshot", op, name); err != nil {
		return virt.Screenshot{}, err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return virt.Screenshot{}, err
	}
	if d.state != virt.StateRunning && d.state != virt.StatePaused {
		return virt.Screenshot{}, errf(op, name, virt.ErrInvalidState, "domain is not running")
	}
	img := image.NewRGBA(image.Rect(0, 0, displayWidth, displayHeight))
	for y := range displayHeight {
		for x := range displayWidth {
			r, g, b := pixel(name, x, y)
			img.SetRGBA(x, y, color.RGBA{r, g, b, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // an in-memory RGBA always encodes
	}
	return virt.Screenshot{MIME: "image/png", Data: buf.Bytes()}, nil
}

// OpenGraphics implements virt.Hypervisor. The fake is always local.
func (h *Hypervisor) OpenGraphics(ctx context.Context, name string) (net.Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "open display"
	if err := h.begin(ctx, "OpenGraphics", op, name); err != nil {
		return nil, err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return nil, err
	}
	if d.state != virt.StateRunning && d.state != virt.StatePaused {
		return nil, errf(op, name, virt.ErrInvalidState, "domain is not running")
	}
	client, server := net.Pipe()
	go serveRFB(server, name)
	return client, nil
}

// serveRFB speaks just enough RFB 3.8 for a VNC client (noVNC) to show the
// fake display: it ignores every client message but framebuffer update
// requests, which it answers with the whole picture in raw encoding.
func serveRFB(c net.Conn, name string) {
	defer c.Close()
	if _, err := io.WriteString(c, "RFB 003.008\n"); err != nil {
		return
	}
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c, buf); err != nil { // client version
		return
	}
	if _, err := c.Write([]byte{1, 1}); err != nil { // one type: None
		return
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil || buf[0] != 1 {
		return
	}
	if _, err := c.Write([]byte{0, 0, 0, 0}); err != nil { // security OK
		return
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil { // ClientInit
		return
	}
	title := "fake " + name
	init := binary.BigEndian.AppendUint16(nil, displayWidth)
	init = binary.BigEndian.AppendUint16(init, displayHeight)
	// 32 bpp, depth 24, little endian, true colour, max 255, shifts 16/8/0.
	init = append(init, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0)
	init = binary.BigEndian.AppendUint32(init, uint32(len(title)))
	init = append(init, title...)
	if _, err := c.Write(init); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(c, buf[:1]); err != nil {
			return
		}
		var skip int
		switch buf[0] {
		case 0: // SetPixelFormat
			skip = 19
		case 2: // SetEncodings
			if _, err := io.ReadFull(c, buf[:3]); err != nil {
				return
			}
			skip = 4 * int(binary.BigEndian.Uint16(buf[1:3]))
		case 3: // FramebufferUpdateRequest
			if _, err := io.ReadFull(c, buf[:9]); err != nil {
				return
			}
			if err := writeFrame(c, name); err != nil {
				return
			}
		case 4: // KeyEvent
			skip = 7
		case 5: // PointerEvent
			skip = 5
		case 6: // ClientCutText
			if _, err := io.ReadFull(c, buf[:7]); err != nil {
				return
			}
			skip = int(binary.BigEndian.Uint32(buf[3:7]))
		default:
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(skip)); err != nil {
			return
		}
	}
}

func writeFrame(w io.Writer, name string) error {
	msg := []byte{0, 0, 0, 1, 0, 0, 0, 0}
	msg = binary.BigEndian.AppendUint16(msg, displayWidth)
	msg = binary.BigEndian.AppendUint16(msg, displayHeight)
	msg = append(msg, 0, 0, 0, 0) // raw encoding
	for y := range displayHeight {
		for x := range displayWidth {
			r, g, b := pixel(name, x, y)
			msg = append(msg, b, g, r, 0)
		}
	}
	_, err := w.Write(msg)
	return err
}

// DiskWrites implements virt.Hypervisor: what GuestDiskWrite recorded
// since the domain's last start (the fake's guests write nothing by
// themselves).
func (h *Hypervisor) DiskWrites(ctx context.Context, name string) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "disk statistics"
	if err := h.begin(ctx, "DiskWrites", op, name); err != nil {
		return 0, err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return 0, err
	}
	if d.state != virt.StateRunning && d.state != virt.StatePaused {
		return 0, errf(op, name, virt.ErrInvalidState, "domain is not running")
	}
	return d.diskWrites, nil
}

// GuestDiskWrite simulates the running guest writing n bytes to its disks.
func (h *Hypervisor) GuestDiskWrite(name string, n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d := h.domains[name]; d != nil && d.state == virt.StateRunning {
		d.diskWrites += n
	}
}
