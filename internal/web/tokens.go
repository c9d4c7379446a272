package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/legacyvm/legacyvm/internal/atomicfile"
)

// Role is what a token may do.
type Role string

const (
	// RoleViewer sees profiles, VMs, snapshots, screenshots and events.
	RoleViewer Role = "viewer"
	// RoleTester may also reset, revert, snapshot, start, stop and use
	// the console.
	RoleTester Role = "tester"
	// RoleAdmin may do everything, including apply and destroy the
	// profiles the server serves.
	RoleAdmin Role = "admin"
)

// Roles lists the roles from least to most powerful.
var Roles = []Role{RoleViewer, RoleTester, RoleAdmin}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: use viewer, tester or admin", s)
}

// Allows reports whether r includes what need requires.
func (r Role) Allows(need Role) bool {
	return slices.Index(Roles, r) >= slices.Index(Roles, need) && slices.Contains(Roles, need)
}

// Token is a stored API token: everything but the secret, of which only
// the SHA-256 hash is kept.
type Token struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Role Role   `json:"role"`
	// Profiles scopes the token; empty means every profile.
	Profiles []string  `json:"profiles,omitempty"`
	Created  time.Time `json:"created"`
	// Hash is the hex SHA-256 of the whole secret token.
	Hash string `json:"sha256"`
}

// Sees reports whether the token may see VMs of profile.
func (t Token) Sees(profile string) bool {
	return len(t.Profiles) == 0 || slices.Contains(t.Profiles, profile)
}

// Who names the token in the audit log and server logs (never the secret).
func (t Token) Who() string {
	if t.Name != "" {
		return t.ID + " (" + t.Name + ")"
	}
	return t.ID
}

// tokenPrefix starts every secret token, so that a leaked one is
// recognisable (secret scanners) and a typo is caught early.
const tokenPrefix = "lvmt_"

// TokenStore keeps tokens in a JSON file (mode 0600, replaced atomically).
type TokenStore struct {
	path string
	mu   sync.Mutex
}

// NewTokenStore opens the store at path (the file need not exist yet).
func NewTokenStore(path string) *TokenStore { return &TokenStore{path: path} }

// Path is the store's file.
func (s *TokenStore) Path() string { return s.path }

type tokenFile struct {
	FormatVersion int     `json:"format_version"`
	Tokens        []Token `json:"tokens"`
}

func (s *TokenStore) load() ([]Token, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	var f tokenFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("read tokens %s: %w", s.path, err)
	}
	if f.FormatVersion != 1 {
		return nil, fmt.Errorf("read tokens %s: unknown format_version %d", s.path, f.FormatVersion)
	}
	return f.Tokens, nil
}

func (s *TokenStore) save(ts []Token) error {
	data, err := json.MarshalIndent(tokenFile{FormatVersion: 1, Tokens: ts}, "", "  ")
	if err != nil {
		panic(err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	data = append(data, '\n')
	if _, err := os.Lstat(s.path); errors.Is(err, os.ErrNotExist) {
		// The first token: a new file, written atomically with mode 0600.
		err = renameio.WriteFile(s.path, data, 0o600)
		if err != nil {
			return fmt.Errorf("write tokens %s: %w", s.path, err)
		}
		return nil
	}
	if err := atomicfile.Replace(s.path, data); err != nil {
		return fmt.Errorf("write tokens %s: %w", s.path, err)
	}
	// atomicfile keeps the mode of the file it replaces: make sure it is
	// 0600 even if someone widened it.
	if err := os.Chmod(s.path, 0o600); err != nil {
		return fmt.Errorf("write tokens %s: %w", s.path, err)
	}
	return nil
}

// Create makes a token and returns its secret, which is never stored and
// cannot be shown again.
func (s *TokenStore) Create(name string, role Role, profiles []string, now time.Time) (string, Token, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return "", Token{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, err := s.load()
	if err != nil {
		return "", Token{}, err
	}
	idb := make([]byte, 6)
	key := make([]byte, 32)
	rand.Read(idb)
	rand.Read(key)
	id := hex.EncodeToString(idb)
	secret := tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(key)
	t := Token{ID: id, Name: name, Role: role, Profiles: slices.Clone(profiles), Created: now.UTC(), Hash: hashToken(secret)}
	slices.Sort(t.Profiles)
	t.Profiles = slices.Compact(t.Profiles)
	if err := s.save(append(ts, t)); err != nil {
		return "", Token{}, err
	}
	return secret, t, nil
}

// List returns the stored tokens (hashes included), oldest first.
func (s *TokenStore) List() ([]Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load()
}

// ErrNoToken: no stored token has that id.
var ErrNoToken = errors.New("no such token")

// Revoke deletes the token with id (or name, when unique).
func (s *TokenStore) Revoke(idOrName string) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, err := s.load()
	if err != nil {
		return Token{}, err
	}
	i := slices.IndexFunc(ts, func(t Token) bool { return t.ID == idOrName })
	if i < 0 {
		var named []int
		for j, t := range ts {
			if t.Name != "" && t.Name == idOrName {
				named = append(named, j)
			}
		}
		if len(named) > 1 {
			return Token{}, fmt.Errorf("revoke token %q: %d tokens have that name, give the id", idOrName, len(named))
		}
		if len(named) == 1 {
			i = named[0]
		}
	}
	if i < 0 {
		return Token{}, fmt.Errorf("revoke token %q: %w", idOrName, ErrNoToken)
	}
	t := ts[i]
	if err := s.save(slices.Delete(ts, i, i+1)); err != nil {
		return Token{}, err
	}
	return t, nil
}

// Authenticate returns the token whose secret is secret. The file is read
// every time, so a revoked token stops working at once.
func (s *TokenStore) Authenticate(secret string) (Token, bool) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 200 {
		return Token{}, false
	}
	ts, err := s.List()
	if err != nil {
		return Token{}, false
	}
	h := hashToken(secret)
	for _, t := range ts {
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) == 1 {
			return t, true
		}
	}
	return Token{}, false
}

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
