#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""The collector's cost per interval with many open UDP flows: system calls and time.

    python3 bench/collect_cost.py --agent LABEL=PATH [--agent LABEL=PATH ...] [--flows 20000]
        [--env LABEL=VAR=VALUE ...]    (as root; the agent's -v lines and its /metrics are read)

Set-up, in netns.TestNet's namespaces (tests/e2e/netns.py): FLOWS UDP sockets in the
client namespace, held by a few processes of 10,000 each (the descriptor limit), each
send one datagram to one port of the server namespace where nothing listens, and stay
open. That is FLOWS entries in the kernel's flows map and FLOWS in its socks map, read
by every collection and deleted by the one after the sockets close.

Per agent, with --flush-interval 2:
  - time: procflow_flush_duration_seconds (the whole flush: read, reconcile, lines) over
    6 intervals once every flow is read, median; and the collection alone where the
    agent logs it ("collection: ... in X ms", -v);
  - system calls: `strace -f -c` on the agent over 4 whole intervals, per interval;
  - the interval after the sockets close (every flow completes, every socket entry is
    deleted): its time and, under strace, its system calls.
Numbers from other programs' traffic on the host are included (they are few).
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import common  # noqa: E402
import netns  # noqa: E402

HOLD = r"""
import resource, socket, sys
n = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, n + 64))
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    socks.append(s)
print("open", flush=True)
sys.stdin.readline()
for s in socks:
    s.close()
print("closed", flush=True)
"""


def open_holders(net, port, nflows):
    holders = []
    for i in range(0, nflows, 10000):
        holders.append(net.spawn(net.client_ns, [sys.executable, "-c", HOLD, net.server_v4,
                                                 str(port + 1), str(min(10000, nflows - i))],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for h in holders:
        if h.stdout.readline().strip() != "open":
            raise RuntimeError("UDP holder did not open its sockets")
    return holders


def close_holders(holders):
    for h in holders:
        h.stdin.write("\n")
        h.stdin.flush()
    for h in holders:
        h.stdout.readline()
        h.wait(30)


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def occupancy(agent, name):
    for line in reversed(agent.stderr_lines):
        if "occupancy: " in line:
            m = re.search(r"(?:: |, )%s (\d+)" % re.escape(name), line)
            return int(m.group(1)) if m else 0
    return 0


def flushes(agent):
    return sum(1 for l in agent.stderr_lines if "procflow: flush: " in l)


def wait_flushes(agent, n, timeout=120):
    target = flushes(agent) + n
    if not common.wait_for(lambda: flushes(agent) >= target, timeout, step=0.05):
        raise RuntimeError("no %d flushes within %d s" % (n, timeout))


def strace_start(pid, out):
    p = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(pid)],
                         stderr=subprocess.DEVNULL)
    time.sleep(1)  # attaching to every thread; the window is counted in flushes anyway
    return p


def strace_stop(p, out):
    p.send_signal(signal.SIGINT)
    p.wait(30)
    total = bpf = 0
    with open(out) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 5 and cols[-1] == "total":
                total = int(cols[3])
            elif len(cols) >= 5 and cols[-1] == "bpf":
                bpf = int(cols[3])
    return total, bpf


def flush_ms(agent, port, n, timeout=120):
    """The durations of the next @n flushes, from /metrics (set at each flush's end)."""
    out = []
    for _ in range(n):
        wait_flushes(agent, 1, timeout)
        k = flushes(agent)
        common.wait_for(lambda: (metric(port, "procflow_flushes_total") or 0) >= k, 10, step=0.02)
        out.append(metric(port, "procflow_flush_duration_seconds") * 1000)
    return out


def collection_ms(agent, since):
    out = []
    for l in agent.stderr_lines[since:]:
        m = re.search(r"collection: .* in ([0-9.]+) ms", l)
        if m:
            out.append(float(m.group(1)))
    return out


def run(label, path, env, nflows):
    d = tempfile.mkdtemp(prefix="pf-ccost-")
    port = 19000 + os.getpid() % 1000
    agent = None
    old_env = dict(os.environ)
    os.environ.update(env)
    try:
        with netns.TestNet("ccost") as net:
            agent = common.Agent(path, ["run", "--output-dir", os.path.join(d, "out"),
                                        "--flush-interval", "2", "-v",
                                        "--metrics-listen", "127.0.0.1:%d" % port], owner=net)
            agent.start()
            ok, why = agent.wait_ready(60)
            if not ok:
                raise RuntimeError(why)
            holders = open_holders(net, port, nflows)
            if not common.wait_for(lambda: occupancy(agent, "flows") >= nflows, 60, step=0.2):
                raise RuntimeError("flows never read: %s" % occupancy(agent, "flows"))
            wait_flushes(agent, 1)

            since = len(agent.stderr_lines)
            durs = flush_ms(agent, port, 6)
            coll = collection_ms(agent, since)

            out = os.path.join(d, "strace.txt")
            st = strace_start(agent.proc.pid, out)
            wait_flushes(agent, 1)
            n0 = flushes(agent)
            wait_flushes(agent, 4, timeout=300)
            total, bpf = strace_stop(st, out)
            n = flushes(agent) - n0

            # The interval after the close: every flow completes, every socket entry
            # is deleted. Timed once, then again under strace for its system calls.
            wait_flushes(agent, 1)
            since = len(agent.stderr_lines)
            close_holders(holders)
            close = flush_ms(agent, port, 2)
            close_coll = collection_ms(agent, since)
            holders = open_holders(net, port, nflows)
            if not common.wait_for(lambda: occupancy(agent, "flows") >= nflows, 60, step=0.2):
                raise RuntimeError("flows never read again")
            st = strace_start(agent.proc.pid, out)
            wait_flushes(agent, 1)
            n0 = flushes(agent)
            close_holders(holders)
            wait_flushes(agent, 2, timeout=300)
            ctotal, cbpf = strace_stop(st, out)
            print("%-10s %d flows | flush median %.1f ms | collection median %s ms | "
                  "per interval: %.0f system calls, %.0f bpf | close: flush %.1f ms, "
                  "collection %s ms, %d system calls, %d bpf in %d intervals" % (
                      label, nflows, statistics.median(durs),
                      "%.1f" % statistics.median(coll) if coll else "-",
                      total / max(n, 1), bpf / max(n, 1), max(close),
                      "%.1f" % max(close_coll) if close_coll else "-",
                      ctotal, cbpf, flushes(agent) - n0), flush=True)
            agent.stop()
    finally:
        os.environ.clear()
        os.environ.update(old_env)
        if agent:
            agent.kill()
        subprocess.run(["rm", "-rf", d])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", action="append", required=True, help="LABEL=PATH")
    ap.add_argument("--env", action="append", default=[], help="LABEL=VAR=VALUE")
    ap.add_argument("--flows", type=int, default=20000)
    a = ap.parse_args()
    envs = {}
    for e in a.env:
        label, kv = e.split("=", 1)
        k, v = kv.split("=", 1)
        envs.setdefault(label, {})[k] = v
    for spec in a.agent:
        label, path = spec.split("=", 1)
        run(label, path, envs.get(label, {}), a.flows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
