# Bad values: sizes, durations, cron, enums, types.
network "n1" {
  subnet = "10.77.0.0/24"
  dhcp   = "yes please" # ERROR: Incorrect attribute value type
  allow "a" {
    direction = "inbound" # ERROR: Invalid direction
    from      = "host"
    protocol  = "tcp"
    port      = 70000 # ERROR: Invalid port
  }
  allow "b" {
    direction = "in"
    from      = "host"
    protocol  = "any"
    ports     = "1000-2000" # ERROR: Port with protocol any
  }
  allow "c" {
    direction = "in"
    from      = "host"
    protocol  = "udp"
    ports     = "2000-1000" # ERROR: Invalid port range
  }
  allow "d" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 22
    ports     = "22-23" # ERROR: Both port and ports
  }
  allow "e" {
    direction = "in"
    to        = "host" # ERROR: Peer does not match direction
    protocol  = "tcp"
  }
  allow "f" {
    direction = "out"
    from      = "host"
    to        = "host" # ERROR: Both from and to
    protocol  = "tcp"
  }
  allow "g" {
    direction = "in"
    from      = "internet" # ERROR: Invalid from
    protocol  = "tcp"
  }
  allow "h" { # ERROR: Missing required argument # ERROR: Missing required argument
    from = "host"
  }
  # A tcp or udp rule without a port would open every port: the port is
  # required, and port = "any" says every port on purpose.
  allow "i" { # ERROR: Missing port
    direction = "in"
    from      = "host"
    protocol  = "tcp"
  }
  allow "j" { # ERROR: Missing port
    direction = "out"
    to        = "host"
    protocol  = "udp"
  }
  allow "k" {
    direction = "in"
    from      = "host"
    protocol  = "udp"
    port      = "any"
  }
  allow "l" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = "all" # ERROR: Incorrect attribute value type
  }
}

snapshot_policy "p1" {
  schedule    = "61 * * * *" # ERROR: Invalid schedule
  keep        = 0 # ERROR: Invalid keep
  max_age     = "30 days" # ERROR: Invalid duration
  on_shutdown = "reset" # ERROR: Invalid on_shutdown
}

snapshot_policy "p2" {
  schedule = "@every 1h" # ERROR: Invalid schedule
  baseline = "auto-clean" # ERROR: Reserved snapshot name
}

snapshot_policy "p3" {
  keep   = 3 # WARNING: Retention without schedule
  settle = "1m" # WARNING: Settle without memory
}

snapshot_policy "p4" {
  memory = true
  settle = "3h" # ERROR: Invalid duration
}

vm "sizes" {
  os      = "win7-x64"
  machine = "i440fx" # ERROR: Invalid machine
  cpus    = 1.5 # ERROR: Incorrect attribute value type
  memory  = 4096 # ERROR: Size without unit
  disk {
    image = "/srv/golden.qcow2"
    size  = "60 gigs" # ERROR: Invalid size
    clone = "thin" # ERROR: Invalid clone
  }
}

vm "sizes2" {
  os     = "windows7" # ERROR: Invalid os
  memory = "4" # ERROR: Invalid size
  disk {
    image   = "/srv/golden.qcow2"
    size    = "512MiB" # ERROR: Disk too small
    prepare = "sysprep" # ERROR: Invalid prepare
  }
  autostart   = "sometimes" # ERROR: Incorrect attribute value type
  oem_strings = "one" # ERROR: Incorrect attribute value type
}
