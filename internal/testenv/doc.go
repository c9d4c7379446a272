// Package testenv is legacyvm's hermetic libvirt test harness and its
// stand-in guest.
//
// # Private libvirtd per test binary
//
// Libvirt(t) starts (once per test binary) a libvirtd and a virtlogd inside
// a network namespace the harness creates (ip netns "lvt-<pid>-<random>",
// lo up) and a private mount namespace in which /etc/libvirt (a copy of the
// host's configuration and built-in nwfilters, without the host's domains,
// networks and pools), /run/libvirt, /var/lib/libvirt, /var/cache/libvirt
// and /var/log/libvirt are the instance's own directories. Every bridge,
// address, dnsmasq, nwfilter rule and QEMU process therefore lives in that
// namespace: the host's networks are never touched, and several test
// binaries (go test ./... runs packages in parallel) each get their own
// daemon. Clients in the root namespace connect with Env.URI,
// qemu:///system?socket=<Env.Dir>/sock/libvirt-sock. libvirtd runs under
// "tini -s" so QEMU processes are reaped at once. /dev/kvm is made 0666
// while any instance runs (libvirt re-probes QEMU on every start
// otherwise) and its mode is restored when the last instance stops.
//
// Env.Accel says which domain type to use: "kvm" only when libvirt offers
// it and the stand-in kernel really boots under KVM (a probe, cached until
// reboot), else "qemu" (TCG). LEGACYVM_TEST_ACCEL=tcg|kvm forces it.
//
// Packages that call Libvirt must run their tests through Main:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// Main stops the instance after the tests (destroys all domains through the
// URI, kills what is left in the namespace by PID, deletes the namespace and
// the instance directory). A test binary that is killed leaves its instance
// behind; the next Start (or "testenv reap") removes instances whose owner
// process is dead, and never touches live ones.
//
// If libvirt cannot be started (not root, packages missing), Libvirt fails
// the test when CI=true and skips it otherwise, naming the reason.
//
// # Several hosts
//
// StartInstance(t, opts) starts an instance of the test's own (stopped when
// the test ends), for tests that need several libvirt hosts. With
// Options.TLS the instance's libvirtd also listens for qemu+tls:// clients
// (--listen, port 16514) with certificates the harness generates with
// crypto/x509: a test CA shared by the process, a server certificate for
// TLSOptions.Addr and a client certificate in Env.PKIDir (Env.TLSURI uses
// it through ?pkipath=, nothing goes to /etc/pki). Link joins two
// instances' network namespaces with a veth pair (created in one, its peer
// moved into the other; nothing in the root namespace) and addresses both
// ends; Env.Command runs a client inside an instance's namespace, where it
// reaches the other instance across the link exactly as a remote client
// does. StopDaemon and StartDaemon stop libvirtd and start it again later
// (Restart does both), for tests of hosts that go away.
//
// # Stand-in guest
//
// Guest(t) returns a tiny Linux (Debian kernel + busybox-static, built by
// guest/build.sh from Debian packages, cached under
// ${LEGACYVM_CACHE:-$HOME/.cache/legacyvm}/guest-<hash of the inputs>) that
// replaces Windows in tests: a BIOS-bootable qcow2 golden disk (IDE, SATA,
// virtio), vmlinux + initrd for direct kernel boot, and an installer ISO
// (LEGACYVM-STANDIN) that imitates Windows Setup. The guest is configured
// with rig.KEY=VALUE words from the kernel command line, SMBIOS OEM strings
// (<sysinfo type='smbios'><oemStrings>) or fw_cfg, and reports "RIG ..."
// lines on its serial console (see guest/init.sh for the keys and lines):
// network address, connectivity checks, heartbeats (rig.hb), disk markers
// (rig.diskcheck, rig.disktouch, control port 7778), memory ballast
// (rig.ballast=MiB: that much RAM filled with random data and kept, so
// saves, snapshots and reverts move as much memory as a Windows desktop's) and the answer-CD mode
// (rig.answercd) that prints the ComputerName of an Autounattend.xml and
// powers off. It never prints the answer file, which holds a product key.
// An answer file that runs sysprep /generalize (legacyvm image build) puts
// the stand-in in image-build mode: it reports the phases (RIG phase setup,
// media, steps, generalize), writes the generalize marker (sector 57347)
// and powers off; a clone later reports "RIG specialize generalized=yes".
// When the domain has the org.qemu.guest_agent.0 virtio-serial channel, the
// guest runs Debian's qemu-guest-agent on it (packaged with its libraries
// by build.sh), so exec, cp and test are tested against a real agent.
//
// WaitSerial reads a serial log until a line matches.
package testenv
