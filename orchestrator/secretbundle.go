package orchestrator

import (
	"context"
	"fmt"
	"sync"

	"github.com/legacyvm/legacyvm/internal/license"
	"github.com/legacyvm/legacyvm/profiles"
)

// keyIdentifier is where a command reads its secrets (product keys and
// administrator passwords) and how it fingerprints product keys (see
// Options.ReadKeys).
type keyIdentifier struct {
	getenv      func(string) (string, bool)
	fingerprint FingerprintFunc
	on          bool
}

// sourceKeys reads keys and passwords from where the profile says (getenv
// nil: the process environment) and fingerprints keys with fingerprint
// (nil: no fingerprint, only the last group).
func sourceKeys(getenv func(string) (string, bool), fingerprint FingerprintFunc) keyIdentifier {
	return keyIdentifier{getenv: getenv, fingerprint: fingerprint, on: true}
}

// bundle starts the secret bundle of one command.
func (k keyIdentifier) bundle() *secretBundle { return newSecretBundle(k.getenv, k.fingerprint) }

// secretBundle holds the secrets one command reads: each product key (by
// licence block) and administrator password (by vm block) is read from its
// source at most once per command, however many VMs, hosts and steps need
// it (planning's seat check, apply's check that every secret is there
// before the first change, the answer media of each VM), so a command()
// source runs the user's program once. Failures are kept too: a source
// that failed is not asked again. The bundle lives in memory for the
// length of one command and is never printed (String redacts it).
type secretBundle struct {
	getenv      func(string) (string, bool)
	fingerprint FingerprintFunc

	mu        sync.Mutex
	keys      map[*profiles.License]*keyRead
	passwords map[*profiles.VM]*passwordRead
}

type keyRead struct {
	key license.Key
	err error
	// id is the key's identity once identify ran.
	id         keyID
	identified bool
}

type passwordRead struct {
	password string
	err      error
}

func newSecretBundle(getenv func(string) (string, bool), fingerprint FingerprintFunc) *secretBundle {
	return &secretBundle{getenv: getenv, fingerprint: fingerprint,
		keys: map[*profiles.License]*keyRead{}, passwords: map[*profiles.VM]*passwordRead{}}
}

// String and GoString keep the bundle's content out of any output.
func (b *secretBundle) String() string   { return "(secrets)" }
func (b *secretBundle) GoString() string { return "(secrets)" }

// key reads and parses the product key of l once. Errors name the source,
// never the value.
func (b *secretBundle) key(ctx context.Context, l *profiles.License) (*keyRead, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.keys[l]; ok {
		return r, r.err
	}
	r := &keyRead{}
	b.keys[l] = r
	raw, err := l.ProductKey.Read(ctx, b.getenv)
	if err != nil {
		r.err = fmt.Errorf("read product key of licence %s from %s: %w", l.Name, l.ProductKey, err)
		return r, r.err
	}
	if r.key, err = license.ParseKey(raw); err != nil {
		r.err = fmt.Errorf("product key of licence %s (from %s): %w", l.Name, l.ProductKey, err)
	}
	return r, r.err
}

// identify reads the keys of ls (once each) and returns their identities:
// the last group, and the keyed fingerprint when the bundle has a
// fingerprint function. held are the VMs of the hosts being planned that
// record a fingerprint (see FingerprintFunc).
func (b *secretBundle) identify(ctx context.Context, ls []*profiles.License, held []license.FingerprintHolder) (map[*profiles.License]keyID, error) {
	out := map[*profiles.License]keyID{}
	for _, l := range ls {
		r, err := b.key(ctx, l)
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		if !r.identified {
			id := keyID{LastGroup: r.key.LastGroup()}
			if b.fingerprint != nil {
				if id.Fingerprint, id.SecretID, err = b.fingerprint(r.key, held); err != nil {
					b.mu.Unlock()
					return nil, fmt.Errorf("fingerprint the key of licence %s: %w", l.Name, err)
				}
			}
			r.id, r.identified = id, true
		}
		out[l] = r.id
		b.mu.Unlock()
	}
	return out, nil
}

// password reads the administrator password of vm once.
func (b *secretBundle) password(ctx context.Context, vm *profiles.VM) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.passwords[vm]; ok {
		return r.password, r.err
	}
	r := &passwordRead{}
	b.passwords[vm] = r
	w := vm.Windows
	pw, err := w.AdminPassword.Read(ctx, b.getenv)
	if err != nil {
		r.err = fmt.Errorf("read administrator password from %s: %w", w.AdminPassword, err)
		return "", r.err
	}
	r.password = pw
	return pw, nil
}

// secrets are what provisioning one VM needs from the user's vaults.
type secrets struct {
	key license.Key
	// id is the key's identity when planning identified it (Fingerprint
	// "" otherwise: createVM fingerprints the key itself).
	id            keyID
	adminPassword string
}

// forVM returns the secrets provisioning dv needs (reading those not read
// yet): its licence's key, and the administrator password when it gets
// answer media.
func (b *secretBundle) forVM(ctx context.Context, dv *desiredVM) (secrets, error) {
	var s secrets
	if l := dv.License; l != nil && l.ProductKey.Kind != license.SourceNone {
		r, err := b.key(ctx, l)
		if err != nil {
			return s, err
		}
		b.mu.Lock()
		s.key, s.id = r.key, r.id
		b.mu.Unlock()
	}
	if dv.Answer {
		if w := dv.Instance.VM.Windows; w != nil && w.AdminPassword.Kind != license.SourceNone {
			pw, err := b.password(ctx, dv.Instance.VM)
			if err != nil {
				return s, err
			}
			s.adminPassword = pw
		}
	}
	return s, nil
}
