// Package license handles Windows product keys and the licences that hold
// them: parsing and normalising keys, validating their format, redacting them
// for display, reading them from where a profile says they live (environment,
// file, command), keyed fingerprints that detect reuse without storing keys,
// and the seat rules of each licensing channel.
//
// The Key type never prints its value: String, GoString, Format and
// MarshalJSON all produce the redacted form. Only Reveal returns the key, and
// only code that builds answer media may call it. ParseKey errors describe
// the problem by position and character class, never by content.
//
// Fingerprinter turns a key into "hmac1:<hex>" with a per-host secret kept in
// a 0600 file (DefaultFingerprintPath), created on first use. legacyvm stores
// fingerprints and last groups, never keys.
//
// CheckSeats is the pure seat-accounting rule set: retail and OEM keys serve
// one VM at a time (across labels and profiles), a MAK serves at most the
// declared activations, KMS serves any number of VMs but needs the
// organisation's KMS host. Planning feeds it the profile's claims and the
// seats recorded in the host's domain metadata.
//
// What this package never does: it ships no keys (not even Microsoft's
// published KMS client keys: the user supplies every key), generates or
// guesses none, and knows nothing about getting around activation.
package license
