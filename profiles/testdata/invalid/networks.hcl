# Subnets: format, family, size, overlaps, and what needs one.
network "a" {
  subnet = "10.77.0.0/16"
}

network "b" {
  subnet = "10.77.5.0/24" # ERROR: Overlapping subnets
}

network "c" {
  subnet = "fd00::/64" # ERROR: IPv6 subnet
}

network "d" {
  subnet = "10.80.0.0/30" # ERROR: Subnet size out of range
}

network "e" {
  subnet = "10.81.0.0" # ERROR: Invalid subnet
}

network "f" {
  subnet = "not a subnet" # ERROR: Invalid subnet
}

network "g" {
  dns = true # ERROR: DNS without subnet
  allow "rdp" {
    direction = "in"
    from      = "host" # ERROR: Host peer without subnet
    protocol  = "tcp"
    port      = 3389
  }
}

network "h" {
  subnet = "8.8.8.0/24" # WARNING: Public subnet
}

network "i" {
  subnet = 10 # ERROR: Invalid subnet
}

# Ranges the kernel and the guard treat specially are errors, not warnings.
network "j" {
  subnet = "127.77.0.0/24" # ERROR: Reserved subnet
}

network "k" {
  subnet = "0.0.0.0/16" # ERROR: Reserved subnet
}

network "l" {
  subnet = "224.0.1.0/24" # ERROR: Reserved subnet
}

network "m" {
  subnet = "239.255.0.0/16" # ERROR: Reserved subnet
}

network "n" {
  subnet = "255.255.255.0/24" # ERROR: Reserved subnet
}

# Network "a"'s guard nwfilter is lvm-a-guard: a network named "a-guard"
# would own it.
network "a-guard" { # ERROR: Network name collides with a guard filter
  subnet = "10.90.0.0/24"
}

# Refused without a partner too: filter names are host-wide.
network "x-guard" { # ERROR: Network name collides with a guard filter
  subnet = "10.91.0.0/24"
}
