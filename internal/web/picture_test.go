package web

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

func TestToPNG(t *testing.T) {
	ppm := append([]byte("P6\n# QEMU\n3 2\n255\n"), bytes.Repeat([]byte{10, 200, 30}, 6)...)
	out, err := toPNG(virt.Screenshot{MIME: "image/x-portable-pixmap", Data: ppm})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil || img.Bounds().Dx() != 3 || img.Bounds().Dy() != 2 {
		t.Fatalf("PNG of the PPM: %v %v", img.Bounds(), err)
	}
	if r, g, b, _ := img.At(2, 1).RGBA(); r>>8 != 10 || g>>8 != 200 || b>>8 != 30 {
		t.Errorf("pixel = %d,%d,%d", r>>8, g>>8, b>>8)
	}
	// 16-bit samples scale down.
	ppm16 := append([]byte("P6 1 1 65535\n"), 0xff, 0xff, 0, 0, 0x80, 0)
	out, err = toPNG(virt.Screenshot{MIME: "image/x-portable-pixmap", Data: ppm16})
	if err != nil {
		t.Fatal(err)
	}
	img, _ = png.Decode(bytes.NewReader(out))
	if r, g, b, _ := img.At(0, 0).RGBA(); r>>8 != 255 || g>>8 != 0 || b>>8 != 127 {
		t.Errorf("16-bit pixel = %d,%d,%d", r>>8, g>>8, b>>8)
	}
}

// The guest controls the framebuffer: dimensions and lengths are never
// trusted.
func TestToPNGRefusesHostileInput(t *testing.T) {
	huge := fmt.Appendf(nil, "P6\n%d %d\n255\n", 100000, 100000)
	wide := fmt.Appendf(nil, "P6\n%d %d\n255\n", 5000, 1)
	var bigPNG bytes.Buffer
	// A PNG header claiming 30000x30000 (only the header: DecodeConfig
	// must refuse before any pixel is allocated).
	bigPNG.Write([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x75\x30\x00\x00\x75\x30\x08\x02\x00\x00\x00\x00\x00\x00\x00"))
	for name, s := range map[string]virt.Screenshot{
		"huge PPM":        {MIME: "image/x-portable-pixmap", Data: huge},
		"too wide":        {MIME: "image/x-portable-pixmap", Data: wide},
		"truncated":       {MIME: "image/x-portable-pixmap", Data: []byte("P6\n4 4\n255\n\x01\x02")},
		"zero":            {MIME: "image/x-portable-pixmap", Data: []byte("P6\n0 4\n255\n")},
		"negative":        {MIME: "image/x-portable-pixmap", Data: []byte("P6\n-4 4\n255\n")},
		"P3":              {MIME: "image/x-portable-pixmap", Data: []byte("P3\n1 1\n255\n1 2 3\n")},
		"long token":      {MIME: "image/x-portable-pixmap", Data: append([]byte("P6\n"), bytes.Repeat([]byte("9"), 100)...)},
		"huge PNG header": {MIME: "image/png", Data: bigPNG.Bytes()},
		"garbage PNG":     {MIME: "image/png", Data: []byte("not a png")},
		"other type":      {MIME: "image/gif", Data: []byte("GIF89a")},
		"empty":           {MIME: "image/png"},
	} {
		if _, err := toPNG(s); !errors.Is(err, errBadPicture) {
			t.Errorf("%s: %v, want errBadPicture", name, err)
		}
	}
}
