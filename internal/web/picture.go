package web

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"strconv"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// maxPictureSide bounds each side of a screenshot: the framebuffer is the
// guest's and its dimensions are never trusted.
const maxPictureSide = 4096

// errBadPicture: the screenshot could not be decoded within the bounds.
var errBadPicture = errors.New("unusable screenshot")

// toPNG decodes a screenshot (PNG or binary PPM) with bounded dimensions
// and encodes it again as PNG: nothing the guest produced is passed on
// without being decoded into pixels first.
func toPNG(s virt.Screenshot) ([]byte, error) {
	var img image.Image
	var err error
	switch s.MIME {
	case "image/png":
		cfg, cerr := png.DecodeConfig(bytes.NewReader(s.Data))
		if cerr != nil {
			return nil, fmt.Errorf("%w: %v", errBadPicture, cerr)
		}
		if err := checkSides(cfg.Width, cfg.Height); err != nil {
			return nil, err
		}
		img, err = png.Decode(bytes.NewReader(s.Data))
	case "image/x-portable-pixmap":
		img, err = decodePPM(s.Data)
	default:
		return nil, fmt.Errorf("%w: type %q", errBadPicture, s.MIME)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadPicture, err)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func checkSides(w, h int) error {
	if w <= 0 || h <= 0 || w > maxPictureSide || h > maxPictureSide {
		return fmt.Errorf("%w: %dx%d pixels (at most %d on a side)", errBadPicture, w, h, maxPictureSide)
	}
	return nil
}

// decodePPM decodes a binary PPM (P6) with a maximum value of at most 255
// (what QEMU writes) or up to 65535 (two bytes a sample).
func decodePPM(data []byte) (image.Image, error) {
	r := bufio.NewReader(bytes.NewReader(data))
	magic, err := ppmToken(r)
	if err != nil || magic != "P6" {
		return nil, fmt.Errorf("not a binary PPM (magic %q)", magic)
	}
	var nums [3]int
	for i := range nums {
		tok, err := ppmToken(r)
		if err != nil {
			return nil, fmt.Errorf("PPM header: %v", err)
		}
		n, err := strconv.Atoi(tok)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("PPM header: bad number %q", tok)
		}
		nums[i] = n
	}
	w, h, maxVal := nums[0], nums[1], nums[2]
	if err := checkSides(w, h); err != nil {
		return nil, err
	}
	// One whitespace byte ends the header (ppmToken consumed it).
	bps := 1
	if maxVal > 255 {
		bps = 2
	}
	pix := make([]byte, w*h*3*bps)
	if _, err := io.ReadFull(r, pix); err != nil {
		return nil, fmt.Errorf("PPM pixels: %v", err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i, j := 0, 0; i < w*h; i++ {
		for c := range 3 {
			v := int(pix[j])
			if bps == 2 {
				v = v<<8 | int(pix[j+1])
			}
			j += bps
			img.Pix[i*4+c] = byte(v * 255 / maxVal)
		}
		img.Pix[i*4+3] = 255
	}
	return img, nil
}

// ppmToken reads one whitespace-separated header token, skipping comments,
// and consumes the single whitespace byte after it. Tokens are short.
func ppmToken(r *bufio.Reader) (string, error) {
	var tok []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			if len(tok) > 0 && err == io.EOF {
				return string(tok), nil
			}
			return "", err
		}
		switch {
		case b == '#' && len(tok) == 0:
			for b != '\n' {
				if b, err = r.ReadByte(); err != nil {
					return "", err
				}
			}
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
			if len(tok) > 0 {
				return string(tok), nil
			}
		default:
			if len(tok) >= 16 {
				return "", errors.New("header token too long")
			}
			tok = append(tok, b)
		}
	}
}
