# install-media: a Windows 7 VM installed from your own installation media.
#
# No golden image is needed: legacyvm creates an empty 40 GiB disk, attaches
# your Windows 7 ISO and a second CD with a generated Autounattend.xml, and
# waits (at most timeout) until setup has finished and powered the guest
# off. It then removes the answer media (it holds the key), takes the
# "clean" baseline and starts the VM. The windows block sets what setup
# asks for; activation runs at first logon because activate = true.
#
# The key and the administrator password come from files that only you can
# read (chmod 600), relative to this directory:
#
#   mkdir -p secrets && chmod 700 secrets
#   printf '%s\n' 'XXXXX-XXXXX-XXXXX-XXXXX-XXXXX' > secrets/win7.key
#   chmod 600 secrets/win7.key
#   legacyvm apply examples/install-media      # -var iso=PATH for another ISO

# The profile declares its name: it identifies its VMs in libvirt, so moving
# or renaming this directory keeps them.
profile {
  name = "install-media"
}

variable "iso" {
  description = "Your Windows 7 SP1 x64 installation ISO."
  default     = "/var/lib/libvirt/images/win7-sp1-x64.iso"
}

license "ultimate" {
  product_key = file("secrets/win7.key")
  edition     = "ultimate"
  channel     = "retail"
}

network "install" {
  subnet = "10.77.2.0/24"
  dhcp   = true
}

snapshot_policy "baseline" {}

vm "fresh" {
  os      = "win7-x64"
  machine = "pc"
  cpus    = 2
  memory  = "4GiB"

  disk {
    size = "40GiB"
    install {
      iso     = var.iso
      edition = "ultimate"
      timeout = "3h"
    }
  }

  windows {
    computer_name  = "FRESH-W7"
    time_zone      = "W. Europe Standard Time"
    locale         = "en-GB"
    input_locale   = "0809:00000809"
    admin_user     = "labadmin"
    admin_password = file("secrets/admin.password")
    activate       = true
  }

  licenses        = [license.ultimate]
  network         = network.install
  snapshot_policy = snapshot_policy.baseline
}
