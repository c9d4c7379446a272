# Dangling and misplaced references.
variable "golden" {
  default = "/srv/golden.qcow2"
}

locals {
  image = var.goldn # ERROR: Reference to undeclared variable
  lic   = license.acct # ERROR: Reference not allowed here
}

license "acct" {
  product_key = env("ACCT_KEY")
  edition     = "professional"
  channel     = "mak"
  seats       = 4
}

network "lab" {
  subnet = "10.77.0.0/24"
}

snapshot_policy "daily" {
  baseline = local.nope # ERROR: Reference to undeclared local value
}

vm "app" {
  os              = "win7-x64"
  licenses        = [license.acct, license.acc] # ERROR: Reference to undeclared license
  network         = network.labs # ERROR: Reference to undeclared network
  snapshot_policy = snapshot_policy.weekly # ERROR: Reference to undeclared snapshot_policy
  host            = host.lab1 # ERROR: Reference to undeclared host
  disk {
    image = var.golden
  }
}

vm "two" {
  os              = "win7-x64"
  network         = lab # ERROR: Unknown reference
  snapshot_policy = "daily" # ERROR: Reference expected
  licenses        = license.acct # ERROR: Incorrect attribute value type
  cpus            = count.index # ERROR: Reference to count.index not allowed here
  disk {
    image = var.golden
  }
}

vm "three" {
  os      = "win7-x64"
  network = license.acct # ERROR: Incorrect reference type
  disk {
    image = var.golden
  }
}
