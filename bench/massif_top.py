#!/usr/bin/env python3
"""The largest allocation sites at a massif profile's peak.

    python3 bench/massif_top.py massif.out.PID [N] [DEPTH]

Prints the peak snapshot's total heap and its allocation sites, largest
first: each site as the first DEPTH (default 3) frames of its call chain
that are procflow's own (libc and libbpf frames skipped), with bytes and
share of the peak. Sites under 0.5 % are summed in one line. For the cost
phase of bench/run.sh under PF_BENCH_WRAP="valgrind --tool=massif ...".
"""
import re
import sys

OWN = re.compile(r"\((?:agent|lib)/[^)]*\)|\b(pf_[a-z_]+|procflow_[a-z_]+|main)\b")


def snapshots(path):
    """Each snapshot as (fields, [tree lines])."""
    snap, tree = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("snapshot="):
                if snap is not None:
                    yield snap, tree
                snap, tree = {}, []
            elif snap is not None and "=" in line and not line.startswith(" ") and not line.startswith("n"):
                k, v = line.rstrip("\n").split("=", 1)
                snap[k] = v
            elif snap is not None and re.match(r"\s*n\d+:", line):
                tree.append(line.rstrip("\n"))
    if snap is not None:
        yield snap, tree


def parse_tree(lines):
    """Massif's tree as nested (bytes, label, children)."""
    pos = 0

    def node():
        nonlocal pos
        m = re.match(r"(\s*)n(\d+): (\d+) (.*)", lines[pos])
        pos += 1
        nkids, size, label = int(m.group(2)), int(m.group(3)), m.group(4)
        kids = [node() for _ in range(nkids)]
        return size, label, kids
    return node()


def frame(label):
    # "0x4A1B2C: pf_hmap__upsert (hmap.c:150)" -> "pf_hmap__upsert (hmap.c:150)"
    return re.sub(r"^0x[0-9A-Fa-f]+: ", "", label)


def own(label):
    return bool(re.search(r"\((?:[a-z_]+\.c):\d+\)", label)) and "libbpf" not in label \
        and not re.search(r"\b(malloc|calloc|realloc|strdup|__libc|_dl_)", label)


def sites(tree, depth, out, chain=()):
    size, label, kids = tree
    f = frame(label)
    if own(f):
        chain = chain + (f,)
    if len(chain) >= depth or not kids:
        out.append((size, chain or (f,)))
        return
    covered = 0
    for k in kids:
        sites(k, depth, out, chain)
        covered += k[0]
    if size - covered > 0:
        out.append((size - covered, chain or (f,)))


def main():
    path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    depth = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    peak = None
    for snap, tree in snapshots(path):
        if snap.get("heap_tree") == "peak":
            peak = (snap, tree)
    if not peak:
        sys.exit("no peak snapshot in " + path)
    snap, tree = peak
    heap, extra = int(snap["mem_heap_B"]), int(snap["mem_heap_extra_B"])
    root = parse_tree(tree)
    out = []
    for k in root[2]:
        sites(k, depth, out)
    merged = {}
    for size, chain in out:
        merged[chain] = merged.get(chain, 0) + size
    rows = sorted(merged.items(), key=lambda kv: -kv[1])
    print("peak heap {:.1f} MiB (+ {:.1f} MiB allocator overhead), snapshot {}".format(
        heap / 1048576, extra / 1048576, snap.get("time", "?")))
    small = 0
    shown = 0
    for chain, size in rows:
        if shown >= n or size < heap * 0.005:
            small += size
            continue
        shown += 1
        print("{:8.1f} MiB {:5.1f} %  {}".format(size / 1048576, 100 * size / heap, " < ".join(chain)))
    if small:
        print("{:8.1f} MiB {:5.1f} %  (other sites)".format(small / 1048576, 100 * small / heap))


if __name__ == "__main__":
    main()
