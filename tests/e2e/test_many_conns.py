#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: 18,000 live TCP connections, every one reported while open, with
its own bytes.

    python3 tests/e2e/test_many_conns.py --agent build/procflow --bindir build/e2e   (as root)

A live TCP connection's counters are read once per interval by the socket-storage
iterator, whose records reach the agent through the sk_reads array: 16,384 per
read() of the iterator, the rest in further reads (PF_SK_READS_MAX). 18,000
connections with both ends on this host are 36,000 sockets, so every collection
takes three reads and hands the array over twice in the middle of the walk.

Set-up, in netns.TestNet's namespaces: a server that holds every connection and
reads what comes; one client process that opens 18,000 connections and sends
1 + (i mod 200) bytes on the i-th, then holds them until the agent's collector
follows all 36,000 flows, then closes them. Checks, per connection, from both
reporters: the client's (or server's) PID, lines written while it was open
(num_flows_completed 0) whose counters differ between connections only by the
payload (bytes_out - payload on the client's, bytes_in - payload on the server's,
the same for all 18,000, and so are the packet counts), one start (the close of
all 18,000 at once frees socket storage while the iterator walks it: a
connection the walk skips must not be forgotten and counted again as a new
flow), and one completion. The kernel may run none of the agent's programs for
some of the clients' closes in the burst (a softirq's close while the state
tracepoint runs on that CPU for a process's own close(): saved at the socket's
destruction by another program; and, under load, closes seen by no program at
all): a connection whose final counters never came is completed all the same
once it has gone unseen for PF_UNSEEN_OPEN_EXPIRY reads, with a completion that
carries no counters, and the agent says how many ("flows ended without their
final counters"): there may be no more such completions than it said."""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import netns  # noqa: E402
from common import Agent, workdir  # noqa: E402

# 36,000 sockets: more than twice PF_SK_READS_MAX, and under the 20,000 open
# files a process may have here (one process holds every connection's end).
N = 18000
SPEC_SAMPLE = 2000
# Flows the collector follows beside this test's (the host's other traffic).
OTHER_FLOWS_MAX = 20

# Prints "up" once it listens, and "all closed" once it has closed as many
# connections as argv[3].
SERVER = r"""
import resource, selectors, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
s = socket.socket(); s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4096)
s.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(s, selectors.EVENT_READ)
print("up", flush=True)
closed = 0
while True:
    for key, _ in sel.select():
        if key.fileobj is s:
            try:
                c, _ = s.accept()
            except BlockingIOError:
                continue
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
        elif not key.fileobj.recv(65536):
            sel.unregister(key.fileobj)
            key.fileobj.close()
            closed += 1
            if closed == int(sys.argv[3]):
                print("all closed", flush=True)
"""

# Prints one "PORT SIZE" line per connection, then "open"; closes all at a line
# on stdin, then prints "closed".
CLIENT = r"""
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
cs = []
for i in range(int(sys.argv[3])):
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    size = 1 + i % 200
    c.sendall(b"x" * size)
    cs.append(c)
    print(c.getsockname()[1], size)
print("open", flush=True)
sys.stdin.readline()
for c in cs:
    c.close()
print("closed", flush=True)
"""


def open_sockets(ns):
    """The TCP sockets of namespace @ns that have not closed yet (any state but
    LISTEN, TIME-WAIT)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-tanH"], capture_output=True,
                         text=True).stdout
    return [l for l in out.splitlines() if l.split()[0] not in ("LISTEN", "TIME-WAIT")]


def collector_flows(agent):
    """"collector flows" of the agent's last occupancy line, 0 before one."""
    for line in reversed(agent.stderr_lines):
        m = re.search(r"occupancy: .*collector flows (\d+)", line)
        if m:
            return int(m.group(1))
    return 0


def per_flow(outdir, want, before):
    """{(reporter, pid): {source port: [live lines, completed, bytes_in, bytes_out,
    packets_in, packets_out, started, completions without counters]}} over every file
    of @outdir, for the TCP lines whose
    (reporter, process_id, dest_port) are in @want. Counters are summed over the
    lines of intervals that ended by @before (epoch seconds), before the close
    began: a line read while the peer's FIN was in would hold part of it.
    Also returns the spec problems of the first SPEC_SAMPLE lines (the whole
    spec check of ~200,000 lines would take most of the test's time; the
    format is every other test's subject)."""
    out = {w[:2]: {} for w in want}
    problems = []
    for name in sorted(os.listdir(outdir)):
        if not name.startswith("flows.log"):
            continue
        path = os.path.join(outdir, name)
        if not problems:
            with open(path, "rb") as f:
                head = b"".join(line for _, line in zip(range(SPEC_SAMPLE), f))
            sample = os.path.join(outdir, "sample.json")
            with open(sample, "wb") as f:
                f.write(head)
            problems += common.load_flows(sample)[1]
            os.unlink(sample)
        with open(path, "rb") as f:
            for raw in f:
                r = json.loads(raw)
                key = (r["reporter"], r["process_id"], r["dest_port"])
                if key not in want or r["proto"] != "tcp":
                    continue
                s = out[key[:2]].setdefault(r["source_port"], [0, 0, 0, 0, 0, 0, 0, 0])
                s[1] += r["num_flows_completed"]
                s[6] += r["num_flows_started"]
                if r["num_flows_completed"] and not any(
                        r[f_] for f_ in ("bytes_in", "bytes_out", "packets_in", "packets_out")):
                    s[7] += 1
                if r["num_flows_completed"] or r["end_time"] > before:
                    continue
                s[0] += 1
                for i, f_ in enumerate(("bytes_in", "bytes_out", "packets_in", "packets_out"), 2):
                    s[i] += r[f_]
    return out, problems


def said_lost(log):
    """What the agent said it lost in the kernel, by kind: flows that ended
    without their final counters (completed with none), closes saved at their
    socket's destruction (not a loss), hook runs skipped."""
    n = {"ended without": 0, "saved": 0, "skipped": 0}
    for line in log:
        for kind, pat in (("ended without", r"procflow: (\d+) flows ended without their final"),
                          ("saved", r"procflow: (\d+) TCP closes the state hook missed"),
                          ("skipped", r"procflow: (\d+) hook runs skipped")):
            m = re.match(pat, line)
            if m:
                n[kind] += int(m.group(1))
    return n


def check_side(res, name, flows, sizes, payload_field, log=()):
    """Every connection in @flows, each reported live, with counters that differ
    from the others' by its payload only, completed once, or its close among
    what the agent said it lost."""
    res.check("%s: every connection has lines" % name, set(flows) == set(sizes),
              "%d of %d ports; e.g. missing %s" % (
                  len(set(flows) & set(sizes)), len(sizes), sorted(set(sizes) - set(flows))[:5]))
    live = [p for p in sizes if flows.get(p, [0])[0] == 0]
    res.check("%s: every connection reported while open" % name, not live,
              "%d without a live line, e.g. %s" % (len(live), live[:5]))
    twice = [p for p in sizes if flows.get(p, [0, 0])[1] > 1]
    res.check("%s: no connection completed twice" % name, not twice,
              "%d, e.g. %s" % (len(twice), [(p, flows.get(p)) for p in twice[:3]]))
    never = [p for p in sizes if flows.get(p, [0, 0])[1] == 0]
    said = said_lost(log)
    res.check("%s: every connection completed" % name, not never,
              "%d never completed; e.g. %s; the agent said %s; its last collections: %s" % (
                  len(never), [(p, flows.get(p)) for p in never[:3]], said,
                  [l for l in log if "flush:" in l or "lost" in l or "skipped" in l][-6:]))
    # A close whose final counters never came completes with none, and is said.
    bare = [p for p in sizes if flows.get(p, [0] * 8)[7]]
    res.check("%s: completions without final counters, no more than said" % name,
              len(bare) <= said["ended without"],
              "%d completed without counters, %d said; e.g. %s" % (
                  len(bare), said["ended without"], bare[:3]))
    if bare or said["saved"] or said["skipped"]:
        print("%s: %d completed without final counters; the agent said %s" % (
            name, len(bare), said), flush=True)
    started = [p for p in sizes if flows.get(p, [0] * 7)[6] != 1]
    res.check("%s: every connection started once" % name, not started,
              "%d not, e.g. %s" % (len(started), [(p, flows.get(p)) for p in started[:3]]))
    overhead = {}
    for p, s in flows.items():
        if p in sizes:
            key = (s[payload_field] - sizes[p], s[4], s[5])
            overhead.setdefault(key, []).append(p)
    res.check("%s: bytes minus payload and packets the same on every connection" % name,
              len(overhead) == 1,
              "(bytes - payload, packets_in, packets_out) -> connections: %s" % {
                  k: (len(v), v[:3]) for k, v in overhead.items()})


def body(res, args):
    port = 23000 + os.getpid() % 3000
    with workdir(args, "pf-many-") as d, netns.TestNet("many") as net:
        srv = net.spawn(net.server_ns, [sys.executable, "-c", SERVER, net.server_v4, str(port),
                                         str(N)],
                        stdout=subprocess.PIPE, text=True)
        if not res.check("server up", srv.stdout.readline().strip() == "up"):
            return
        outdir = os.path.join(d, "out")
        agent = Agent(args.agent, ["run", "--output-dir", outdir, "--flush-interval", "2",
                                   "--aggregation", "0", "--max-file-size", "1024", "-v"],
                      owner=net)
        if not agent.start_ready(res):
            return
        # The host's other flows, as the collector follows them before ours.
        n_occ = sum("occupancy: " in l for l in agent.stderr_lines)
        common.wait_for(lambda: sum("occupancy: " in l for l in agent.stderr_lines) > n_occ, 20)
        others = collector_flows(agent)
        cli = net.spawn(net.client_ns, [sys.executable, "-c", CLIENT, net.server_v4, str(port),
                                         str(N)],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        sizes = {}
        for line in cli.stdout:
            if line.strip() == "open":
                break
            p, size = line.split()
            sizes[int(p)] = int(size)
        if not res.check("%d connections open" % N, len(sizes) == N, "%d open" % len(sizes)):
            return
        ok = common.wait_for(lambda: collector_flows(agent) >= 2 * N, 60, step=0.5)
        res.check("collector follows all %d flows" % (2 * N), ok,
                  "collector flows %d" % collector_flows(agent))
        # Two more collections: the last connections' delayed ACKs (40 ms) are
        # in the counters of every connection's lines of intervals that ended
        # at least one interval before the close.
        n_occ = sum("occupancy: " in l for l in agent.stderr_lines)
        common.wait_for(lambda: sum("occupancy: " in l for l in agent.stderr_lines) > n_occ + 1,
                        20)
        t_close = int(time.time())
        cli.stdin.write("\n")
        cli.stdin.flush()
        res.check("connections closed", cli.stdout.readline().strip() == "closed")
        # Both ends closed: the server has closed every connection and the
        # client's sockets have all left the states before CLOSE (only
        # TIME-WAIT is left, whose full socket has gone through CLOSE), then
        # two more collections: every final copy is in the flows map and read.
        res.check("the server closed every connection", srv.stdout.readline().strip() == "all closed")
        ok = common.wait_for(lambda: not open_sockets(net.client_ns), 30, step=0.5)
        res.check("the client's sockets all closed", ok,
                  "still open: %d" % len(open_sockets(net.client_ns)))
        n_occ = sum("occupancy: " in l for l in agent.stderr_lines)
        common.wait_for(lambda: sum("occupancy: " in l for l in agent.stderr_lines) > n_occ + 1, 20)
        # Every flow of ours completed: by its final counters, or (those the
        # kernel never saved) unseen for PF_UNSEEN_OPEN_EXPIRY reads (16 s).
        ok = common.wait_for(lambda: collector_flows(agent) <= others + OTHER_FLOWS_MAX, 60,
                             step=0.5)
        res.check("collector completes the closed flows", ok,
                  "collector flows %d (%d before the test's)" % (collector_flows(agent), others))
        rc, _ = agent.stop()
        res.check("agent exits 0", rc == 0, "rc %s" % rc)

        flows, problems = per_flow(outdir, {("src", str(cli.pid), port),
                                            ("dst", str(srv.pid), port)}, t_close - 3)
        res.check("lines follow the spec (the first %d)" % SPEC_SAMPLE, not problems,
                  "; ".join(problems[:3]))
        check_side(res, "client (src)", flows[("src", str(cli.pid))], sizes, 3, agent.stderr_lines)
        check_side(res, "server (dst)", flows[("dst", str(srv.pid))], sizes, 2, agent.stderr_lines)


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
