// Package orchestrator turns profiles into running, isolated, protected VMs:
// it computes desired state from a profiles.Profile, observes a host through
// the virt.Hypervisor port, plans the difference (a pure function of desired,
// observed and now), applies plans with bounded parallelism and compensating
// undo, destroys, resets, and runs snapshot policies. It reports progress
// through hooks and never imports cobra or libvirt.
package orchestrator
