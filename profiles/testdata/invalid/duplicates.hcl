# Duplicate names, naming the first declaration.
variable "golden" {
  default = "/srv/golden.qcow2"
}
variable "golden" { # ERROR: Duplicate variable block
  default = "/srv/other.qcow2"
}

license "acct" {
  product_key = env("ACCT_KEY")
  edition     = "professional"
  channel     = "retail"
}
license "acct" { # ERROR: Duplicate license block
  product_key = env("ACCT_KEY2")
  edition     = "professional"
  channel     = "retail"
}

network "lab" {
  subnet = "10.77.0.0/24"
  allow "rdp" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 3389
  }
  allow "rdp" { # ERROR: Duplicate allow block
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 3390
  }
}
network "lab" { # ERROR: Duplicate network block
  subnet = "10.78.0.0/24"
}

snapshot_policy "p" {}
snapshot_policy "p" {} # ERROR: Duplicate snapshot_policy block

host "h1" {}
host "h1" {} # ERROR: Duplicate host block

locals {
  a = 1
}
locals {
  a = 2 # ERROR: Duplicate local value
}

vm "app" {
  os       = "win7-x64"
  licenses = [license.acct, license.acct] # ERROR: Duplicate licence in licenses
  disk {
    image = var.golden
  }
  disk { # ERROR: Duplicate disk block
    image = var.golden
  }
  windows {}
  windows {} # ERROR: Duplicate windows block
}
vm "app" { # ERROR: Duplicate vm block
  os = "win7-x64"
  disk {
    image = var.golden
  }
}
