// Package testenv starts what integration tests need: a private libvirtd and
// virtlogd inside a network namespace the harness creates (so every bridge,
// address and dnsmasq lives there), the tiny stand-in guest image built from
// Debian packages, and helpers to read a guest's serial console. With
// CI=true a test that needs libvirt fails instead of skipping.
package testenv
