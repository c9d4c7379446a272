# quickstart: the stand-in demo from the README's first command.
#
# Windows cannot be shipped or downloaded, so this profile runs a tiny Linux
# stand-in guest built by the test harness instead of a Windows 7 golden
# image. Everything legacyvm does around the guest is the same: linked
# clone, isolated network with DHCP, default-deny filters, baseline
# snapshot. prepare = "none" because the stand-in needs no Windows answer
# media, and there is no licence because no Windows runs.
#
#   legacyvm validate examples/quickstart
#   legacyvm apply examples/quickstart   # -var golden=PATH; ./scripts/run demo does it all

# The profile declares its name: it identifies its VMs in libvirt, so moving
# or renaming this directory keeps them.
profile {
  name = "quickstart"
}

variable "golden" {
  description = "The stand-in guest image (built by the test harness)."
  default     = "/var/lib/libvirt/images/legacyvm-standin.qcow2"
}

network "demo" {
  subnet = "10.77.7.0/24"
  dhcp   = true
}

snapshot_policy "demo" {}

vm "demo" {
  os     = "win7-x64"
  cpus   = 1
  memory = "2GiB"

  disk {
    image   = var.golden
    prepare = "none"
  }

  network         = network.demo
  snapshot_policy = snapshot_policy.demo
}
