# Image blocks: every mistake located.
image "w7pro" {
  source {
    iso     = "/srv/iso/win7.iso"
    sha256  = "not-a-checksum" # ERROR: Invalid sha256
    edition = "professional"
    arch    = "arm" # ERROR: Invalid arch
  }
  media = ["/srv/virtio-win-0.1.173.iso", "https://example.org/x.iso"] # ERROR: Path is a URL
  step "drivers" {
    command = "cmd /c echo ok"
  }
  step "drivers" { # ERROR: Duplicate step block
    command = "cmd /c echo again"
  }
  step "empty" {} # ERROR: Missing required argument
  size    = "100MiB" # ERROR: Disk too small
  timeout = "1s" # ERROR: Timeout too short
}
image "w7pro" {} # ERROR: Duplicate image block
image "nosource" {} # ERROR: Missing source block
image "starter64" {
  source {
    iso     = "/srv/iso/starter.iso"
    sha256  = "0000000000000000000000000000000000000000000000000000000000000000"
    edition = "starter"
    arch    = "x64" # ERROR: Edition has no x64 media
  }
}

vm "a" {
  os = "win7-x64"
  disk {
    image         = image.w7pro
    image_version = "newest" # ERROR: Invalid image_version
  }
}
vm "b" {
  os = "win7-x64"
  disk {
    image         = "/srv/golden.qcow2"
    image_version = "latest" # ERROR: image_version with an image path
  }
}
vm "c" {
  os = "win7-x64"
  disk {
    image = image.w7prof # ERROR: Reference to undeclared image
  }
}
vm "d" {
  os = "win7-x64"
  disk {
    image = network.lab # ERROR: Reference to undeclared network
  }
}
