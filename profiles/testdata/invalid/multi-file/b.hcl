network "lab" { # ERROR: Duplicate network block
  subnet = "10.78.0.0/24"
}

network "other" {
  subnet = "10.77.0.128/25" # ERROR: Overlapping subnets
}

vm "app" { # ERROR: Host not chosen
  os = "win7-x64"
  disk {
    image = "golden.qcow2"
  }
}
