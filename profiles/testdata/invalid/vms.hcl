# VM rules: count, cpus, memory, editions, seats, disks, computer names.
license "home" {
  product_key = env("HOME_KEY")
  edition     = "home-basic"
  channel     = "retail"
}

license "home2" {
  product_key = env("HOME2_KEY")
  edition     = "home-basic"
  channel     = "retail"
}

license "hp" {
  product_key = env("HP_KEY")
  edition     = "home-premium"
  channel     = "retail"
}

license "pro" {
  product_key = env("PRO_KEY")
  edition     = "professional"
  channel     = "retail"
}

license "mak" {
  product_key = env("MAK_KEY")
  edition     = "professional"
  channel     = "mak"
  seats       = 3
}

network "lab" {
  subnet = "10.77.0.0/24"
  dhcp   = true
}

vm "big" {
  count  = 65 # ERROR: Invalid count
  os     = "win7-x86"
  cpus   = 33 # ERROR: Invalid cpus
  memory = "6GiB" # ERROR: Memory above the x86 limit
  disk {
    image = "/srv/golden-x86.qcow2"
  }
}

vm "huge" {
  os     = "win7-x64"
  memory = "256GiB" # ERROR: Memory above the x64 limit
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "small" {
  os     = "win7-x64"
  memory = "512MiB" # WARNING: Memory below the minimum
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "homex64" {
  os       = "win7-x64"
  memory   = "12GiB"
  licenses = [license.home] # ERROR: Edition not available for x64
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "homex86" {
  os       = "win7-x86"
  memory   = "3584MiB" # WARNING: Memory partly unusable
  licenses = [license.home2]
  disk {
    image = "/srv/golden-x86.qcow2"
  }
}

vm "hpbig" {
  os       = "win7-x64"
  memory   = "20GiB" # WARNING: Memory above the edition's limit
  licenses = [license.hp]
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "seats" {
  count    = 3
  os       = "win7-x64"
  licenses = [license.pro] # ERROR: Not enough licence seats
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "share-a" {
  count    = 2
  os       = "win7-x64"
  licenses = [license.mak]
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "share-b" {
  count    = 2
  os       = "win7-x64"
  licenses = [license.mak] # ERROR: Licence seats already taken
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "nodisk" { # ERROR: Missing disk block
  os = "win7-x64"
}

vm "noos" { # ERROR: Missing required argument
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "emptydisk" {
  os = "win7-x64"
  disk { # ERROR: Disk without source
    size = "60GiB"
  }
}

vm "bothdisk" {
  os = "win7-x64"
  disk {
    image = "/srv/golden.qcow2"
    install { # ERROR: Disk with both image and install
      iso = "/srv/win7.iso"
    }
  }
}

vm "misplaced" {
  os = "win7-x64"
  install { # ERROR: Misplaced install block
    iso = "/srv/win7.iso"
  }
}

vm "inst" {
  os       = "win7-x64"
  licenses = [license.pro] # ERROR: Licence edition does not match install
  disk {
    clone = "linked" # ERROR: clone with install
    size  = "10GiB" # ERROR: Disk too small for Windows 7
    install {
      iso         = "~/win7.iso" # ERROR: Path with ~
      edition     = "ultimate"
      image_index = 0 # ERROR: Invalid image_index
      timeout     = "10s" # ERROR: Timeout too short
    }
  }
}

vm "noedition" {
  os = "win7-x64"
  disk {
    install { # ERROR: Install edition unknown
      iso = "https://example.org/win7.iso" # ERROR: Path is a URL
    }
  }
}

vm "names" {
  count   = 2
  os      = "win7-x64"
  network = network.lab
  disk {
    image = "/srv/golden.qcow2"
  }
  windows {
    computer_name = "SAME" # ERROR: Duplicate computer name
    time_zone     = "Europe/Berlin" # ERROR: Invalid time zone
    locale        = "english" # ERROR: Invalid locale
    input_locale  = "us" # ERROR: Invalid input locale
    admin_user    = "ad:min" # ERROR: Invalid user name
    activate      = true # ERROR: Activation without licence
  }
}

vm "badcomp" {
  count = 2
  os    = "win7-x64"
  disk {
    image = "/srv/golden.qcow2"
  }
  windows {
    computer_name = "VERY-LONG-COMPUTER-${count.index}" # ERROR: Invalid computer name
  }
}

vm "digits" {
  os = "win7-x64"
  disk {
    image = "/srv/golden.qcow2"
  }
  windows {
    computer_name = "12345" # ERROR: Invalid computer name
  }
}

vm "nocount" {
  os = "win7-x64"
  disk {
    image = "/srv/golden.qcow2"
  }
  windows {
    computer_name = "PC-${count.index}" # ERROR: Reference to count.index not allowed here
  }
}

vm "noprep" {
  os = "win7-x64"
  disk {
    image   = "/srv/golden.qcow2"
    prepare = "none"
  }
  licenses = [license.mak]
  windows { # WARNING: Windows settings unused
    activate = true # ERROR: Activation without answer media
  }
}
