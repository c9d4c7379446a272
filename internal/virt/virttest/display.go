package virttest

import (
	"bytes"
	"image/png"
	"io"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// testDisplay: Screenshot returns a PNG (or PPM) picture of a running domain's
// display, OpenGraphics a connection that speaks RFB and DiskWrites a count;
// none works on a shut-off or missing domain.
func testDisplay(e *env) {
	name := e.name("dp")
	vol := e.overlay(name)
	spec := e.domainSpec(name, vol.Path, nil, "")
	spec.OEMStrings = append(spec.OEMStrings, "rig.ip=none", "rig.listen=0", "rig.control=0")
	e.domain(spec)

	_, err := e.hv.Screenshot(e.ctx, name)
	e.wantErr(err, virt.ErrInvalidState, name, "screenshot of a shut-off domain")
	_, err = e.hv.Screenshot(e.ctx, e.name("nodom"))
	e.wantErr(err, virt.ErrNotFound, e.name("nodom"), "screenshot of a missing domain")
	_, err = e.hv.OpenGraphics(e.ctx, name)
	e.wantErr(err, virt.ErrInvalidState, name, "open the display of a shut-off domain")
	_, err = e.hv.OpenGraphics(e.ctx, e.name("nodom"))
	e.wantErr(err, virt.ErrNotFound, e.name("nodom"), "open the display of a missing domain")
	_, err = e.hv.DiskWrites(e.ctx, name)
	e.wantErr(err, virt.ErrInvalidState, name, "disk statistics of a shut-off domain")
	_, err = e.hv.DiskWrites(e.ctx, e.name("nodom"))
	e.wantErr(err, virt.ErrNotFound, e.name("nodom"), "disk statistics of a missing domain")

	e.must(e.hv.StartDomain(e.ctx, name), "start %s", name)
	defer func() {
		if err := e.hv.DestroyDomain(e.ctx, name); err != nil {
			e.Errorf("destroy %s: %v", name, err)
		}
	}()

	if n, err := e.hv.DiskWrites(e.ctx, name); err != nil || n < 0 {
		e.Errorf("disk writes of a running domain: %d, %v; want a count", n, err)
	}

	shot, err := e.hv.Screenshot(e.ctx, name)
	e.must(err, "screenshot of %s", name)
	// libvirt 9 with QEMU >= 7.1 sends PNG; older ones PPM.
	switch shot.MIME {
	case "image/png":
		cfg, err := png.DecodeConfig(bytes.NewReader(shot.Data))
		if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
			e.Errorf("screenshot: PNG of %d bytes: %+v, %v; want a picture", len(shot.Data), cfg, err)
		}
	case "image/x-portable-pixmap":
		if !bytes.HasPrefix(shot.Data, []byte("P6")) || len(shot.Data) < 100 {
			e.Errorf("screenshot: PPM of %d bytes starting %q; want a P6 picture", len(shot.Data), shot.Data[:min(len(shot.Data), 16)])
		}
	default:
		e.Errorf("screenshot: MIME %q, want image/png or image/x-portable-pixmap", shot.MIME)
	}

	c, err := e.hv.OpenGraphics(e.ctx, name)
	e.must(err, "open the display of %s", name)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	banner := make([]byte, 12)
	if _, err := io.ReadFull(c, banner); err != nil {
		e.Fatalf("read the RFB banner of %s: %v", name, err)
	}
	if !bytes.HasPrefix(banner, []byte("RFB 003.")) {
		e.Errorf("display of %s starts %q, want an RFB version banner", name, banner)
	}
}
