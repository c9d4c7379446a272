// Package lock keeps two legacyvm commands on this machine from racing on
// the same profile, VM or golden image: advisory flocks on files in one
// checked directory (Dir), released by the kernel when the process dies.
package lock
