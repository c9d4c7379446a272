package libvirt

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Screenshot implements virt.Hypervisor: virDomainScreenshot of screen 0
// through a stream, read up to virt.MaxScreenshotBytes.
func (h *Hypervisor) Screenshot(ctx context.Context, name string) (virt.Screenshot, error) {
	const op = "screenshot"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return virt.Screenshot{}, err
	}
	defer d.Free()
	if err := h.requireRunning(d, op, name); err != nil {
		return virt.Screenshot{}, err
	}
	st, err := h.conn.NewStream(0)
	if err != nil {
		return virt.Screenshot{}, wrap(op, name, err)
	}
	defer st.Free()
	mime, err := d.Screenshot(st, 0, 0)
	if err != nil {
		return virt.Screenshot{}, wrap(op, name, err)
	}
	var data []byte
	var sinkErr error
	err = st.RecvAll(func(_ *libvirt.Stream, b []byte) (int, error) {
		if sinkErr = ctx.Err(); sinkErr != nil {
			return 0, sinkErr
		}
		if len(data)+len(b) > virt.MaxScreenshotBytes {
			sinkErr = failf(op, name, virt.ErrInvalid, "the picture holds more than %d bytes", virt.MaxScreenshotBytes)
			return 0, sinkErr
		}
		data = append(data, b...)
		return len(b), nil
	})
	if err != nil {
		_ = st.Abort()
		if sinkErr != nil {
			return virt.Screenshot{}, sinkErr
		}
		return virt.Screenshot{}, wrap(op, name, err)
	}
	if err := st.Finish(); err != nil {
		return virt.Screenshot{}, wrap(op, name, err)
	}
	return virt.Screenshot{MIME: mime, Data: data}, nil
}

// OpenGraphics implements virt.Hypervisor with virDomainOpenGraphicsFD
// on graphics device 0 (legacyvm's VNC display, loopback only).
func (h *Hypervisor) OpenGraphics(ctx context.Context, name string) (net.Conn, error) {
	const op = "open display"
	if u, err := url.Parse(h.uri); err != nil || (u.Host != "" && u.Hostname() != "localhost") {
		return nil, failf(op, name, virt.ErrUnsupported, "libvirt hands over a display socket only on a local connection (this is %s)", h.uri)
	}
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer d.Free()
	if err := h.requireRunning(d, op, name); err != nil {
		return nil, err
	}
	f, err := d.OpenGraphicsFD(0, 0)
	if err != nil {
		return nil, wrap(op, name, err)
	}
	defer f.Close() // FileConn dups the descriptor
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	return c, nil
}

// requireRunning returns ErrInvalidState unless d runs.
func (h *Hypervisor) requireRunning(d *libvirt.Domain, op, name string) error {
	state, _, err := d.GetState()
	if err != nil {
		return wrap(op, name, err)
	}
	if state != libvirt.DOMAIN_RUNNING && state != libvirt.DOMAIN_PAUSED {
		return failf(op, name, virt.ErrInvalidState, "domain is not running")
	}
	return nil
}

// DiskWrites implements virt.Hypervisor with virDomainBlockStats of each
// disk (by target) of the live definition.
func (h *Hypervisor) DiskWrites(ctx context.Context, name string) (int64, error) {
	const op = "disk statistics"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return 0, err
	}
	defer d.Free()
	if err := h.requireRunning(d, op, name); err != nil {
		return 0, err
	}
	dom, err := h.GetDomain(ctx, name)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, disk := range dom.Disks {
		if disk.Device != virt.DeviceDisk || disk.Target == "" {
			continue
		}
		if err := alive(ctx, op, name); err != nil {
			return 0, err
		}
		st, err := d.BlockStats(disk.Target)
		if err != nil {
			return 0, wrap(op, name, err)
		}
		if st.WrBytesSet && st.WrBytes > 0 {
			total += st.WrBytes
		}
	}
	return total, nil
}
