// Package license handles Windows product keys and the licences that hold
// them: parsing and normalising keys, validating their format, redacting them
// for display, reading them from where a profile says they live (environment,
// file, command), keyed fingerprints that detect reuse without storing keys,
// and the seat rules of each licensing channel.
//
// The Key type never prints its value: String, GoString, Format and
// MarshalJSON all produce the redacted form. Only Reveal returns the key, and
// only code that builds answer media may call it.
package license
