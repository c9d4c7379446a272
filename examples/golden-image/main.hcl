# golden-image: build a sysprepped Windows 7 golden image from your own media,
# then clone two VMs from it by reference.
#
#   sha256sum /srv/iso/win7-sp1-x64.iso          # put the first column in iso_sha256
#   legacyvm image build examples/golden-image w7pro -var iso=... -var iso_sha256=...
#   legacyvm image list examples/golden-image
#   ACCT_KEY_1=... ACCT_KEY_2=... legacyvm apply examples/golden-image -var iso=... -var iso_sha256=...
#
# The build runs in a temporary VM without any network and uses no product
# key: the image holds none. Each clone gets its own computer name and key in
# its own specialize pass (answer media that is deleted right after). A
# rebuild makes version 2; the VMs stay on version 1 until you run
# `legacyvm apply --image-update w7pro` (plan shows them as replace first).

variable "iso" {
  description = "Your Windows 7 SP1 x64 installation ISO."
  default     = "/var/lib/libvirt/images/win7-sp1-x64.iso"
}

variable "iso_sha256" {
  description = "sha256sum of the ISO (64 hex digits)."
  default     = "0000000000000000000000000000000000000000000000000000000000000000"
}

variable "drivers" {
  description = "A directory with drivers or tools for the image (made into an ISO)."
  default     = "drivers"
}

license "acct-1" {
  product_key = env("ACCT_KEY_1")
  edition     = "professional"
  channel     = "retail"
}

license "acct-2" {
  product_key = env("ACCT_KEY_2")
  edition     = "professional"
  channel     = "retail"
}

image "w7pro" {
  source {
    iso     = var.iso
    sha256  = var.iso_sha256
    edition = "professional"
    arch    = "x64"
  }
  media = [var.drivers]
  step "drivers" {
    command = "cmd /c for %d in (D E F G H I J) do if exist %d:\\viostor\\w7\\amd64\\viostor.inf pnputil -i -a %d:\\viostor\\w7\\amd64\\*.inf"
  }
  size    = "40GiB"
  timeout = "3h"
}

network "golden" {
  subnet = "10.77.8.0/24"
  dhcp   = true
}

snapshot_policy "clean" {}

vm "acct" {
  count  = 2
  os     = "win7-x64"
  memory = "4GiB"
  disk {
    image = image.w7pro # pinned: each VM stays on the version it was cloned from
  }
  windows {
    computer_name = "ACCT-${count.index}"
  }
  licenses        = [license.acct-1, license.acct-2]
  network         = network.golden
  snapshot_policy = snapshot_policy.clean
}
