# Mistakes in test blocks: each is located on the offending line.
vm "qa" {
  os          = "win7-x64"
  guest_agent = true
  disk {
    image   = "/srv/golden.qcow2"
    prepare = "none"
  }
}

test "smoke" {
  vms   = [vm.qaa] # ERROR: Unknown vm
  reset = "sometimes" # ERROR: Invalid reset
  step "copy_in" { # ERROR: Missing to
    from = "smoke.cmd"
  }
  step "execute" { # ERROR: Unknown step type
    command = ["x"]
  }
  step "run" {
    command = ["cmd", "/c", "smoke.cmd"]
    from    = "x" # ERROR: Attribute not valid here
    timeout = "soon" # ERROR: Invalid duration
  }
  step "copy_out" {
    from = "C:\\stage\\result.txt"
    to   = "../../etc/x" # ERROR: Destination outside the results directory
  }
}

test "smoke" { # ERROR: Duplicate test block
  vms = [vm.qa]
  step "run" {
    command = ["true"]
  }
}

test "quoted" {
  vms = ["qa"] # ERROR: VM reference expected
  step "run" {
    command = ["true"]
  }
}

test "nosteps" { # ERROR: Test without steps
  vms = [vm.qa]
}

test "exfiltrate" {
  vms = [vm.qa]
  step "copy_in" {
    from = "/etc/passwd" # ERROR: Copy source outside the profile directory
    to   = "/tmp/passwd"
  }
}
