// Package fake is a stateful, in-memory virt.Hypervisor for fast tests of
// code that drives a hypervisor (the orchestrator, the CLI). It is not a call
// recorder: it keeps domains, networks, nwfilters, storage pools, volumes,
// snapshots and lifecycle events the way libvirt 9.0 with the QEMU driver
// does, and it passes the same conformance suite (package virttest) as the
// real libvirt adapter, so behaviour a test relies on here also holds on a
// real host.
//
// Definitions go through package domainxml exactly as in the adapter: what
// domainxml refuses is virt.ErrInvalid here too, and observations (Domain,
// Network, Filter, including their XML) are domainxml's rendering parsed
// back by domainxml.
//
// What it models:
//   - Domains run through shutoff -> running -> shutoff. StartDomain checks
//     that disk files (and backing chains), networks (active) and nwfilters
//     exist; UndefineDomain refuses a domain that is not shut off;
//     DefineDomain on an existing domain keeps its pinned machine type
//     ("pc" expands to pc-i440fx-7.2) and a running domain keeps its live
//     definition until it stops. Names and UUIDs are unique (ErrExists).
//   - ShutdownDomain makes the guest power off at once unless IgnoreACPI is
//     given; GuestPowerOff simulates a guest powering itself off.
//   - Events carry libvirt 9.0's sequences: start = resumed/unpaused,
//     started/booted; guest power-off = shutdown/guest, stopped/shutdown;
//     destroy = shutdown/host, stopped/destroyed; a running snapshot =
//     suspended/paused, resumed/unpaused; revert = stopped/from-snapshot (if
//     running), started/from-snapshot and resumed/from-snapshot (if the
//     snapshot ran), defined/from-snapshot. Each Events call gets its own
//     buffered channel; a full channel drops events, as the adapter does.
//   - Networks are started and autostarted by DefineNetwork. Redefining a
//     running network restarts it only when no running domain uses it;
//     otherwise changed DHCP reservations apply at once and any other
//     change leaves Network.Stale true until the next restart. DeleteNetwork
//     refuses a network a running domain uses. Leases come from the DHCP
//     reservations (or the range) of running domains' NICs. A stale
//     network reports its running definition (Network.Running).
//     BridgePorts lists what AttachToBridge enslaved (domain taps are left
//     out, as libvirt's interface driver does).
//   - nwfilters: libvirt's built-in filters exist from the start.
//     DeleteFilter returns ErrInUse while a defined domain references the
//     filter directly or through other filters. FilterDiff compares with
//     package filterdiff, like the adapter; TamperFilter edits a filter as
//     someone with virsh would.
//   - Storage is a map of host files. Pools are directories; a pool's
//     volumes are the files in its directory. PutFile (or WithFile) seeds
//     files that exist outside libvirt (golden images). Overlays record
//     their backing file; clones are flattened copies.
//   - Every file has a content generation counter. WriteDisk bumps it for a
//     domain's writable disks (what a running guest does), WriteFile for
//     one file, DiskGeneration reads it. Snapshots capture the domain's
//     state, its definition and the generation of each disk;
//     RevertSnapshot restores all three, so a revert observably restores
//     content. Internal snapshot names are recorded inside each qcow2 file
//     (InternalSnapshots): UndefineDomain drops snapshot metadata but, as on
//     libvirt, leaves them in the files; DeleteSnapshot removes them.
//
// Failures can be injected per method and object (FailOn, FailTimes); time
// comes from a clock option (WithClock); Disconnect and Reconnect simulate
// a lost connection. All methods are safe for concurrent use.
package fake
