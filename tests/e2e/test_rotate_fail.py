#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""flows.log cannot be created again after a rotation: the file system is
out of inodes.

The output directory is on a tmpfs of this test's own with few inodes. The
agent rotates every interval (1 MiB files, ~2.6 MB of lines a second from a
UDP sender in the test's client namespace). The test then takes every inode
left (empty files), so the next rotation renames flows.log but cannot create
a new one (ENOSPC): that is logged. A few intervals later the test frees the
inodes, and rotation must resume by itself (logged too). Every line the agent
produced (its --stdout goes to a regular file outside the tmpfs, which takes
everything) must be in the kept files exactly once, or counted as lost.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, run_main, wait_for  # noqa: E402
from netns import TestNet  # noqa: E402
from traffic import UDP_SENDER  # noqa: E402


def take_inodes(mnt):
    """Create empty files until the file system has no inode left."""
    made = []
    while True:
        p = os.path.join(mnt, "filler-%d" % len(made))
        try:
            os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except OSError:
            return made
        made.append(p)


def body(res, args):
    d = tempfile.mkdtemp(prefix="pf-rotfail-")
    mnt = os.path.join(d, "mnt")
    out = os.path.join(mnt, "out")
    os.mkdir(mnt)
    mounted = False
    agent = None
    stdout = open(os.path.join(d, "stdout"), "wb")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m,nr_inodes=400,mode=0755",
                        "pf-rotfail", mnt], check=True)
        mounted = True
        with TestNet() as net:
            net.spawn(net.client_ns, [sys.executable, "-c", UDP_SENDER, net.server_v4,
                                      str(20000 + os.getpid() % 20000), "2000"])
            agent = Agent(args.agent, ["run", "--output-dir", out, "--runtime-dir",
                                       os.path.join(d, "run"), "--flush-interval", "1",
                                       "--aggregation", "0", "--max-file-size", "1",
                                       "--max-files", "1000", "--stdout"],
                          owner=net, stdout=stdout)
            if not agent.start_ready(res, 30):
                return
            pid = agent.proc.pid
            flows = os.path.join(out, "flows.log")
            res.check("it rotates", wait_for(lambda: os.path.exists(flows + ".2"), 20),
                      agent.stderr_text())
            fillers = take_inodes(mnt)
            res.check("the failed re-create is logged",
                      wait_for(lambda: agent.logged("rotating " + flows + " failed"), 15),
                      agent.stderr_text())
            # Three more intervals without inodes.
            t = time.time()
            wait_for(lambda: time.time() > t + 3, 10)  # the outage lasts 3 s
            for p in fillers:
                os.unlink(p)
            res.check("rotation works again, and says so",
                      wait_for(lambda: agent.logged("rotating " + flows + " works again"), 15),
                      agent.stderr_text())
            n = len(os.listdir(out))  # (the rotated files are kept: --max-files 1000)
            res.check("and goes on rotating",
                      wait_for(lambda: len(os.listdir(out)) >= n + 2, 15), agent.stderr_text())
            rc, _ = agent.stop()
            res.check("agent exits 0 on SIGTERM", rc == 0, agent.stderr_text())
        stdout.close()

        with open(os.path.join(d, "stdout"), "rb") as f:
            printed = [l for l in f.read().split(b"\n") if l]
        on_disk = {}
        for n in os.listdir(out):
            if re.fullmatch(r"flows\.log(\.\d+)?", n):
                with open(os.path.join(out, n), "rb") as f:
                    for l in f.read().split(b"\n"):
                        if l:
                            on_disk[l] = on_disk.get(l, 0) + 1
        missing = sum(1 for l in printed if l not in on_disk)
        twice = sum(1 for c in on_disk.values() if c > 1)
        lost = sum(int(m.group(1)) for l in agent.stderr_lines
                   for m in [re.search(r"(\d+) lines could not be written", l)] if m)
        res.check("every line printed is in the files once, or counted as lost",
                  missing == lost and twice == 0 and len(printed) > 1000,
                  "%d lines printed, %d missing from the files, %d counted lost, %d twice" % (
                      len(printed), missing, lost, twice))
        print("%d lines, %d files, %d counted lost" % (len(printed), len(os.listdir(out)), lost))
    finally:
        if agent:
            agent.kill()
        if not stdout.closed:
            stdout.close()
        if mounted and subprocess.run(["umount", mnt]).returncode != 0:
            subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__))
