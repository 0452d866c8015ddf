#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""The agent SIGKILLed again and again while it writes big flushes, and
restarted each time on the same directory (what the OOM killer or a careless
operator does).

A UDP sender in the test's client namespace sends to 2,000 ports of the server
namespace without pause, so at aggregation 0 every 1-second flush writes about
2,000 lines (some MB). Each of 50 runs is killed the moment its first flush
starts to grow flows.log (sometimes a few milliseconds later), so the kill
falls in or just after a write. Then one last run ends with SIGTERM.

What a log shipper relies on: every line of every file (flows.log and the
rotated ones) parses as one JSON object with the spec's keys, and no line is
there twice. A partial last line a kill left is cut at the next start and the
cut logged (the deterministic case is in tests/unit/test_logfile.c).
"""
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, load_flows, run_main, wait_for  # noqa: E402
from netns import TestNet  # noqa: E402

KILLS = 50
PORTS = 2000
# The whole test must stay under 2 minutes; a run takes about 1.5 s.
BUDGET_S = 110

SENDER = ("import socket,sys,time\n"
          "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
          "base,n=int(sys.argv[2]),int(sys.argv[3])\n"
          "while True:\n"
          "    for p in range(base,base+n):\n"
          "        try: s.sendto(b'x'*64,(sys.argv[1],p))\n"
          "        except OSError: pass\n"
          "    time.sleep(0.2)\n")


def total_size(out):
    try:
        return sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out)
                   if n.startswith("flows.log"))
    except OSError:
        return 0


def body(res, args):
    d = tempfile.mkdtemp(prefix="pf-kill-")
    out = os.path.join(d, "out")
    run = os.path.join(d, "run")
    agent = None
    rng = random.Random(os.getpid())
    try:
        with TestNet() as net:
            net.spawn(net.client_ns, [sys.executable, "-c", SENDER, net.server_v4,
                                      str(20000 + os.getpid() % 20000), str(PORTS)])
            # The hook tier makes no difference to the file; the lowest one
            # loads fastest (no trial of the others), which keeps 50 starts
            # inside the time budget.
            argv = ["run", "--hook-tier", "tracepoint", "--output-dir", out, "--runtime-dir", run, "--flush-interval", "1",
                    "--aggregation", "0", "--max-file-size", "4", "--max-files", "1000"]
            t0 = time.monotonic()
            kills = repaired = 0
            for i in range(KILLS):
                if time.monotonic() - t0 > BUDGET_S:
                    break
                agent = Agent(args.agent, argv, owner=net)
                agent.start()
                ok, detail = agent.wait_ready(20)
                if not ok:
                    res.check("run %d: agent ready" % i, False, detail)
                    return
                before = total_size(out)  # after the start's repair, if any
                # Kill as soon as the first flush starts writing (poll every
                # millisecond), or a little later, so kills land in writes.
                grew = wait_for(lambda: total_size(out) > before, 10, step=0.001)
                extra = rng.choice((0, 0, 0.001, 0.002, 0.005))
                if extra:
                    time.sleep(extra)  # not a wait for anything: where the kill lands
                agent.proc.send_signal(signal.SIGKILL)
                agent.proc.wait()
                agent._done.wait(2)
                kills += 1 if grew else 0
                if args.keep:
                    print("run %d: %s, grew %s at %.2f s" % (i, detail, grew, time.monotonic() - t0))
                repaired += sum(1 for l in agent.stderr_lines if "bytes cut back" in l)
            elapsed = time.monotonic() - t0
            res.check("%d SIGKILLs during flushes within %d s" % (KILLS, BUDGET_S),
                      kills == KILLS, "%d of %d runs killed mid-write in %.0f s" % (
                          kills, KILLS, elapsed))
            # The last run: its start repairs what the last kill left; SIGTERM.
            agent = Agent(args.agent, argv, owner=net)
            agent.start()
            ok, detail = agent.wait_ready(20)
            res.check("agent starts after the kills", ok, detail)
            repaired += sum(1 for l in agent.stderr_lines if "bytes cut back" in l)
            rc, _ = agent.stop()
            res.check("last run exits 0 on SIGTERM", rc == 0, agent.stderr_text())
            print("partial last lines cut at start: %d of %d restarts; %.0f s" % (
                repaired, KILLS, elapsed))

        files = sorted(n for n in os.listdir(out) if re.fullmatch(r"flows\.log(\.\d+)?", n))
        seen, dups, problems, nlines = set(), 0, [], 0
        for n in files:
            recs, probs = load_flows(os.path.join(out, n))
            problems += ["%s: %s" % (n, p) for p in probs]
            with open(os.path.join(out, n), "rb") as f:
                for raw in f.read().split(b"\n"):
                    if not raw:
                        continue
                    nlines += 1
                    if raw in seen:
                        dups += 1
                    seen.add(raw)
        res.check("heavy flushes were written", nlines > KILLS * 100,
                  "%d lines in %d files" % (nlines, len(files)))
        res.check("every line of every file is one JSON object with the spec's keys",
                  not problems, "%d bad of %d lines: %s" % (len(problems), nlines, problems[:5]))
        res.check("no line appears twice", dups == 0, "%d duplicates of %d lines" % (dups, nlines))
    finally:
        if agent:
            agent.kill()
        if args.keep:
            print("kept", d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__))
