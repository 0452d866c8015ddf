#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: a socket kept across exec is named after the program using it.

    python3 tests/e2e/test_exec_socket.py --agent build/procflow --bindir build/e2e   (as root)

`pf_odd udpexec|tcpexec NEXT ...` (client namespace of netns.TestNet) sends on a UDP
socket or a TCP connection to a server in the server namespace, waits until the agent
has written that flow (named pf_odd, args "udpexec ..."), then execs NEXT (a copy of
pf_odd under another name) with the socket left open; NEXT sends again on it. The
same PID, the same socket, the same flow: the line of the interval after the exec
must name NEXT, with its own arguments. UDP is claimed again at its next send; TCP in
the tracepoint tier has no per-message hook, so the agent names the program the
owner runs when the traffic was read. `pf_odd udpfork` uses one UDP socket in
turn in a process, its forked child and the process again: each line names the one
that sent. Aggregation 0 and a 1 s interval, so each
interval's traffic is its own line."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import netns  # noqa: E402
from common import Agent, workdir  # noqa: E402
from traffic import DRAIN_SERVER  # noqa: E402


def one_case(res, net, d, odd, nxt, proto, port):
    flows = os.path.join(d, "out", "flows.log")
    tag = "execsock-%s-%d" % (proto, os.getpid())
    p = None
    for _ in range(50):  # the server may need a moment to bind
        p = net.spawn(net.client_ns, [odd, proto + "exec", nxt, net.server_v4, str(port), tag],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True)
        if p.stdout.readline().strip() == "pf_odd: sent":
            break
        p.wait()
        time.sleep(0.1)
    if not res.check("%s: first exchange" % proto, p.poll() is None, "pf_odd exited %s" % p.poll()):
        return
    mine = []

    def lines_of_pid():
        recs, _ = common.load_flows(flows) if os.path.exists(flows) else ([], [])
        mine[:] = [r for r in recs if r["reporter"] == "src" and r["proto"] == proto
                   and r["dest_port"] == port and r["process_id"] == str(p.pid)
                   and (r["bytes_out"] or r["bytes_in"])]
        return mine
    ok = common.wait_for(lambda: lines_of_pid(), 10, step=0.2)
    res.check("%s: flow before the exec names pf_odd" % proto,
              ok and mine[0]["process_name"] == odd and mine[0]["process_args"] == [
                  "%sexec %s %s %d %s" % (proto, nxt, net.server_v4, port, tag)],
              "; ".join(common.compact(r) for r in mine) or "no line")
    before = len(mine)
    p.stdin.write("go\n")
    p.stdin.flush()
    res.check("%s: second exchange, after the exec" % proto,
              p.stdout.readline().strip() == "pf_odd: sent" and p.wait(10) == 0,
              "pf_odd exited %s" % p.poll())
    ok = common.wait_for(lambda: len(lines_of_pid()) > before, 10, step=0.2)
    after = mine[before:]
    want_args = ["%sfd 3 %s %d after" % (proto, net.server_v4, port)]
    res.check("%s: flow after the exec names the new program" % proto, ok and all(
        r["process_name"] == nxt and r["process_args"] == want_args for r in after),
        "want %s %s; got %s" % (nxt, want_args,
                                "; ".join(common.compact(r) for r in after) or "no line"))


def fork_case(res, net, d, odd, port):
    """One UDP socket used by a process, then its child, then the process again:
    each interval's line names the one that sent (the claim hooks see the owner
    change both ways, past the owner they keep with the socket)."""
    flows = os.path.join(d, "out", "flows.log")
    tag = "forksock-%d" % os.getpid()
    p = net.spawn(net.client_ns, [odd, "udpfork", net.server_v4, str(port), tag],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True)
    if not res.check("fork: first exchange", p.stdout.readline().strip() == "pf_odd: sent",
                     "pf_odd exited %s" % p.poll()):
        return
    recs = []

    def lines_of(pid):
        if os.path.exists(flows):
            recs[:] = common.load_flows(flows)[0]
        return [r for r in recs if r["reporter"] == "src" and r["proto"] == "udp"
                and r["dest_port"] == port and r["process_id"] == str(pid)
                and (r["bytes_out"] or r["bytes_in"])]

    want_args = ["udpfork %s %d %s" % (net.server_v4, port, tag)]
    ok = common.wait_for(lambda: lines_of(p.pid), 10, step=0.2)
    res.check("fork: the parent's exchange names the parent", ok and all(
        r["process_name"] == odd and r["process_args"] == want_args for r in lines_of(p.pid)),
        "; ".join(common.compact(r) for r in recs) or "no line")
    p.stdin.write("go\n")
    p.stdin.flush()
    words = p.stdout.readline().split()
    if words == ["pf_odd:", "sent"]:  # the child's exchange, then its PID
        words = p.stdout.readline().split()
    if not res.check("fork: the child's exchange", len(words) == 3 and words[0] == "child",
                     "got %s" % words):
        p.kill()
        p.wait()
        return
    child = int(words[1])
    ok = common.wait_for(lambda: lines_of(child), 10, step=0.2)
    res.check("fork: the child's exchange names the child", ok and all(
        r["process_name"] == odd and r["process_args"] == want_args for r in lines_of(child)),
        "; ".join(common.compact(r) for r in recs) or "no line")
    parent_before, child_before = len(lines_of(p.pid)), len(lines_of(child))
    p.stdin.write("go\n")
    p.stdin.flush()
    res.check("fork: the parent's second exchange",
              p.stdout.readline().strip() == "pf_odd: sent" and p.wait(10) == 0,
              "pf_odd exited %s" % p.poll())
    ok = common.wait_for(lambda: len(lines_of(p.pid)) > parent_before, 10, step=0.2)
    res.check("fork: the parent's exchange after the child's names the parent again",
              ok and len(lines_of(child)) == child_before,
              "; ".join(common.compact(r) for r in recs) or "no line")


def body(res, args):
    port = 24000 + os.getpid() % 3000
    with workdir(args, "pf-execsock-") as d:
        odd = os.path.abspath(os.path.join(args.bindir, "pf_odd"))
        nxt = os.path.join(d, "pf_odd_next")
        shutil.copy(odd, nxt)
        with netns.TestNet("execsock") as net:
            net.spawn(net.server_ns, [os.path.join(args.bindir, "pf_server"), "udp",
                                      net.server_v4, str(port)])
            # TCP: a connection kept open across the agent's flush (pf_server
            # gives a connection 2 s at most).
            srv = net.spawn(net.server_ns, [sys.executable, "-c", DRAIN_SERVER, net.server_v4,
                                            str(port + 1)], stdout=subprocess.PIPE, text=True)
            if not res.check("TCP server up", srv.stdout.readline().strip() == "up"):
                return
            agent = Agent(args.agent, ["run", "--output-dir", os.path.join(d, "out"),
                                       "--runtime-dir", os.path.join(d, "run"),
                                       "--flush-interval", "1", "--aggregation", "0"], owner=net)
            if not agent.start_ready(res):
                return
            one_case(res, net, d, odd, nxt, "udp", port)
            fork_case(res, net, d, odd, port)
            one_case(res, net, d, odd, nxt, "tcp", port + 1)
            rc, _ = agent.stop()
            res.check("agent exits 0", rc == 0, "rc %s" % rc)


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
