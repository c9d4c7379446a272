# Variables: values, types, where they may be used.
variable "golden" {} # ERROR: No value for required variable

variable "cpus" {
  type    = number
  default = "two" # ERROR: Invalid default value for variable
}

variable "ref" {
  default = var.golden # ERROR: Reference not allowed here
}

variable "typed" {
  type    = strin # ERROR: Invalid type specification
  default = "x"
}

locals {
  a = local.b
  b = local.a # ERROR: Local value cycle
  c = nosuchfunc(1) # ERROR: Call to unknown function
  d = env("NOT_SET_ANYWHERE") # ERROR: Invalid function argument
  e = file("does-not-exist.txt") # ERROR: Invalid function argument
}

vm "x" {
  os = "win7-x64"
  disk {
    image = "" # ERROR: Empty path
  }
}
