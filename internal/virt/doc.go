// Package virt is the port between legacyvm's orchestrator and a
// virtualisation host: the Hypervisor interface the orchestrator needs,
// the value types it speaks (specs to create, observations to plan from)
// and sentinel errors. It imports nothing from libvirt.
//
// Implementations: package virt/libvirt (the real one, on
// libvirt.org/go/libvirt) and package virt/fake (a stateful in-memory
// host for fast tests). Package virt/virttest holds the conformance suite
// both must pass, so the fake cannot drift from reality.
package virt
