// Package libvirt implements virt.Hypervisor on libvirt.org/go/libvirt. It is
// the only package that imports the cgo binding. Every object libvirt returns
// is freed; libvirt.Error codes are translated into virt's sentinel errors;
// errors name the object they concern.
package libvirt
