#!/usr/bin/env bash
# Stage the root file system of the procflow image: the binary, every shared
# library it loads (as ldd resolves them on this machine) at the same path,
# the dynamic loader, a default config and the directories the agent writes.
# No registry is involved: Containerfile copies this tree FROM scratch.
#
# usage: scripts/image-rootfs.sh PROCFLOW_BINARY OUTDIR
# Writes OUTDIR/rootfs/ and copies Containerfile to OUTDIR/ (the build context).
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 PROCFLOW_BINARY OUTDIR" >&2
	exit 2
fi
bin=$1
out=$2
src=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$bin" ]; then
	echo "image-rootfs: $bin is not an executable" >&2
	exit 1
fi

rm -rf "$out/rootfs"
root=$out/rootfs
mkdir -p "$root/usr/bin" "$root/etc/procflow" "$root/var/log/procflow" "$root/run/procflow" \
	"$root/proc" "$root/sys" "$root/dev" "$root/tmp"
chmod 1777 "$root/tmp"

# The binary without its debug sections (the image carries no debugger).
objcopy --strip-debug "$bin" "$root/usr/bin/procflow"
chmod 0755 "$root/usr/bin/procflow"

# "libx.so.1 => /lib/.../libx.so.1 (0x...)" and the loader "/lib64/ld-....so.2 (0x...)";
# linux-vdso has no file. A library ldd cannot find fails the build here, not at run time.
libs=$(ldd "$bin" | awk '
	/not found/   { print "MISSING " $1; next }
	$2 == "=>"    { if ($3 ~ /^\//) print $3; next }
	$1 ~ /^\//    { print $1 }')
if grep -q '^MISSING' <<<"$libs"; then
	echo "image-rootfs: ldd cannot find: $(grep '^MISSING' <<<"$libs" | cut -d' ' -f2 | tr '\n' ' ')" >&2
	exit 1
fi
for lib in $libs; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

# The default config: every key at its default (see deploy/procflow.yaml).
install -m 0644 "$src/deploy/procflow.yaml" "$root/etc/procflow/procflow.yaml"
# Name resolution for the ClickHouse sink's host name (glibc's files and dns
# modules are part of libc since 2.34; /etc/hosts and resolv.conf come from
# the runtime).
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/usr/bin/procflow\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

cp "$src/Containerfile" "$out/Containerfile"
echo "image-rootfs: $(find "$root" -type f | wc -l) files, $(du -sh "$root" | cut -f1) in $root"
