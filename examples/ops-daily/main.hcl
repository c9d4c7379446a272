# ops-daily: one long-lived VM that keeps a legacy application running.
#
# The VM is snapshotted every day at 02:30 (host time; with schedule =
# "@daily" each VM would get its own stable time within window, by default
# 01:00-05:00) including its memory, so a revert resumes exactly where it was.
# Retention keeps the 7 newest daily snapshots and deletes any older than
# 30 days; the "clean" baseline taken after provisioning is never deleted.
# The network allows exactly two flows: RDP from the host for the operators,
# and the application's own port range from the host.
#
# The product key lives in a file next to this profile that only its owner
# can read; legacyvm refuses to read it when group or others can:
#
#   install -m 600 /dev/null keys/ops.key && $EDITOR keys/ops.key
#   legacyvm apply examples/ops-daily
#   legacyvm daemon                        # runs the schedules of every VM on the host

# The profile declares its name: it identifies its VMs in libvirt, so moving
# or renaming this directory keeps them.
profile {
  name = "ops-daily"
}

locals {
  app = "ledger"
}

license "ops" {
  product_key = file("keys/ops.key")
  edition     = "professional"
  channel     = "retail"
  seats       = 1
}

network "ops" {
  subnet         = "10.77.3.0/28"
  dhcp           = true
  guest_to_guest = false

  allow "rdp" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    port      = 3389
  }

  allow "app" {
    direction = "in"
    from      = "host"
    protocol  = "tcp"
    ports     = "8000-8010"
  }
}

snapshot_policy "daily" {
  baseline    = "clean"
  schedule    = "30 2 * * *"
  keep        = 7
  max_age     = "30d"
  memory      = true
  on_shutdown = "keep"
}

vm "ops" {
  os        = "win7-x64"
  cpus      = 2
  memory    = "6GiB"
  autostart = true

  disk {
    image = "/var/lib/libvirt/images/win7-sp1-x64-golden.qcow2"
    clone = "full"
    size  = "80GiB"
  }

  windows {
    computer_name = upper("${local.app}-ops")
  }

  licenses        = [license.ops]
  network         = network.ops
  snapshot_policy = snapshot_policy.daily
  oem_strings     = ["legacyvm:app=${local.app}"]
}
