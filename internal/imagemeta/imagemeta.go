// Package imagemeta is the metadata legacyvm records beside each version
// of a golden image it built (the volume lvm-image-NAME-vN.meta.json): its
// JSON layout, encoding and validated decoding. It is pure: reading and
// writing the volume is the orchestrator's. The metadata never holds a
// secret.
package imagemeta

import (
	"encoding/json"
	"time"
)

// Format is the version of the Meta JSON layout.
const Format = 1

// Meta is what legacyvm records about an image version. It never holds
// a secret: the build used no product key and the build account's one-time
// password is not kept.
type Meta struct {
	Format  int    `json:"format"`
	Image   string `json:"image"`
	Version int    `json:"version"`
	Profile string `json:"profile"`
	OS      string `json:"os"`
	Edition string `json:"edition"`
	Arch    string `json:"arch"`
	// SourceISO and SourceSHA256 identify the installation media.
	SourceISO    string `json:"source_iso"`
	SourceSHA256 string `json:"source_sha256"`
	// Media are the extra media (base names and SHA-256 of the ISO
	// attached); Steps the names of the steps that ran.
	Media []Media  `json:"media,omitempty"`
	Steps []string `json:"steps,omitempty"`
	// BuiltAt is when the build finished (UTC); BuildSeconds how long it took.
	BuiltAt      time.Time `json:"built_at"`
	BuildSeconds int64     `json:"build_seconds"`
	// LegacyvmVersion is the version of legacyvm that built it.
	LegacyvmVersion string `json:"legacyvm_version"`
	// ContentSHA256 is the SHA-256 of the disk volume's bytes (its qcow2
	// file), as read through the storage API after registration.
	ContentSHA256 string `json:"content_sha256"`
	// CapacityBytes is the disk's virtual size.
	CapacityBytes uint64 `json:"capacity_bytes"`
	// Generalized is true: sysprep /generalize ran (the guest reported
	// the generalize phase and powered off).
	Generalized bool `json:"generalized"`
	SkipRearm   bool `json:"skip_rearm"`
}

// Media is one extra medium of a build.
type Media struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// Encode is the metadata as it is stored: indented JSON and a newline.
func (m Meta) Encode() []byte {
	doc, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(doc, '\n')
}

// Parse decodes the metadata of version of image; ok is false when b is not
// JSON, is of another Format or names another image or version (the volume
// is then not legacyvm's, or left incomplete).
func Parse(b []byte, image string, version int) (m Meta, ok bool) {
	if err := json.Unmarshal(b, &m); err != nil || m.Image != image || m.Version != version || m.Format != Format {
		return Meta{}, false
	}
	return m, true
}
