# lab: two identical Windows 7 VMs on one isolated network.
#
# count = 2 makes two instances, acct-1 and acct-2, each with its own
# linked clone of the golden image and its own licence seat: the MAK below
# allows two activations, so seats = 2. The network has no route anywhere:
# guests get addresses by DHCP from the host, can talk to each other
# (guest_to_guest), and may reach nothing else except what an allow rule
# permits. Here the only extra flow is RDP from the host into the guests.
#
#   export ACCT_WIN7_MAK=XXXXX-XXXXX-XXXXX-XXXXX-XXXXX
#   legacyvm apply examples/lab
#   xfreerdp /v:10.77.0.x      # from the host only
#
# guest_agent = true adds the QEMU guest agent's virtio-serial channel (no
# network path): with the agent installed in the golden image (see
# docs/guest-agent.md), `legacyvm test examples/lab smoke` resets both VMs,
# copies tests/smoke.cmd in, runs it, copies its log out and resets again.

# The profile declares its name: it identifies its VMs in libvirt, so moving
# or renaming this directory keeps them.
profile {
  name = "lab"
}

variable "golden" {
  default = "/var/lib/libvirt/images/win7-sp1-x64-golden.qcow2"
}

license "acct" {
  product_key = env("ACCT_WIN7_MAK")
  edition     = "professional"
  channel     = "mak"
  seats       = 2
}

network "acct-lab" {
  subnet         = "10.77.0.0/24"
  dhcp           = true
  guest_to_guest = true

  allow "rdp-from-host" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 3389
  }
}

snapshot_policy "clean" {
  baseline    = "clean"
  on_shutdown = "revert"
}

vm "acct" {
  count  = 2
  os     = "win7-x64"
  cpus   = 2
  memory = "4GiB"

  disk {
    image = var.golden
    clone = "linked"
    size  = "60GiB"
  }

  windows {
    computer_name = "ACCT-${count.index}"
  }

  guest_agent     = true
  licenses        = [license.acct]
  network         = network.acct-lab
  snapshot_policy = snapshot_policy.clean
}

test "smoke" {
  vms   = [vm.acct]
  reset = "both"

  step "copy_in" {
    from = "tests/smoke.cmd"
    to   = "C:\\stage\\smoke.cmd"
  }
  step "run" {
    command = ["cmd", "/c", "C:\\stage\\smoke.cmd"]
    timeout = "10m"
  }
  step "copy_out" {
    from = "C:\\stage\\smoke.log"
  }
}
