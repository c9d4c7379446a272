# legacyvm: make demo (set up and run the stand-in demo), make test (everything CI runs).
# On a bare machine (no make yet) run them as ./scripts/run demo and ./scripts/run test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin

PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps web build demo test vet fmt-check bench clean man install uninstall fresh-check

all: build

deps:
	./scripts/setup-host.sh
	$(GO) mod download

# The web console's noVNC (web/package-lock.json, from the npm registry)
# copied into internal/web/assets/novnc, where go:embed picks it up.
# Without it the binary builds, and its page says the console assets were
# not built.
web:
	./scripts/web-assets.sh

build: web
	$(GO) build -o $(BIN)/legacyvm ./cmd/legacyvm
	$(GO) build -o $(BIN)/testenv ./internal/testenv/cmd/testenv

# The README's first command: a private libvirtd in its own network namespace
# (nothing touches the host's networks), the stand-in guest as golden image,
# then apply -> status -> reset -> destroy on examples/quickstart.
demo: deps build
	$(BIN)/testenv exec -- ./scripts/demo.sh

vet: web
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The README's second command and .ci/run: every test, against real libvirt
# daemons the harness starts (CI=true makes missing libvirt a failure).
test: deps web vet fmt-check
	$(GO) build ./...
	CI=$${CI:-true} $(GO) test -count=1 -timeout 25m ./...

# Man pages generated from the command tree (cobra/doc) into $(BIN)/man.
man: build
	rm -rf $(BIN)/man
	$(BIN)/legacyvm gen-man $(BIN)/man

# The binary, man pages, shell completions and the systemd unit the README
# shows (systemd reads /usr/local/lib/systemd/system; nothing is enabled).
install: build man
	install -D -m 0755 $(BIN)/legacyvm $(DESTDIR)$(PREFIX)/bin/legacyvm
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 $(BIN)/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	$(BIN)/legacyvm completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/legacyvm
	$(BIN)/legacyvm completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_legacyvm
	$(BIN)/legacyvm completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/legacyvm.fish
	sed 's|/usr/local/bin/legacyvm|$(PREFIX)/bin/legacyvm|' scripts/legacyvm.service > $(BIN)/legacyvm.service
	install -D -m 0644 $(BIN)/legacyvm.service $(DESTDIR)$(PREFIX)/lib/systemd/system/legacyvm.service
	@echo "installed legacyvm in $(DESTDIR)$(PREFIX) (start libvirtd first: docs/install.md)"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/legacyvm $(DESTDIR)$(PREFIX)/share/man/man1/legacyvm*.1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/legacyvm $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_legacyvm \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/legacyvm.fish $(DESTDIR)$(PREFIX)/lib/systemd/system/legacyvm.service

# The README's two commands on a minimal Debian 12 root built with
# debootstrap, in a clean clone of what is committed (docs/install.md).
# FRESH_COMMANDS='./scripts/run demo' runs only the demo.
fresh-check:
	./scripts/fresh-check.sh $(if $(FRESH_COMMANDS),'$(FRESH_COMMANDS)')

bench: build
	./bench/run.sh

clean:
	rm -rf $(BIN)
