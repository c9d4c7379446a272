package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/legacyvm/legacyvm/internal/license"
)

// sharedKey is the organisation's fingerprint secret named by the profile
// (fingerprint_key), read once per command.
type sharedKey struct {
	source license.Source
	once   sync.Once
	fp     *license.Fingerprinter
	err    error
}

// useProfileFingerprintKey makes fingerprints use the profile's shared
// secret instead of the user's own secret file (no-op for SourceNone).
func (f *Factory) useProfileFingerprintKey(src license.Source) {
	if src.Kind == license.SourceNone {
		return
	}
	f.shared = &sharedKey{source: src}
}

// sharedFingerprinter returns the fingerprinter of the profile's shared
// secret, or nil when the profile names none.
func (f *Factory) sharedFingerprinter() (*license.Fingerprinter, error) {
	s := f.shared
	if s == nil {
		return nil, nil
	}
	s.once.Do(func() {
		v, err := s.source.Read(context.Background(), f.Getenv)
		if err != nil {
			s.err = fmt.Errorf("fingerprint_key %s: %w", s.source, err)
			return
		}
		b, err := license.ParseSharedSecret(v)
		if err != nil {
			s.err = fmt.Errorf("fingerprint_key %s: %w", s.source, err)
			return
		}
		s.fp, s.err = license.NewFingerprinter(b)
	})
	return s.fp, s.err
}
