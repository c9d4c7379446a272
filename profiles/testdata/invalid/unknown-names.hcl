# Unknown blocks and attributes, with "did you mean".
netwrk "lab" { # ERROR: Unsupported block type
  subnet = "10.77.0.0/24"
}

network "lab" {
  subnet = "10.77.0.0/24"
  dhpc   = true # ERROR: Unsupported argument
  allow "x" { # ERROR: Missing port
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    prot      = 22 # ERROR: Unsupported argument
  }
}

vm "app" {
  os     = "win7-x64"
  cpu    = 2 # ERROR: Unsupported argument
  memory = "2GiB"
  disk {
    image = "/srv/golden.qcow2"
    size  = "40GiB"
  }
  windows {
    timezone = "UTC" # ERROR: Unsupported argument
  }
  network = network.lab
}

name = "x" # ERROR: Unsupported argument
