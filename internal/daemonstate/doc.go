// Package daemonstate is the state file legacyvm daemon publishes after
// every tick, door change and isolation check (its relay's doors and its
// last check), which verify, status and plan read. It is never an input of
// the daemon itself: libvirt is the source of truth.
package daemonstate
