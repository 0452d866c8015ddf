#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""A full disk under a running agent.

The output directory is on a small tmpfs of this test's own, so filling it
harms nothing else. While it is full the agent must keep running, count the
lines it could not write and say so; once space is back it must say how many
were lost and write again. The file must only ever hold whole lines. The
same again with the file system remounted read-only (an unwritable
directory, which root cannot get by permissions)."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, read_lines, run_main, wait_for, workdir  # noqa: E402
from traffic import NetnsServer, client  # noqa: E402


def traffic(server, n, tag):
    ps = [client(server.port, f"{tag}-{i}", server.ip) for i in range(n)]
    for p in ps:
        p.wait(timeout=10)
    return [p.pid for p in ps]


def whole_lines(path):
    """(True, "") when every line of @path is a whole JSON object."""
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        return False, "the file ends in a partial line: %r" % data[-80:]
    for i, l in enumerate(data.splitlines()):
        try:
            json.loads(l)
        except ValueError as e:
            return False, "line %d does not parse: %s" % (i + 1, e)
    return True, ""


def has_pids(path, pids):
    """True when @path holds a line of each PID in @pids."""
    try:
        seen = {l["process_id"] for l in read_lines(path)}
    except (OSError, ValueError):
        return False
    return all(str(p) in seen for p in pids)


def fill(path):
    """Write until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def body(res, args):
    with workdir(args, "pf-diskfull-") as d:
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        # 64 MiB: room for the lines before and after the disk is full, even
        # when other traffic on the host makes thousands of lines a second.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "pf-diskfull", mnt],
                       check=True)
        try:
            with NetnsServer() as server:
                scenario(res, args, d, mnt, server)
        finally:
            if subprocess.run(["umount", mnt]).returncode != 0:
                subprocess.run(["umount", "-l", mnt])


def scenario(res, args, d, mnt, server):
    check = res.check
    out = os.path.join(mnt, "out")
    flows = os.path.join(out, "flows.log")
    # --verbose: the agent logs every failed write while the disk is full,
    # which is what this test waits for instead of sleeping.
    agent = Agent(args.agent, ["run", "--output-dir", out, "--flush-interval", "1", "--verbose",
                               "--aggregation", "0", "--runtime-dir", os.path.join(d, "run")])
    if not agent.start_ready(res):
        return
    try:
        before = traffic(server, 3, "before")
        check("the clients before the disk fills are written",
              wait_for(lambda: has_pids(flows, before), 20), repr(before))

        # Full disk.
        n = agent.nlines()
        fill(os.path.join(mnt, "filler"))
        traffic(server, 5, "full")
        t = agent.wait_line("failed", after=n, timeout=20)
        check("the failure is logged", t is not None, agent.stderr_text())
        check("the agent keeps running on a full disk", agent.proc.poll() is None)
        size_full = os.path.getsize(flows)
        ok, why = whole_lines(flows)
        check("only whole lines while full", ok, why)
        # Two more flushes with lines fail after the size was taken:
        # whatever they wrote is in the file by then.
        for k in range(2):
            n = agent.nlines()
            traffic(server, 3, "full%d" % k)
            check("a later write fails too, and is logged (%d)" % (k + 1),
                  agent.wait_line("still fails", after=n, timeout=20) is not None,
                  agent.stderr_text())
        # Lines that fit in the slack of the file's last page may still go
        # in; nothing beyond it can.
        check("nothing more than fits is written while full",
              os.path.getsize(flows) - size_full < 4096)
        ok, why = whole_lines(flows)
        check("still only whole lines", ok, why)

        # Space again.
        n = agent.nlines()
        os.unlink(os.path.join(mnt, "filler"))
        after = traffic(server, 3, "after")
        t = agent.wait_line("works again", after=n, timeout=20)
        check("resumption is logged", t is not None, agent.stderr_text())
        m = re.search(r"works again: (\d+) lines could not be written", agent.log_text())
        check("the lost lines are counted", m is not None and int(m.group(1)) > 0,
              agent.stderr_text())
        # (Other processes on the machine may make traffic too: look for
        # this test's clients by PID.)
        check("the clients that ran after the disk had space are in the file",
              wait_for(lambda: has_pids(flows, after), 20), repr(after))
        read_lines(flows)  # a partial line raises
        check("writing resumed", os.path.getsize(flows) > size_full)
        check("agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())
    finally:
        # Before the tmpfs is unmounted: the agent holds flows.log open.
        agent.kill()


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__.splitlines()[0]))
