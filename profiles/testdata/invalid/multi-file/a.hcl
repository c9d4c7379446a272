# Two files evaluated together: duplicates and overlaps across files.
network "lab" {
  subnet = "10.77.0.0/24"
}

host "h1" {
  uri = "not a uri" # ERROR: Invalid libvirt URI
}

host "h2" {
  uri         = "qemu+ssh://root@h2/system"
  accelerator = "hvf" # ERROR: Invalid accelerator
}
