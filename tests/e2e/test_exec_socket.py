#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: a socket kept across exec is named after the program using it.

    python3 tests/e2e/test_exec_socket.py --agent build/procflow --bindir build/e2e   (as root)

`pf_odd udpexec NEXT ...` (client namespace of netns.TestNet) makes one UDP exchange
with a pf_server, waits until the agent has written that flow (named pf_odd, args
"udpexec ..."), then execs NEXT (a copy of pf_odd under another name) with the
socket left open; NEXT makes a second exchange on the inherited socket. The same
PID, the same socket, the same flow: the line of the interval after the exec must
name NEXT, with its own arguments. Aggregation 0 and a 1 s interval, so each
interval's traffic is its own line."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import netns  # noqa: E402
from common import Agent  # noqa: E402


def body(res, args):
    d = tempfile.mkdtemp(prefix="pf-execsock-")
    port = 24000 + os.getpid() % 3000
    agent = None
    try:
        odd = os.path.abspath(os.path.join(args.bindir, "pf_odd"))
        nxt = os.path.join(d, "pf_odd_next")
        shutil.copy(odd, nxt)
        with netns.TestNet("execsock") as net:
            net.spawn(net.server_ns, [os.path.join(args.bindir, "pf_server"), "udp",
                                      net.server_v4, str(port)])
            agent = Agent(args.agent, ["run", "--output-dir", os.path.join(d, "out"),
                                       "--runtime-dir", os.path.join(d, "run"),
                                       "--flush-interval", "1", "--aggregation", "0"], owner=net)
            agent.start()
            ok, why = agent.wait_ready(60)
            if not res.check("agent ready", ok, why):
                return
            flows = os.path.join(d, "out", "flows.log")
            tag = "execsock-%d" % os.getpid()
            p = None
            for _ in range(50):  # pf_server may need a moment to bind
                p = net.spawn(net.client_ns, [odd, "udpexec", nxt, net.server_v4, str(port), tag],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
                if p.stdout.readline().strip() == "pf_odd: sent":
                    break
                p.wait()
                common.time.sleep(0.1)
            if not res.check("first exchange", p.poll() is None, "pf_odd exited %s" % p.poll()):
                return
            mine = []

            def lines_of_pid():
                recs, _ = common.load_flows(flows) if os.path.exists(flows) else ([], [])
                mine[:] = [r for r in recs if r["reporter"] == "src" and r["proto"] == "udp"
                           and r["dest_port"] == port and r["process_id"] == str(p.pid)]
                return mine
            ok = common.wait_for(lambda: lines_of_pid(), 10, step=0.2)
            res.check("flow before the exec names pf_odd", ok and mine[0]["process_name"] == odd
                      and mine[0]["process_args"] == ["udpexec %s %s %d %s" % (
                          nxt, net.server_v4, port, tag)],
                      "; ".join(common.compact(r) for r in mine) or "no line")
            before = len(mine)
            p.stdin.write("go\n")
            p.stdin.flush()
            res.check("second exchange, after the exec", p.stdout.readline().strip() == "pf_odd: sent"
                      and p.wait(10) == 0, "pf_odd exited %s" % p.poll())
            ok = common.wait_for(lambda: len(lines_of_pid()) > before, 10, step=0.2)
            after = mine[before:]
            want_args = ["udpfd 3 %s %d after" % (net.server_v4, port)]
            res.check("flow after the exec names the new program", ok and all(
                r["process_name"] == nxt and r["process_args"] == want_args for r in after),
                "want %s %s; got %s" % (nxt, want_args, "; ".join(common.compact(r) for r in after)
                                        or "no line"))
            rc, _ = agent.stop()
            res.check("agent exits 0", rc == 0, "rc %s" % rc)
    finally:
        if agent:
            agent.kill()
        if args.keep:
            print("kept %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
