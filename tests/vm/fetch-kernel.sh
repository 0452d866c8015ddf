#!/usr/bin/env bash
# Fetch one Debian cloud kernel and extract its vmlinuz into the cache.
#
#   fetch-kernel.sh CACHE_DIR SUITE REGEX    prints the path of the vmlinuz
#
# Exit status: 0 with the path on stdout; 3 when the kernel could not be
# downloaded (the network or the mirror failed: not a test failure, and the
# message says so); 1 for anything else (no package matches REGEX).
#
# The package comes from `apt-get download`. For the host's own suite the
# machine's apt configuration is used as it is; any other suite gets a
# private sources list, list directory and cache under CACHE_DIR/apt-SUITE,
# so the machine's sources and package lists stay untouched. Every network
# step is tried three times; when they all fail, the newest kernel already in
# the cache that matches REGEX is used instead, so a mirror that is down does
# not stop a machine that has fetched the kernel once.
set -euo pipefail
cache=$1 suite=$2 regex=$3
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# Run "$@" up to three times, 5 s then 20 s apart; the last error is kept.
retry() {
	local n
	for n in 1 2 3; do
		"$@" >&2 && return 0
		[ "$n" -lt 3 ] && { echo "fetch-kernel: try $n of 3 failed: $*" >&2; sleep $((n * n * 5)); }
	done
	return 1
}

# The newest cached kernel whose package name matches REGEX, if any.
cached() {
	local d
	d=$(find "$cache" -mindepth 2 -maxdepth 2 -name vmlinuz -size +0 -printf '%h\n' 2>/dev/null |
		xargs -r -n1 basename | grep -E "$regex" | sort -V | tail -n 1)
	[ -n "$d" ] && echo "$cache/$d/vmlinuz"
}

download_failed() {
	local have
	if have=$(cached); then
		echo "fetch-kernel: $1; using the cached $(basename "$(dirname "$have")")" >&2
		echo "$have"
		exit 0
	fi
	echo "fetch-kernel: download failure: $1 (no cached kernel matches '$regex')" >&2
	exit 3
}

host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
apt=(apt-get -q)
aptcache=(apt-cache)
if [ "$suite" != "$host_suite" ]; then
	d=$cache/apt-$suite
	mkdir -p "$d/lists/partial" "$d/archives/partial"
	printf 'deb http://deb.debian.org/debian %s main\n' "$suite" >"$d/sources.list"
	opts=(-o "Dir::Etc::sourcelist=$d/sources.list" -o "Dir::Etc::sourceparts=-"
	      -o "Dir::State::Lists=$d/lists" -o "Dir::Cache::archives=$d/archives"
	      -o "Dir::Cache::pkgcache=$d/pkgcache.bin" -o "Dir::Cache::srcpkgcache=$d/srcpkgcache.bin")
	apt+=("${opts[@]}")
	aptcache+=("${opts[@]}")
	# Lists are refreshed once a day at most.
	if [ -z "$(find "$d/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null)" ]; then
		retry "${apt[@]}" update || download_failed "apt-get update of the $suite lists failed"
	fi
fi

find_pkg() { "${aptcache[@]}" pkgnames linux-image- | grep -E "$regex" | sort -V | tail -n 1 || true; }
pkg=$(find_pkg)
if [ -z "$pkg" ] && [ "$suite" = "$host_suite" ]; then
	# A fresh machine may have no package lists yet (sources unchanged).
	retry apt-get -q update || download_failed "apt-get update failed"
	pkg=$(find_pkg)
fi
if [ -z "$pkg" ]; then
	echo "fetch-kernel: no package matches '$regex' in $suite" >&2
	exit 1
fi
out=$cache/$pkg
if [ ! -s "$out/vmlinuz" ]; then
	rm -rf "$out.tmp" && mkdir -p "$out.tmp"
	(cd "$out.tmp" && retry "${apt[@]}" download "$pkg") ||
		{ rm -rf "$out.tmp"; download_failed "apt-get download $pkg failed"; }
	dpkg-deb -x "$out.tmp"/*.deb "$out.tmp/x"
	mkdir -p "$out"
	cp "$out.tmp"/x/boot/vmlinuz-* "$out/vmlinuz.part"
	mv "$out/vmlinuz.part" "$out/vmlinuz"
	rm -rf "$out.tmp"
fi
echo "$out/vmlinuz"
