#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""A long-lived flow across intervals, through the real collector.

One client process opens a TCP connection to a server in this test's own
network namespace (traffic.NetnsServer), sends, stays connected
and idle for several intervals, sends again and closes. Its flow must appear
in every interval from the first to the last (the idle ones too, with no
bytes), count as started in the first interval only and as completed in the
last only, and its intervals must follow each other without gaps."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, read_lines, run_main, workdir  # noqa: E402
from traffic import NetnsServer  # noqa: E402

LONG = ("import socket,sys,time\n"
        "c=socket.create_connection((sys.argv[2],int(sys.argv[1])))\n"
        "c.sendall(b'a'*1000)\n"
        "time.sleep(4.5)\n"
        "c.sendall(b'b'*1000)\n"
        "time.sleep(0.2)\n"
        "c.close()\n")


def body(res, args):
    with workdir(args, "pf-intervals-") as d, NetnsServer() as server:
        procs = []
        try:
            scenario(res, args, d, server, procs)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()


def scenario(res, args, d, server, procs):
    check = res.check
    out = os.path.join(d, "out")
    agent = Agent(args.agent, ["run", "--output-dir", out, "--flush-interval", "1",
                               "--aggregation", "0", "--runtime-dir", os.path.join(d, "run")])
    if not agent.start_ready(res):
        return
    p = subprocess.Popen([sys.executable, "-c", LONG, str(server.port), server.ip])
    procs.append(p)
    p.wait(timeout=30)
    # No wait: the final flush on SIGTERM writes the last interval.
    check("agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())
    ls = [l for l in read_lines(os.path.join(out, "flows.log"))
          if l["reporter"] == "src" and l["process_id"] == str(p.pid)]
    ls.sort(key=lambda l: l["start_time"])
    check("the flow is in at least 4 intervals", len(ls) >= 4,
          repr(len(ls)) + "\n" + agent.stderr_text())
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


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__.splitlines()[0]))
