#!/bin/sh
# bench/apply.sh: legacyvm apply of N VMs against a shell script that makes
# the same objects one by one with qemu-img and virsh, alternating on one
# private libvirtd (internal/testenv: root, its own network namespace).
# Prints Markdown; record the results in bench/README.md. Never run in tests.
#   bench/apply.sh [-rounds N] [-vms N] [-parallelism N] [-logs DIR [-libvirt-log] [-client-log]]
set -e
cd "$(dirname "$0")/.."
go build -o bin/legacyvm ./cmd/legacyvm
exec go run ./bench/applybench -legacyvm bin/legacyvm "$@"
