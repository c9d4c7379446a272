#!/bin/sh
# bench/run.sh: the benchmarks (make bench). They start their own private
# libvirtd (internal/testenv: root, its own network namespace) and print
# Markdown; record the results in bench/README.md. Never run in tests.
set -e
cd "$(dirname "$0")/.."
[ -x bin/legacyvm ] || go build -o bin/legacyvm ./cmd/legacyvm
exec go run ./bench/resetbench -legacyvm bin/legacyvm "$@"
