variable "golden" {
  default = "images/golden.qcow2"
}

variable "keyvar" {
  type    = string
  default = "ACCT_KEY_A"
}

variable "cpus" {
  type    = number
  default = 2
}

variable "tier" {
  default = "default-tier"
}

locals {
  prefix = upper("acct")
}

host "lab1" {
  uri          = "qemu:///system"
  accelerator  = "tcg"
  storage_pool = "images"
}

license "a" {
  product_key = env(var.keyvar)
  edition     = "professional"
  channel     = "retail"
}

license "b" {
  product_key = file("keys/b.txt")
  edition     = "professional"
  channel     = "mak"
  seats       = 2
}

license "k" {
  product_key = command(["pass", "show", "win7/kms"])
  edition     = "enterprise"
  channel     = "kms"
  kms_host    = "kms.example.org:1688"
}

network "acct-lab" {
  subnet         = "10.77.0.0/24"
  guest_to_guest = false
  allow "rdp" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 3389
  }
  allow "range" {
    direction = "out"
    to        = "host"
    protocol  = "udp"
    ports     = "1000-2000"
  }
}

network "l2" {}

snapshot_policy "daily" {
  schedule    = "@daily"
  keep        = 3
  max_age     = "2w"
  memory      = true
  on_shutdown = "revert"
}
