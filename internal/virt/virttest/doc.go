// Package virttest is the conformance suite for virt.Hypervisor
// implementations. Run drives an implementation through what the
// orchestrator relies on — domain definition and life cycle, networks,
// nwfilters, storage, internal snapshots, events, CD-ROM media and the
// mapping of failures onto virt's sentinel errors — and checks the observed
// results, not the calls made. The in-memory fake (package virt/fake) and
// the libvirt adapter (package virt/libvirt, against a real libvirtd with
// the stand-in guest) both run it, so the fake cannot drift from reality.
//
// Every case gets a fresh Harness from the caller, creates objects whose
// names start with "vt" and removes them again in t.Cleanup, so cases can
// share one daemon. Cases run one after the other.
package virttest
