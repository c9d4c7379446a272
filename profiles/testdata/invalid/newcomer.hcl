# Issue 10: a newcomer's first-hour mistakes, each a located diagnostic.
profile {
  name = "Acct Lab" # ERROR: Invalid profile name
}

profile { # ERROR: Duplicate profile block
  name = "other"
}

snapshot_policy "never" {
  schedule = "0 0 31 2 *" # ERROR: Invalid schedule
}

snapshot_policy "windowed" {
  schedule = "@daily"
  window   = "01:00-25:00" # ERROR: Invalid window
}

snapshot_policy "cron-window" {
  schedule = "30 2 * * *"
  window   = "01:00-05:00" # ERROR: Window without a jittered schedule
}

vm "decimal" {
  os     = "win7-x64"
  memory = "4GB" # ERROR: Decimal memory size
  disk {
    image = "/srv/images/golden.qcow2"
  }
}
