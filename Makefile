# Cascade: `make test` and `make demo` are the two commands; the rest are parts of them.
SHELL := /bin/bash
SWIFT ?= swift

.PHONY: all deps build release test bench demo install clean help

all: build

help:
	@echo "make deps     check (and as root install) libssl-dev, libsqlite3-dev, pkg-config, openssl"
	@echo "              TEST_TOOLS=1 also installs promtool (prometheus) and chromium for the metrics and status-page tests"
	@echo "make build    debug build of every target"
	@echo "make test     deps (with the test tools promtool and chromium) + build + the whole test suite"
	@echo "make bench    release build + benchmarks against their baselines (Benchmarks/README.md)"
	@echo "make demo     coordinator + fleet of agents on loopback, a full signed rollout"
	@echo "make fleet-sim release build + 1,000-agent rollout and 10,000 idle sessions (Benchmarks/run-fleet.sh)"
	@echo "make install  release build + programs, systemd units, example config (PREFIX=/usr/local DESTDIR=...)"
	@echo "make clean    remove build output"

deps:
	@scripts/deps.sh $(if $(filter-out 0,$(TEST_TOOLS)),--test-tools)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test:
	@scripts/deps.sh --test-tools
	@start=$$(date +%s); \
	$(SWIFT) build --build-tests && \
	$(SWIFT) test --skip-build --no-parallel; status=$$?; \
	echo "make test: finished in $$(( $$(date +%s) - start )) s (exit $$status)"; \
	exit $$status

bench: deps
	$(SWIFT) build -c release --product cascade-bench
	CASCADE_BENCH=$(CURDIR)/.build/release/cascade-bench Benchmarks/run-tls.sh
	CASCADE_BENCH=$(CURDIR)/.build/release/cascade-bench Benchmarks/run-rpc.sh

.PHONY: fleet-sim
fleet-sim: deps
	$(SWIFT) build -c release --product cascade-bench
	$(SWIFT) build -c release --product cascade-coordinator
	CASCADE_BENCH=$(CURDIR)/.build/release/cascade-bench CASCADE_COORDINATOR=$(CURDIR)/.build/release/cascade-coordinator \
		Benchmarks/run-fleet.sh

demo: deps
	@echo "make demo: building release binaries (the first build takes a few minutes)"
	$(SWIFT) build -c release
	@scripts/demo.sh

# The paths the units and the example configuration are written with (scripts/install.sh).
PREFIX ?= /usr/local
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
STATEDIR ?= /var/lib/cascade
AGENT_ROOT ?= /opt/cascade
CASCADE_USER ?= cascade

install: deps
	$(SWIFT) build -c release
	@PREFIX="$(PREFIX)" UNITDIR="$(UNITDIR)" SYSCONFDIR="$(SYSCONFDIR)" STATEDIR="$(STATEDIR)" \
		AGENT_ROOT="$(AGENT_ROOT)" USER_NAME="$(CASCADE_USER)" DESTDIR="$(DESTDIR)" scripts/install.sh

clean:
	rm -rf .build Benchmarks/.out
