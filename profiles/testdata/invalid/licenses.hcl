# Licence rules: channels, seats, editions, key format.
license "retail2" {
  product_key = env("K1")
  edition     = "professional"
  channel     = "retail"
  seats       = 2 # ERROR: Too many seats for channel
}

license "kms-nohost" {
  product_key = env("K2")
  edition     = "enterprise"
  channel     = "kms" # ERROR: KMS licence without kms_host
}

license "kms-home" {
  product_key = env("K3")
  edition     = "home-premium" # ERROR: Edition not volume licensed
  channel     = "kms"
  kms_host    = "kms.example.org:1688"
}

license "ent-retail" {
  product_key = env("K4")
  edition     = "enterprise" # ERROR: Enterprise needs volume licensing
  channel     = "retail"
}

license "stray-kms-host" {
  product_key = env("K5")
  edition     = "professional"
  channel     = "mak"
  kms_host    = "kms.example.org" # ERROR: kms_host without KMS channel
}

license "zero" {
  product_key = env("K6")
  edition     = "professional"
  channel     = "mak"
  seats       = 0 # ERROR: Invalid seats
}

license "oem" {
  product_key = env("K7")
  edition     = "home-premium"
  channel     = "oem" # WARNING: OEM licence in a VM
}

license "nokey" { # ERROR: Missing required argument
  edition = "professional"
  channel = "retail"
}

license "badkey" {
  product_key = "BCDFG-HJKMP-QRTVW-XY234-6789N" # ERROR: Invalid product key # WARNING: Product key written in the profile
  edition     = "professional"
  channel     = "retail"
}

license "shortkey" {
  product_key = "BCDFG-HJKMP-QRTVW-XY234" # ERROR: Invalid product key # WARNING: Product key written in the profile
  edition     = "professional"
  channel     = "retail"
}

license "literal-ok" {
  product_key = "BCDFG-HJKMP-QRTVW-XY234-6789B" # WARNING: Product key written in the profile
  edition     = "professional"
  channel     = "retail"
}

license "nested" {
  product_key = upper(env("K8")) # ERROR: Secret function inside an expression
  edition     = "professional"
  channel     = "retail"
}

license "badenv" {
  product_key = env("NOT A NAME") # ERROR: Invalid environment variable name
  edition     = "professional"
  channel     = "retail"
}

license "emptycmd" {
  product_key = command([]) # ERROR: Empty secret source
  edition     = "professional"
  channel     = "retail"
}

license "badkms" {
  product_key = env("K9")
  edition     = "professional"
  channel     = "kms"
  kms_host    = "kms.example.org:99999" # ERROR: Invalid kms_host
}

locals {
  run = command(["id"]) # ERROR: command() not allowed here
}
