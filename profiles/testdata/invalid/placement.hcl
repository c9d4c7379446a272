# Placement over several hosts: host blocks with max_vms and labels, vms
# with placement and host_labels.
host "a" {
  uri     = "qemu+tls://a.example.org/system"
  max_vms = 0 # ERROR: Invalid max_vms
  labels  = { zone = "east" }
}

host "b" {
  uri    = "qemu+ssh://admin@b.example.org/system"
  labels = "east" # ERROR: Incorrect attribute value type
}

vm "both" {
  os        = "win7-x64"
  host      = host.a
  placement = "spread" # ERROR: Both host and placement
  disk { image = "/var/lib/libvirt/images/golden.qcow2" }
}

vm "badpolicy" {
  os        = "win7-x64"
  placement = "random" # ERROR: Invalid placement
  disk { image = "/var/lib/libvirt/images/golden.qcow2" }
}

vm "nomatch" {
  os          = "win7-x64"
  placement   = "pack"
  host_labels = { zone = "west" } # ERROR: No host matches host_labels
  disk { image = "/var/lib/libvirt/images/golden.qcow2" }
}

vm "labelsonly" {
  os          = "win7-x64"
  host        = host.b
  host_labels = { zone = "east" } # ERROR: host_labels without placement
  disk { image = "/var/lib/libvirt/images/golden.qcow2" }
}

vm "nohost" { # ERROR: Host not chosen
  os = "win7-x64"
  disk { image = "/var/lib/libvirt/images/golden.qcow2" }
}
