#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""--stdout with a reader that exits, and with one that never reads.

`procflow run --stdout | head -1`: once head has its line and exits, the agent
must not die of SIGPIPE; it logs once that standard output is closed, keeps
writing every interval to flows.log, and exits 0 on SIGTERM.

A reader that never reads: the pipe fills, then the agent's bounded buffer;
the flush loop must go on regardless (flows.log gets every interval, without a
gap), the lines standard output could not take are counted in the log, and
SIGTERM still ends the agent at once with exit 0.

Traffic: a UDP sender in the test's client namespace to 2,000 ports of the
server namespace, so each 1-second interval has ~2,000 lines (~2.6 MB) at
aggregation 0.
"""
import os
import re
import sys
import threading
import time
import subprocess

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, load_flows, run_main, wait_for, workdir  # noqa: E402
from netns import TestNet  # noqa: E402
from traffic import UDP_SENDER  # noqa: E402


def intervals(path):
    """The (start, end) of every interval in flows.log, in order, and the records."""
    recs, problems = load_flows(path)
    seen = []
    for r in recs:
        iv = (r["start_time"], r["end_time"])
        if iv not in seen:
            seen.append(iv)
    return seen, recs, problems


def chained(ivs):
    """Intervals without a gap: each starts where the one before ended."""
    return all(a[1] == b[0] for a, b in zip(ivs, ivs[1:]))


def body(res, args):
    with workdir(args, "pf-stdout-") as d, TestNet() as net:
        net.spawn(net.client_ns, [sys.executable, "-c", UDP_SENDER, net.server_v4,
                                  str(20000 + os.getpid() % 20000), "2000"])
        head_case(res, args, net, os.path.join(d, "head"))
        stalled_case(res, args, net, os.path.join(d, "stall"))


def agent_for(args, net, out):
    return Agent(args.agent, ["run", "--output-dir", out, "--runtime-dir", out + ".run",
                              "--flush-interval", "1", "--aggregation", "0", "--stdout"],
                 owner=net, stdout=subprocess.PIPE)


def head_case(res, args, net, out):
    agent = agent_for(args, net, out)
    try:
        if not agent.start_ready(res, 20, "| head -1: agent ready"):
            return
        # head -1: one line, then the reader is gone.
        got = []
        t = threading.Thread(target=lambda: got.append(agent.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(15)
        if not res.check("| head -1: a line on standard output", bool(got and got[0]), repr(got)):
            return
        agent.proc.stdout.close()
        t_closed = time.time()
        res.check("| head -1: the closed standard output is logged",
                  wait_for(lambda: agent.logged("standard output is closed"), 10),
                  agent.stderr_text())
        # Three more intervals end after the reader left.
        flows = os.path.join(out, "flows.log")
        res.check("| head -1: the agent keeps writing flows.log",
                  wait_for(lambda: any(e >= t_closed + 3 for _, e in intervals(flows)[0]), 15),
                  agent.stderr_text())
        res.check("| head -1: the agent keeps running", agent.proc.poll() is None,
                  "exit %s: %s" % (agent.proc.returncode, agent.stderr_text()))
        rc, _ = agent.stop()
        res.check("| head -1: exit 0 on SIGTERM", rc == 0, "exit %s: %s" % (rc, agent.stderr_text()))
        ivs, recs, problems = intervals(flows)
        with open(flows, "rb") as f:
            data = f.read()
        res.check("| head -1: the line head printed is in flows.log",
                  got[0].rstrip(b"\n") in data.split(b"\n"))
        res.check("| head -1: flows.log has every interval, whole lines",
                  chained(ivs) and not problems, "%s %s" % (ivs, problems[:3]))
        res.check("| head -1: closed logged once",
                  sum("standard output is closed" in l for l in agent.stderr_lines) == 1,
                  agent.stderr_text())
    finally:
        agent.kill()


def stalled_case(res, args, net, out):
    agent = agent_for(args, net, out)  # its stdout is a pipe nobody reads
    try:
        if not agent.start_ready(res, 20, "reader that never reads: agent ready"):
            return
        drop = re.compile(r"(\d+) lines not printed on standard output: its reader is too slow")
        res.check("reader that never reads: the lines it misses are counted in the log",
                  wait_for(lambda: any(drop.search(l) for l in agent.stderr_lines), 20),
                  agent.stderr_text())
        t_full = time.time()
        flows = os.path.join(out, "flows.log")
        res.check("reader that never reads: flows.log gets three more intervals",
                  wait_for(lambda: any(e >= t_full + 3 for _, e in intervals(flows)[0]), 15),
                  agent.stderr_text())
        rc, secs = agent.stop(timeout=10)
        res.check("reader that never reads: exit 0 on SIGTERM, at once",
                  rc == 0 and secs < 5, "exit %s after %.1f s: %s" % (rc, secs,
                                                                  agent.stderr_text()))
        ivs, recs, problems = intervals(flows)
        res.check("reader that never reads: flows.log has every interval, whole lines",
                  chained(ivs) and len(ivs) >= 4 and not problems,
                  "%d intervals %s %s" % (len(ivs), ivs, problems[:3]))
        dropped = sum(int(m.group(1)) for l in agent.stderr_lines for m in [drop.search(l)] if m)
        print("lines dropped for standard output: %d of %d in flows.log" % (dropped, len(recs)))
    finally:
        agent.kill()
        if agent.proc and agent.proc.stdout:
            agent.proc.stdout.close()


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__))
