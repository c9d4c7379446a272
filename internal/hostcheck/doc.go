// Package hostcheck reads the machine legacyvm runs on (which is the
// libvirt host when the URI is local): the tools libvirt's traffic filters
// need, kernel settings (/proc/sys) and firewall rules (iptables) that
// weaken isolation, bridge members (/sys/class/net) and listening sockets
// (/proc/net). It never changes anything. Tests point System at a fake
// root.
package hostcheck
