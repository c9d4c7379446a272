cpus = 4
tier = "from-file"
