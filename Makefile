# Convenience front end over CMake. `make run` and `make test` do all set-up
# on a fresh Debian machine (packages, build) and then run.

BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
OUT        ?= ./flowlogs

.PHONY: all deps build build-san build-fuzz run test test-unit test-e2e test-vm test-san test-fuzz bench vm-bench soak clean
.PHONY: install install-files image

# Installation (GNU conventions: PREFIX, DESTDIR for staging). The config file
# is always /etc/procflow/procflow.yaml: that is where the agent looks for it.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
CONFDIR    := /etc/procflow
DESTDIR    ?=
# The container image `make image` builds (no registry: FROM scratch).
IMAGE      ?= localhost/procflow

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Sanitizer build: every test suite runs again under ASan and UBSan.
build-san: deps
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DPF_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)

build-fuzz: deps
	@cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DPF_SANITIZE=ON -DPF_FUZZ=ON -DPF_E2E=OFF >/dev/null
	@cmake --build $(BUILD_FUZZ) -j $(JOBS)

# Run the agent on its defaults, writing $(OUT)/flows.log and printing each line.
run: build
	@mkdir -p $(OUT)
	$(BUILD)/procflow run --output-dir $(OUT) --stdout

# Every suite, stage by stage, with the wall time of each (tests/run-stages.sh).
test: build build-san build-fuzz
	@tests/run-stages.sh $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)

test-unit: build
	@ctest --test-dir $(BUILD) --output-on-failure -L unit

test-e2e: build
	@ctest --test-dir $(BUILD) --output-on-failure -L e2e

# Boot the kernels of tests/vm/kernels.txt under qemu and run the end-to-end
# test on every hook tier each offers (kernels cached in /var/cache/procflow-vm).
test-vm: build
	@tests/vm/run.sh $(BUILD)

# Measurements are not tests: they never share a test's time limit.
bench: build
	@bench/run.sh $(BUILD)
	@tests/vm/run.sh --bench $(BUILD)

# One agent under a mixed workload for SOAK_MINUTES (default 10): RSS, map
# occupancy and losses per minute; exact attribution and flatness at the end.
SOAK_MINUTES ?= 10
soak: build
	@TMPDIR=/dev/shm python3 tests/soak/soak.py --agent $(BUILD)/procflow --bindir $(BUILD)/e2e --minutes $(SOAK_MINUTES)

# The hook tiers' cost in the VMs alone (ping-pong ratios, agent CPU).
vm-bench: build
	@tests/vm/run.sh --bench $(BUILD)

# Build, then install the binary, the systemd unit (its ExecStart pointing at
# BINDIR) and the sysusers.d entry of the user it runs as (created at once when
# installing into the running system), procflow(8) made from the README's Usage
# section, and a sample config with every key commented out, unless a config is
# already there.
install: build
	@$(MAKE) --no-print-directory install-files

install-files:
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(CONFDIR)
	install -m 0755 $(BUILD)/procflow $(DESTDIR)$(BINDIR)/procflow
	sed 's|/usr/local/bin/procflow|$(BINDIR)/procflow|' deploy/systemd/procflow.service > $(BUILD)/procflow.service
	install -m 0644 $(BUILD)/procflow.service $(DESTDIR)$(UNITDIR)/procflow.service
	install -m 0644 deploy/systemd/procflow.sysusers $(DESTDIR)$(SYSUSERSDIR)/procflow.conf
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
		systemd-sysusers $(SYSUSERSDIR)/procflow.conf; \
	fi
	scripts/readme2man.py README.md "$$($(BUILD)/procflow --version | cut -d' ' -f2)" > $(BUILD)/procflow.8
	install -m 0644 $(BUILD)/procflow.8 $(DESTDIR)$(MANDIR)/man8/procflow.8
	@if [ -e $(DESTDIR)$(CONFDIR)/procflow.yaml ]; then \
		echo "install: keeping the existing $(DESTDIR)$(CONFDIR)/procflow.yaml"; \
	else \
		install -m 0644 deploy/procflow.yaml $(DESTDIR)$(CONFDIR)/procflow.yaml; \
	fi

# The image: the binary, the shared libraries it loads and the loader, copied
# FROM scratch (Containerfile); tagged with the version and latest.
image: build
	scripts/image-rootfs.sh $(BUILD)/procflow $(BUILD)/image
	v=$$($(BUILD)/procflow --version | cut -d' ' -f2) && \
	podman build -q -t $(IMAGE):$$v -t $(IMAGE):latest -f $(BUILD)/image/Containerfile $(BUILD)/image && \
	echo "image: $(IMAGE):$$v"

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
