#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""The agent SIGKILLed again and again while it writes big flushes, and
restarted each time on the same directory (what the OOM killer or a careless
operator does).

A UDP sender in the test's client namespace sends to 2,000 ports of the server
namespace without pause, so at aggregation 0 every 1-second flush writes about
2,000 lines (some MB). Each of 50 runs (two agents side by side, on
directories of their own, 25 runs each) is killed the moment its first flush
starts to change flows.log (sometimes a few milliseconds later), so the kill
falls in or just after a write. Then one last run of each ends with SIGTERM.

What a log shipper relies on: every line of every file (flows.log and the
rotated ones) parses as one JSON object with the spec's keys, and no line is
there twice. A partial last line a kill left is cut at the next start and the
cut logged (the deterministic case is in tests/unit/test_logfile.c).
"""
import os
import random
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, load_flows, run_main, wait_for, workdir  # noqa: E402
from netns import TestNet  # noqa: E402
from traffic import UDP_SENDER  # noqa: E402

KILLS = 50
PORTS = 2000
# The whole test must stay under 2 minutes; a run takes about 1.5 s.
BUDGET_S = 110


def log_state(out):
    """flows.log's inode and size: either changes once a flush writes (or rotates)."""
    try:
        st = os.stat(os.path.join(out, "flows.log"))
        return (st.st_ino, st.st_size)
    except OSError:
        return None


def kill_loop(args, net, out, n, seed, stats):
    """@n runs on @out, each SIGKILLed as its first flush writes; then one
    ended by SIGTERM. Adds to @stats: kills mid-write, partial lines cut,
    and problems (strings)."""
    run = out + ".run"
    rng = random.Random(seed)
    # The hook tier makes no difference to the file; the lowest one loads
    # fastest (no trial of the others), which keeps the starts inside the
    # time budget.
    argv = ["run", "--hook-tier", "tracepoint", "--output-dir", out, "--runtime-dir", run,
            "--flush-interval", "1", "--aggregation", "0", "--max-file-size", "4",
            "--max-files", "1000"]
    t0 = time.monotonic()
    for i in range(n):
        if time.monotonic() - t0 > BUDGET_S:
            stats["problems"].append("%s: time budget spent after %d runs" % (out, i))
            return
        agent = Agent(args.agent, argv, owner=net)
        agent.start()
        ok, detail = agent.wait_ready(20)
        if not ok:
            agent.kill()
            stats["problems"].append("%s run %d: %s" % (out, i, detail))
            return
        before = log_state(out)  # after the start's repair, if any
        # Kill as soon as the first flush starts writing (poll every
        # millisecond), or a little later, so kills land in writes.
        grew = wait_for(lambda: log_state(out) != before, 10, step=0.001)
        extra = rng.choice((0, 0, 0.001, 0.002, 0.005))
        if extra:
            time.sleep(extra)  # not a wait for anything: where the kill lands
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait()
        agent._done.wait(2)
        stats["kills"] += 1 if grew else 0
        stats["repaired"] += sum(1 for l in agent.stderr_lines if "bytes cut back" in l)
    # The last run: its start repairs what the last kill left; SIGTERM.
    agent = Agent(args.agent, argv, owner=net)
    agent.start()
    ok, detail = agent.wait_ready(20)
    stats["repaired"] += sum(1 for l in agent.stderr_lines if "bytes cut back" in l)
    rc, _ = agent.stop()
    if not ok or rc != 0:
        stats["problems"].append("%s last run: ready %s, exit %s: %s" % (
            out, ok, rc, agent.stderr_text()))


def body(res, args):
    with workdir(args, "pf-kill-") as d:
        scenario(res, args, d)


def scenario(res, args, d):
    # Two agents side by side, each on its own directories, 25 kills each:
    # most of a run is waiting (the hooks loading, the 1-second timer), so
    # two overlap well and keep the test under 2 minutes on a busy host.
    outs = [os.path.join(d, "out%d" % k) for k in range(2)]
    stats = {"kills": 0, "repaired": 0, "problems": []}
    with TestNet() as net:
        net.spawn(net.client_ns, [sys.executable, "-c", UDP_SENDER, net.server_v4,
                                  str(20000 + os.getpid() % 20000), str(PORTS)])
        t0 = time.monotonic()
        ts = [threading.Thread(target=kill_loop,
                               args=(args, net, o, KILLS // 2, os.getpid() + k, stats))
              for k, o in enumerate(outs)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.monotonic() - t0
        res.check("%d SIGKILLs during flushes, restarts, and a SIGTERM" % KILLS,
                  stats["kills"] == KILLS and not stats["problems"],
                  "%d of %d runs killed mid-write in %.0f s; %s" % (
                      stats["kills"], KILLS, elapsed, stats["problems"]))
        print("partial last lines cut at start: %d of %d restarts; %.0f s" % (
            stats["repaired"], KILLS, elapsed))
    for out in outs:
        check_files(res, out)


def check_files(res, out):
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
    res.check(os.path.basename(out) + ": heavy flushes were written", nlines > KILLS // 2 * 100,
              "%d lines in %d files" % (nlines, len(files)))
    res.check(os.path.basename(out) + ": every line of every file is one JSON object with the spec's keys",
              not problems, "%d bad of %d lines: %s" % (len(problems), nlines, problems[:5]))
    res.check(os.path.basename(out) + ": no line appears twice", dups == 0, "%d duplicates of %d lines" % (dups, nlines))


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__))
