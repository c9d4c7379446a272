# single-vm: one Windows 7 VM cloned from a golden image.
#
# The golden image is a sysprepped Windows 7 SP1 x64 disk you built once.
# legacyvm creates a qcow2 overlay on top of it (a linked clone: seconds,
# and the golden image is never modified), gives the VM its own answer
# media for the specialize pass (computer name, product key, time zone) and
# takes a "clean" baseline snapshot once Windows has finished setting up.
#
# The product key is read from the environment only when a command needs
# it (apply); validate and plan never read it:
#
#   export WIN7_KEY=XXXXX-XXXXX-XXXXX-XXXXX-XXXXX
#   legacyvm validate examples/single-vm
#   legacyvm apply examples/single-vm

# The profile declares its name: it identifies its VMs in libvirt, so moving
# or renaming this directory keeps them.
profile {
  name = "single-vm"
}

variable "golden" {
  description = "Path of the sysprepped Windows 7 SP1 x64 golden image on the libvirt host."
  default     = "/var/lib/libvirt/images/win7-sp1-x64-golden.qcow2"
}

license "win7" {
  product_key = env("WIN7_KEY")
  edition     = "professional"
  channel     = "retail"
}

network "single" {
  subnet = "10.77.1.0/24"
  dhcp   = true
}

snapshot_policy "baseline" {
  baseline = "clean"
}

vm "legacy-app" {
  os     = "win7-x64"
  cpus   = 2
  memory = "4GiB"

  disk {
    image   = var.golden
    clone   = "linked"
    size    = "60GiB"
    prepare = "specialize"
  }

  windows {
    computer_name = "LEGACY-APP"
    time_zone     = "UTC"
  }

  licenses        = [license.win7]
  network         = network.single
  snapshot_policy = snapshot_policy.baseline
}
