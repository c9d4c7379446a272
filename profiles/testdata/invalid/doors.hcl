# Doors: publish and egress, their required settings, addresses and ports.
network "lan" {
  subnet = "10.90.0.0/24"
  dhcp   = true
  egress "db" {
    to   = "db.corp:1433"
    port = 11433
  }
  egress "dns" {
    to   = "10.0.0.53:53"
    port = 53 # ERROR: Egress port is reserved
  }
  egress "db2" {
    to   = "db2.corp:1433"
    port = 11433 # ERROR: Two doors on the same port
  }
  egress "bad" {
    to   = "db.corp" # ERROR: Invalid egress target
    port = 11434
  }
}

network "static" {
  subnet = "10.91.0.0/24"
}

network "flat" {
  egress "x" { # ERROR: Egress without subnet
    to   = "x.corp:80"
    port = 8080
  }
}

vm "app" {
  os      = "win7-x64"
  network = network.lan
  disk { image = "/srv/images/golden.qcow2" }
  publish "rdp" {
    listen          = "0.0.0.0:13389"
    port            = 3389
    from            = ["192.0.2.0/24", "198.51.100.7"]
    max_connections = 20
  }
  publish "badcidr" {
    listen = "0.0.0.0:13393"
    port   = 3389
    from   = ["192.0.2.0/24", "192.0.2.300/32"] # ERROR: Invalid client network
  }
  publish "nofrom" { # ERROR: Missing required argument
    listen = "0.0.0.0:13390"
    port   = 80
  }
  publish "hostbits" {
    listen = "0.0.0.0:13391"
    port   = 80
    from   = ["192.0.2.1/24"] # ERROR: Invalid client network
  }
  publish "same" {
    listen = "192.0.2.1:13389" # ERROR: Two doors on the same port
    port   = 3390
    from   = ["192.0.2.0/24"]
  }
  publish "udp" {
    listen   = "0.0.0.0:13392"
    port     = 53
    protocol = "udp" # ERROR: UDP doors are not supported
    from     = ["192.0.2.0/24"]
  }
  publish "badlisten" {
    listen = "0.0.0.0" # ERROR: Invalid listen address
    port   = 80
    from   = ["192.0.2.0/24"]
  }
  egress "db3" {
    to   = "db3.corp:1433"
    port = 11433 # ERROR: Two doors on the same port
  }
}

vm "nodhcp" {
  os      = "win7-x64"
  network = network.static
  disk { image = "/srv/images/golden.qcow2" }
  publish "web" { # ERROR: Publish on a network without DHCP
    listen = "0.0.0.0:18080"
    port   = 80
    from   = ["192.0.2.0/24"]
  }
}

vm "many" {
  os      = "win7-x64"
  count   = 2
  network = network.lan
  disk { image = "/srv/images/golden.qcow2" }
  publish "web" { # ERROR: Publish on a vm with count
    listen = "0.0.0.0:18081"
    port   = 80
    from   = ["192.0.2.0/24"]
  }
}
