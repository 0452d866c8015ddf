#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: sockets that close without a TCP state change leave nothing behind.

    python3 tests/e2e/test_socket_churn.py --agent build/procflow --bindir build/e2e   (as root)

An unprivileged user (nobody) makes, in the client namespace of netns.TestNet:
200,000 TCP sockets closed right away (socket()+close(), and bind()+close(), the port
probe), then 10,000 connect()s that fail before anything is sent (ENETUNREACH: the
namespace has no route to 198.19.255.1 or fd01::1, so nothing leaves it). None of them
changes TCP state, so none passes inet_sock_set_state's close. Then:

- the agent never says its socket map was full;
- the socks map (read with bpftool through the agent's own file descriptors) holds
  about as many entries as before the churn, not 65,536;
- a short-lived client started afterwards is named exactly (path, PID, arguments).

Why so many: 200,000 is three times the map's default bound, so entries that are
not freed fill it whatever the timing of the flushes."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpfmaps  # noqa: E402
import common  # noqa: E402
import netns  # noqa: E402
from common import Agent, workdir  # noqa: E402

N_PLAIN, N_BIND, N_CONNECT = 150000, 50000, 10000
MARGIN = 1000  # sockets other programs on the host may open meanwhile

CHURN = r"""
import errno, socket, sys
n_plain, n_bind, n_conn = map(int, sys.argv[1:4])
for i in range(n_plain):
    socket.socket(socket.AF_INET6 if i & 1 else socket.AF_INET).close()
for i in range(n_bind):
    s = socket.socket()
    s.bind(("198.18.0.2", 0))
    s.close()
unexpected = 0
for i in range(n_conn):
    s = socket.socket(socket.AF_INET6 if i & 1 else socket.AF_INET)
    try:
        s.connect(("fd01::1", 9) if i & 1 else ("198.19.255.1", 9))
        unexpected += 1
    except OSError as e:
        unexpected += e.errno != errno.ENETUNREACH
    s.close()
print(unexpected)
"""


def body(res, args):
    port = 21000 + os.getpid() % 3000
    with workdir(args, "pf-churn-") as d:
        with netns.TestNet("churn") as net:
            srv = net.spawn(net.server_ns, [os.path.join(args.bindir, "pf_server"), "tcp",
                                             net.server_v4, str(port)])
            agent = Agent(args.agent, ["run", "--output-dir", os.path.join(d, "out"),
                                       "--runtime-dir", os.path.join(d, "run"),
                                       "--flush-interval", "1", "--aggregation", "0"], owner=net)
            if not agent.start_ready(res):
                return
            socks = bpfmaps.agent_maps(agent.proc.pid).get("socks")
            if not res.check("socks map found", socks is not None, "agent's maps: %s" %
                             list(bpfmaps.agent_maps(agent.proc.pid))):
                return
            before = bpfmaps.map_entries(socks["id"])

            t0 = time.monotonic()
            p, _ = net.run_in(net.client_ns, ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                              "--clear-groups", sys.executable, "-c", CHURN,
                                              str(N_PLAIN), str(N_BIND), str(N_CONNECT)],
                              timeout=90, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
            took = time.monotonic() - t0
            res.check("churn ran as nobody, every connect failed with ENETUNREACH",
                      p.returncode == 0 and p.out.strip() == "0",
                      "rc %s, unexpected connects %r, stderr %r; %.1f s" % (
                          p.returncode, p.out.strip(), p.err.strip()[-300:], took))

            counts = []

            def settled():
                counts.append(bpfmaps.map_entries(socks["id"]))
                return counts[-1] <= before + MARGIN
            ok = common.wait_for(settled, 10, step=0.5)
            res.check("socks map back to the live sockets after %d sockets" % (
                N_PLAIN + N_BIND + N_CONNECT), ok,
                "entries %d before the churn, then %s (bound %d)" % (
                    before, counts[-5:], socks["max_entries"]))

            cli = os.path.abspath(os.path.join(args.bindir, "pf_client"))
            marker = "churn-%d" % os.getpid()
            c, _ = net.run_in(net.client_ns, [cli, "tcp", net.server_v4, str(port), "777", marker],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            res.check("client ran", c.returncode == 0, c.err)
            mine = common.wait_lines_of(os.path.join(d, "out", "flows.log"), c.pid, port)
            res.check("client after the churn named exactly", len(mine) == 1 and
                      mine[0]["process_name"] == cli and
                      mine[0]["process_args"] == ["tcp %s %d 777 %s" % (net.server_v4, port,
                                                                        marker)],
                      "pid %d: %s" % (c.pid, [common.compact(r) for r in mine] or
                                      "no src line with this PID"))
            full = [l for l in agent.stderr_lines if "socket map full" in l]
            res.check("socket map never full", not full, "; ".join(full[:3]))
            rc, _ = agent.stop()
            res.check("agent exits 0", rc == 0, "rc %s\n%s" % (rc, agent.stderr_text()))
            srv.kill()


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
