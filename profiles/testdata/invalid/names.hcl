# Names that libvirt or Linux would reject.
network "Lab" { # ERROR: Invalid name
  subnet = "10.77.0.0/24"
}

network "twelve-chars" { # ERROR: Invalid name
  subnet = "10.78.0.0/24"
}

network "ok" {
  subnet = "10.79.0.0/24"
  allow "RDP_in" { # ERROR: Invalid name
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 3389
  }
}

license "acct--1" { # ERROR: Invalid name
  product_key = env("K")
  edition     = "professional"
  channel     = "retail"
}

snapshot_policy "daily-" {} # ERROR: Invalid name

snapshot_policy "base" {
  baseline = "Clean Baseline" # ERROR: Invalid baseline name
}

host "1lab" {} # ERROR: Invalid name

vm "an-extremely-long-virtual-machine-name-for-testing" { # ERROR: Instance name too long
  count = 10
  os    = "win7-x64"
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "dup" {
  count = 2
  os    = "win7-x64"
  disk {
    image = "/srv/golden.qcow2"
  }
}

vm "dup-1" { # ERROR: Instance name collision
  os   = "win7-x64"
  disk {
    image = "/srv/golden.qcow2"
  }
}

variable "not valid" {} # ERROR: Invalid variable name
