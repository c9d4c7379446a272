# legacyvm: make demo (set up and run the stand-in demo), make test (everything CI runs).
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin

.PHONY: all deps build demo test vet fmt-check bench clean

all: build

deps:
	./scripts/setup-host.sh
	$(GO) mod download

build:
	$(GO) build -o $(BIN)/legacyvm ./cmd/legacyvm
	$(GO) build -o $(BIN)/testenv ./internal/testenv/cmd/testenv

# The README's first command: a private libvirtd in its own network namespace
# (nothing touches the host's networks), the stand-in guest as golden image,
# then apply -> status -> reset -> destroy on examples/quickstart.
demo: deps build
	$(BIN)/testenv exec -- ./scripts/demo.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The README's second command and .ci/run: every test, against real libvirt
# daemons the harness starts (CI=true makes missing libvirt a failure).
test: deps vet fmt-check
	$(GO) build ./...
	CI=$${CI:-true} $(GO) test -count=1 -timeout 25m ./...

bench: build
	./bench/run.sh

clean:
	rm -rf $(BIN)
