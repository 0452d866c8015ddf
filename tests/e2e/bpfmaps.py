# SPDX-License-Identifier: BSD-2-Clause
"""The kernel maps of one running agent, read with bpftool (Python 3 standard library
otherwise).

Other agents may run on the same host (each with maps called "socks", "flows"...), so
a map is found through the file descriptors of the agent's own process: each BPF map
it holds is an "anon_inode:bpf-map" whose fdinfo gives the map's id."""
import json
import os
import subprocess

BPFTOOL = "bpftool"


def agent_maps(pid):
    """{name: bpftool's JSON description} of every BPF map process @pid holds open."""
    ids = set()
    fddir = "/proc/%d/fd" % pid
    for fd in os.listdir(fddir):
        try:
            if os.readlink(os.path.join(fddir, fd)) != "anon_inode:bpf-map":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("map_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            continue  # closed meanwhile
    maps = {}
    for i in sorted(ids):
        p = subprocess.run([BPFTOOL, "map", "show", "id", str(i), "-j"],
                           capture_output=True, text=True)
        if p.returncode == 0:
            m = json.loads(p.stdout)
            maps[m.get("name", "")] = m
    return maps


def map_entries(map_id):
    """The number of entries of a hash map, by dumping it (bpftool walks the keys)."""
    p = subprocess.run([BPFTOOL, "map", "dump", "id", str(map_id), "-j"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("bpftool map dump id %d: %s" % (map_id, p.stderr.strip()))
    return len(json.loads(p.stdout))
