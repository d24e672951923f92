# hotcast build. `make test` runs every test (as root: the BPF and namespace
# tests need it); `make lab` runs the lab demo.

SHELL := /bin/bash
GO ?= go
# Pinned: the clang that Debian 12 ships. The generated objects are
# committed; CI regenerates them with this compiler and diffs.
BPF_CLANG ?= clang-14
BPF_CFLAGS ?= -O2 -g -Wall -Werror -I/usr/include/$(shell uname -m)-linux-gnu
export BPF_CLANG BPF_CFLAGS

DEB_BUILD := clang-14 llvm-14 libbpf-dev
DEB_TEST := bpftool smcroute netsniff-ng keepalived tcpdump python3-scapy python3-yaml ndisc6 ethtool iproute2 iputils-ping util-linux procps hostname tshark frr gcc libc6-dev

.PHONY: all generate build test test-unit bench lab deps-build deps-test install clean

all: build

# Installs Debian packages that are missing (as root, apt-get).
define ensure_debs
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps-build:
	$(call ensure_debs,$(DEB_BUILD))

deps-test:
	$(call ensure_debs,$(DEB_TEST))

generate: deps-build
	$(GO) generate ./bpf/...

build:
	mkdir -p bin
	$(GO) build -o bin/hotcastd ./cmd/hotcastd
	$(GO) build -o bin/hotcastctl ./cmd/hotcastctl

# The whole suite: unit, BPF (BPF_PROG_TEST_RUN) and namespace tests. Needs
# root. -p 1 keeps namespace-heavy packages from starving each other on
# small boxes.
test: deps-test build
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 30m ./...
	@# The daemon's own logic (phases, transition to gate, MLD <-> RBS,
	@# reload, on fakes) and its config, under the race detector.
	$(GO) test -race -count=1 -timeout 10m ./daemon/...

# Every benchmark in turn (scripts/bench), then bench/results.md and the
# plots bench/*.png (matplotlib). BENCH_ARGS=--quick: a smoke run, its
# results in its run directory under bench/raw/.
bench: deps-test build
	$(call ensure_debs,python3-matplotlib)
	scripts/bench $(BENCH_ARGS)

lab: deps-test build
	scripts/lab

install: build
	install -D -m 0755 bin/hotcastd $(DESTDIR)/usr/local/sbin/hotcastd
	install -D -m 0755 bin/hotcastctl $(DESTDIR)/usr/local/bin/hotcastctl
	install -D -m 0644 configs/hotcastd.service $(DESTDIR)/etc/systemd/system/hotcastd.service
	@# An existing configuration is never overwritten.
	test -e $(DESTDIR)/etc/hotcast/hotcast.yaml || install -D -m 0644 configs/hotcast.yaml $(DESTDIR)/etc/hotcast/hotcast.yaml

clean:
	rm -rf bin
