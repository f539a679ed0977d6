# director: see README.md. Every target installs what it needs.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PREFIX    ?= /usr/local
DESTDIR   ?=
FUZZTIME  ?= 20s
FUZZJOBS  ?= 1
FUZZPAR   ?= 0
FUZZMIN   ?= 10s
LABFLAGS  ?=

export CGO_ENABLED = 0

.PHONY: all build test unit verify-unit lab labkernel demo bench fuzz install deb deb-lint vet clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/director ./cmd/director

vet:
	$(GO) vet ./...
	$(GO) vet -tags lab ./labtests/...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Unit tests (some use network namespaces, so run as root), the unit file,
# then the lab.
test: vet unit verify-unit lab

# The unit file: systemd-analyze verify and its exposure score (at most 3.0),
# then the daemon run under its sandbox by a systemd of its own (as root).
verify-unit: build
	@command -v systemd-analyze >/dev/null || { apt-get update -qq && apt-get install -y -qq systemd >/dev/null; }
	sh systemd/verify.sh bin/director
	sh systemd/sandbox-test.sh bin/director

unit:
	$(GO) test -count=1 ./...

# The lab boots User-Mode Linux with real IPVS; it installs its Debian
# packages itself. labkernel chooses (and on a new host probes) the guest
# kernel and prints it with the host, so every run says what it ran on;
# LAB_KERNEL=debian12|sid-pinned|sid-newest forces one.
lab: labkernel
	$(GO) test -tags lab -count=1 -timeout 45m $(LABFLAGS) ./labtests/

labkernel:
	$(GO) run ./cmd/labboot

demo:
	$(GO) run ./labtests/demo

# Go benchmarks; then, in User-Mode Linux, IPVS programming beside ipvsadm -R
# and the failover figures beside keepalived, each in one run, and the routed
# mode's (detection with and without BFD, scaling over 1-3 directors); then the
# health-check capacity on loopback.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/labboot
	$(GO) run ./cmd/ipvsbench
	LAB_FIGURES=1 $(GO) test -tags lab -count=1 -timeout 90m -run '^(TestLabFigures|TestCheckFigure|TestIdleFigure|TestReloadFigure|TestSteadyFigure|TestFloodFigure|TestRoutedFigures)$$' -v ./labtests/
	$(GO) run ./cmd/checkbench -targets 1000 -interval 1s -duration 20s
	$(GO) run ./cmd/checkbench -targets 1000 -interval 5s -duration 20s

# Each fuzz target for FUZZTIME, FUZZJOBS at a time with FUZZPAR workers
# each (0: GOMAXPROCS), minimising each new input for at most FUZZMIN; the
# inputs a run finds that add coverage are kept under testdata/fuzz, whose
# seed corpora run in `make unit` too.
fuzz:
	$(GO) run ./cmd/fuzzrun -fuzztime $(FUZZTIME) -minimizetime $(FUZZMIN) -jobs $(FUZZJOBS) -parallel $(FUZZPAR)

install: build
	install -D -m 0755 bin/director $(DESTDIR)$(PREFIX)/sbin/director
	install -D -m 0644 systemd/director.service $(DESTDIR)/etc/systemd/system/director.service
	@if [ ! -e $(DESTDIR)/etc/director/director.yaml ]; then \
	  install -D -m 0640 configs/installed-example.yaml $(DESTDIR)/etc/director/director.yaml; \
	  echo "installed example configuration /etc/director/director.yaml: edit it"; fi
	install -D -m 0644 packaging/director.8 $(DESTDIR)$(PREFIX)/share/man/man8/director.8
	install -D -m 0644 packaging/bash-completion $(DESTDIR)$(PREFIX)/share/bash-completion/completions/director

# The Debian package director_VERSION_ARCH.deb, here (README.md, Install),
# built by cmd/mkdeb with nfpm as a library; its contents are tested in
# `make unit` (internal/debpkg). deb-lint checks the newest one with lintian.
deb: build
	$(GO) run ./cmd/mkdeb -binary bin/director -version '$(VERSION)' \
	  -time "$$(git log -1 --format=%ct 2>/dev/null || echo 0)" -o .

deb-lint: deb
	@command -v lintian >/dev/null || { apt-get update -qq && apt-get install -y -qq lintian >/dev/null; }
	lintian --fail-on error,warning "$$(ls -t director_*_*.deb | head -n 1)"

clean:
	rm -rf bin labtests/.work director_*_*.deb
