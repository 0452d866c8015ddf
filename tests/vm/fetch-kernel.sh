#!/usr/bin/env bash
# Fetch one Debian cloud kernel and extract its vmlinuz into the cache.
#
#   fetch-kernel.sh CACHE_DIR SUITE REGEX    prints the path of the vmlinuz
#
# The package comes from `apt-get download`. For the host's own suite the
# machine's apt configuration is used as it is; any other suite gets a
# private sources list, list directory and cache under CACHE_DIR/apt-SUITE,
# so the machine's sources and package lists stay untouched.
set -euo pipefail
cache=$1 suite=$2 regex=$3
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

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
		"${apt[@]}" update >&2
	fi
fi

find_pkg() { "${aptcache[@]}" pkgnames linux-image- | grep -E "$regex" | sort -V | tail -n 1 || true; }
pkg=$(find_pkg)
if [ -z "$pkg" ] && [ "$suite" = "$host_suite" ]; then
	# A fresh machine may have no package lists yet (sources unchanged).
	apt-get -q update >&2
	pkg=$(find_pkg)
fi
if [ -z "$pkg" ]; then
	echo "fetch-kernel: no package matches '$regex' in $suite" >&2
	exit 1
fi
out=$cache/$pkg
if [ ! -s "$out/vmlinuz" ]; then
	rm -rf "$out.tmp" && mkdir -p "$out.tmp"
	(cd "$out.tmp" && "${apt[@]}" download "$pkg" >&2)
	dpkg-deb -x "$out.tmp"/*.deb "$out.tmp/x"
	mkdir -p "$out"
	cp "$out.tmp"/x/boot/vmlinuz-* "$out/vmlinuz"
	rm -rf "$out.tmp"
fi
echo "$out/vmlinuz"
