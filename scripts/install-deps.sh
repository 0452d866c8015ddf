#!/usr/bin/env bash
# Install the Debian packages procflow needs to build, run and test, and
# only those that are missing. Needs root (apt-get).
set -euo pipefail

pkgs=(
	build-essential cmake pkg-config clang llvm    # host and BPF compilers
	libclang-rt-dev                                # ASan/UBSan/libFuzzer runtimes for clang
	libbpf-dev bpftool libelf-dev zlib1g-dev       # loader and skeletons
	libyaml-dev libzstd-dev                        # config file, compressed rotation
	libcmocka-dev                                  # unit tests
	libzstd-dev zstd                               # query: compressed rotated files
	libcurl4-openssl-dev                           # the ClickHouse sink
	libmicrohttpd-dev                              # the /metrics endpoint
	prometheus                                     # promtool and the metrics endpoint's test
	clickhouse-server clickhouse-client            # the ClickHouse sink's tests
	python3 iproute2 procps                        # end-to-end tests
	systemd man-db groff-base                      # make install: systemd-analyze, man
	podman runc catatonit                          # make image and its tests (runc: crun refuses hybrid
	                                               # cgroups; catatonit: kube play's pause image)
	containerd                                     # test_containers: ctr with CRI annotations
	qemu-system-x86 busybox-static cpio            # VM stage (tests/vm); busybox-static also
	                                               # test_containers' image
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
