// Package fake is a stateful, in-memory virt.Hypervisor for fast tests of
// code that drives a hypervisor (the orchestrator, the CLI). It is not a call
// recorder: it keeps domains, networks, nwfilters, storage pools, volumes,
// snapshots and lifecycle events the way libvirt 9.0 with the QEMU driver
// does, and it passes the same conformance suite (package virttest) as the
// real libvirt adapter, so behaviour a test relies on here also holds on a
// real host.
//
// What it models:
//   - Domains run through shutoff -> running -> shutoff. StartDomain checks
//     that disks, networks (active) and nwfilters exist; UndefineDomain
//     refuses a domain that is not shut off; DefineDomain on an existing
//     domain keeps its pinned machine type ("pc" expands to pc-i440fx-7.2)
//     and a running domain keeps its live definition until it stops.
//   - ShutdownDomain makes the guest power off at once (unless IgnoreACPI is
//     given); GuestPowerOff and GuestCrash simulate what a guest does on its
//     own. Every transition emits the lifecycle events libvirt emits.
//   - Networks are started and autostarted by DefineNetwork. Redefining a
//     running network restarts it only when no running domain uses it,
//     otherwise Network.Stale is true until the next restart. Leases come
//     from the DHCP reservations (or the range) of running domains' NICs.
//   - nwfilters: the libvirt built-in filters exist from the start.
//     DeleteFilter returns ErrInUse while a defined domain references the
//     filter directly or through other filters.
//   - Storage is a map of host files. Pools are directories; a pool's
//     volumes are the files in its directory. PutFile seeds files that exist
//     outside any pool (golden images). Overlays record their backing file.
//   - Every file has a content generation counter. WriteDisk bumps it for a
//     domain's writable disks (what a running guest does) and
//     DiskGeneration reads it. Snapshots capture the domain's state, its
//     definition and the generation of each disk; RevertSnapshot restores
//     all three, so a revert observably restores content. Internal
//     snapshot names are recorded inside each qcow2 file (InternalSnapshots):
//     UndefineDomain drops snapshot metadata but, as on libvirt, leaves them
//     in the files; DeleteSnapshot removes them.
//
// Failures can be injected per method and object (FailOn); time comes from
// a clock option (WithClock). UUIDs it generates are deterministic for a
// given sequence of calls. All methods are safe for concurrent use.
package fake
