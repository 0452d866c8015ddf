#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""A full disk under a running agent.

The output directory is on a small tmpfs of this test's own, so filling it
harms nothing else. While it is full the agent must keep running, count the
lines it could not write and say so; once space is back it must say how many
were lost and write again. The file must only ever hold whole lines. The
same again with the file system remounted read-only (an unwritable
directory, which root cannot get by permissions)."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import re

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pfagent import Agent, NetnsServer, client, read_lines  # noqa: E402

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


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


def wait_for(pred, timeout):
    """Poll @pred until it is true or @timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def fill(path):
    """Write until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--bindir")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (mounts a tmpfs)")
        print("0 passed, 1 failed")
        return 1
    d = tempfile.mkdtemp(prefix="pf-diskfull-")
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    mounted = False
    agent = server = None
    try:
        # 64 MiB: room for the lines before and after the disk is full, even
        # when other traffic on the host makes thousands of lines a second.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "pf-diskfull", mnt],
                       check=True)
        mounted = True
        out = os.path.join(mnt, "out")
        flows = os.path.join(out, "flows.log")
        server = NetnsServer()
        # --verbose: the agent logs every failed write while the disk is full,
        # which is what this test waits for instead of sleeping.
        agent = Agent(a.agent, ["--output-dir", out, "--flush-interval", "1", "--verbose",
                                "--aggregation", "0", "--runtime-dir", os.path.join(d, "run")])
        check("agent ready", agent.wait_for("ready") is not None, agent.text())
        before = traffic(server, 3, "before")
        check("the clients before the disk fills are written",
              wait_for(lambda: has_pids(flows, before), 20), repr(before))

        # Full disk.
        n = agent.nlog()
        fill(os.path.join(mnt, "filler"))
        traffic(server, 5, "full")
        t = agent.wait_for("failed", after=n, timeout=20)
        check("the failure is logged", t is not None, agent.text())
        check("the agent keeps running on a full disk", agent.p.poll() is None)
        size_full = os.path.getsize(flows)
        ok, why = whole_lines(flows)
        check("only whole lines while full", ok, why)
        # Two more flushes with lines fail after the size was taken:
        # whatever they wrote is in the file by then.
        for k in range(2):
            n = agent.nlog()
            traffic(server, 3, "full%d" % k)
            check("a later write fails too, and is logged (%d)" % (k + 1),
                  agent.wait_for("still fails", after=n, timeout=20) is not None, agent.text())
        # Lines that fit in the slack of the file's last page may still go
        # in; nothing beyond it can.
        check("nothing more than fits is written while full",
              os.path.getsize(flows) - size_full < 4096)
        ok, why = whole_lines(flows)
        check("still only whole lines", ok, why)

        # Space again.
        n = agent.nlog()
        os.unlink(os.path.join(mnt, "filler"))
        after = traffic(server, 3, "after")
        t = agent.wait_for("works again", after=n, timeout=20)
        check("resumption is logged", t is not None, agent.text())
        m = re.search(r"works again: (\d+) lines could not be written", agent.text())
        check("the lost lines are counted", m is not None and int(m.group(1)) > 0, agent.text())
        # (Other processes on the machine may make traffic too: look for
        # this test's clients by PID.)
        check("the clients that ran after the disk had space are in the file",
              wait_for(lambda: has_pids(flows, after), 20), repr(after))
        lines = read_lines(flows)
        check("writing resumed", os.path.getsize(flows) > size_full)
        check("agent exits 0 on SIGTERM", agent.stop() == 0, agent.text())
    except Exception as e:  # a partial line raises here
        check("no exception", False, repr(e))
    finally:
        if agent:
            agent.stop()
        if server:
            server.close()
        if mounted:
            if subprocess.run(["umount", mnt]).returncode != 0:
                subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(d, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
