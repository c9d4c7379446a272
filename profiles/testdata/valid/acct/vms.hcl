vm "acct" {
  count  = 3
  os     = "win7-x64"
  cpus   = var.cpus
  memory = "4GiB"
  disk {
    image = var.golden
    size  = "60G"
  }
  windows {
    computer_name  = "${local.prefix}-${count.index}"
    admin_password = env("ADMIN_PW")
  }
  licenses        = [license.a, license.b]
  network         = network.acct-lab
  snapshot_policy = snapshot_policy.daily
  oem_strings     = ["tier=${var.tier}"]
}

vm "build" {
  os      = "win7-x64"
  machine = "q35"
  memory  = "2560MiB"
  disk {
    install {
      iso         = "/srv/iso/win7.iso"
      image_index = 4
      timeout     = "90m"
    }
  }
  licenses = [license.k]
  network  = network.l2
}

vm "a-very-long-vm-name" {
  count  = 2
  os     = "win7-x86"
  memory = "1GiB"
  disk {
    image = "/srv/golden-x86.qcow2"
    clone = "full"
  }
  licenses = [license.k]
}
