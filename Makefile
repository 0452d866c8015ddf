# Convenience front end over CMake. `make run` and `make test` do all set-up
# on a fresh Debian machine (packages, build) and then run.

BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
OUT        ?= ./flowlogs
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all deps build build-san build-fuzz run install test test-unit test-e2e test-vm test-san test-fuzz bench clean

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

# The binary to $(PREFIX)/bin, and a sample configuration to /etc/procflow/
# (kept when one is there already).
install: build
	install -D -m 0755 $(BUILD)/procflow $(DESTDIR)$(PREFIX)/bin/procflow
	@if [ -e $(DESTDIR)/etc/procflow/procflow.yaml ]; then \
		echo "keeping $(DESTDIR)/etc/procflow/procflow.yaml"; \
	else \
		install -D -m 0644 etc/procflow.yaml $(DESTDIR)/etc/procflow/procflow.yaml; \
	fi

test: build build-san build-fuzz
	@echo "== tests (release build)"
	@ctest --test-dir $(BUILD) --output-on-failure
	@echo "== tests (ASan + UBSan build)"
	@ctest --test-dir $(BUILD_SAN) --output-on-failure
	@echo "== fuzz harnesses (bounded runs)"
	@ctest --test-dir $(BUILD_FUZZ) --output-on-failure -L fuzz
	@echo "== VM stage (Debian cloud kernels under qemu, every hook tier)"
	@tests/vm/run.sh $(BUILD)

test-unit: build
	@ctest --test-dir $(BUILD) --output-on-failure -L unit

test-e2e: build
	@ctest --test-dir $(BUILD) --output-on-failure -L e2e

# Boot the kernels of tests/vm/kernels.txt under qemu and run the end-to-end
# test on every hook tier each offers (kernels cached under $(BUILD)/vm-cache).
test-vm: build
	@tests/vm/run.sh $(BUILD)

bench: build
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
