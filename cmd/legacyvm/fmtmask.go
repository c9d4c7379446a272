package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"github.com/legacyvm/legacyvm/profiles"
)

// secretLiteralsFor returns the literals of the file name (content src)
// and of the other *.hcl files of its directory (the rest of its profile)
// that flow into a secret attribute; see profiles.SecretLiterals.
func secretLiteralsFor(name string, src []byte) []string {
	files := map[string][]byte{name: src}
	if name != "<stdin>" {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(name), "*.hcl"))
		for _, sib := range m {
			if sib == name || strings.HasPrefix(filepath.Base(sib), ".") {
				continue
			}
			if st, err := os.Stat(sib); err != nil || !st.Mode().IsRegular() || st.Size() > profiles.MaxProfileFileSize {
				continue
			}
			if b, err := os.ReadFile(sib); err == nil {
				files[sib] = b
			}
		}
	}
	return profiles.SecretLiterals(files)
}

// maskLiterals replaces each literal in b with as many X (dashes and
// spaces kept, so the shape of a key stays visible).
func maskLiterals(b []byte, literals []string) []byte {
	for _, lit := range literals {
		if lit == "" {
			continue
		}
		masked := []byte(lit)
		for i, c := range masked {
			if c != '-' && c != ' ' {
				masked[i] = 'X'
			}
		}
		b = bytes.ReplaceAll(b, []byte(lit), masked)
	}
	return b
}
