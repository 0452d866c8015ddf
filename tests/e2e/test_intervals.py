#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""A long-lived flow across intervals, through the real collector.

One client process opens a TCP connection to a server in this test's own
network namespace (pfagent.NetnsServer), sends, stays connected
and idle for several intervals, sends again and closes. Its flow must appear
in every interval from the first to the last (the idle ones too, with no
bytes), count as started in the first interval only and as completed in the
last only, and its intervals must follow each other without gaps."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pfagent import Agent, NetnsServer, read_lines  # noqa: E402

passed = failed = 0

LONG = ("import socket,sys,time\n"
        "c=socket.create_connection((sys.argv[2],int(sys.argv[1])))\n"
        "c.sendall(b'a'*1000)\n"
        "time.sleep(4.5)\n"
        "c.sendall(b'b'*1000)\n"
        "time.sleep(0.2)\n"
        "c.close()\n")


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--bindir")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pf-intervals-")
    out = os.path.join(d, "out")
    agent = server = p = None
    try:
        server = NetnsServer()
        agent = Agent(a.agent, ["--output-dir", out, "--flush-interval", "1", 
                                "--aggregation", "0", "--runtime-dir", os.path.join(d, "run")])
        check("agent ready", agent.wait_for("ready") is not None, agent.text())
        p = subprocess.Popen([sys.executable, "-c", LONG, str(server.port), server.ip])
        p.wait(timeout=30)
        # No wait: the final flush on SIGTERM writes the last interval.
        check("agent exits 0 on SIGTERM", agent.stop() == 0, agent.text())
        ls = [l for l in read_lines(os.path.join(out, "flows.log"))
              if l["reporter"] == "src" and l["process_id"] == str(p.pid)]
        ls.sort(key=lambda l: l["start_time"])
        check("the flow is in at least 4 intervals", len(ls) >= 4, repr(len(ls)) + "\n" + agent.text())
        if ls:
            check("started in the first interval only",
                  [l["num_flows_started"] for l in ls] == [1] + [0] * (len(ls) - 1),
                  repr([l["num_flows_started"] for l in ls]))
            check("completed in the last interval only",
                  [l["num_flows_completed"] for l in ls] == [0] * (len(ls) - 1) + [1],
                  repr([l["num_flows_completed"] for l in ls]))
            check("one flow on every line", all(l["num_flows"] == 1 for l in ls))
            check("idle intervals are there, with no bytes",
                  any(l["bytes_out"] == 0 and l["packets_out"] == 0 for l in ls[1:-1]),
                  repr([l["bytes_out"] for l in ls]))
            check("the intervals follow each other",
                  all(ls[i]["start_time"] == ls[i - 1]["end_time"] for i in range(1, len(ls))),
                  repr([(l["start_time"], l["end_time"]) for l in ls]))
            check("both sends are counted once", sum(l["bytes_out"] for l in ls) >= 2000
                  and sum(l["bytes_out"] for l in ls) < 2000 + 40 * 20,
                  repr(sum(l["bytes_out"] for l in ls)))
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait()
        if agent:
            agent.stop()
        if server:
            server.close()
        shutil.rmtree(d, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
