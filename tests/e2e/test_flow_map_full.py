#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: TCP connections that close while the flows map is full leave no
state behind in the collector, and the loss is said.

    python3 tests/e2e/test_flow_map_full.py --agent build/procflow --bindir build/e2e   (as root)

A live TCP connection counts in its socket's storage; at its close the kernel copies
its final counters into the flows map, where the collector completes the flow and
forgets it. With the map full the copy fails, so the collector never reads the flow
again: it must still forget it, within a couple of intervals, and count the loss.

Set-up, in netns.TestNet's namespaces: the agent with --max-flows 1024 (the
smallest) and -v (its "occupancy:" line every interval); one UDP socket in the
client namespace sends datagrams to 1,200 ports of the server namespace, again
every 0.2 s, so its flows fill the map and keep it full; 1,000 TCP connections between the
namespaces (2,000 flows: both ends are on this host) are opened, read by one flush,
then closed while the map is full; then the UDP socket is closed. The collector's
table ("collector flows" in the occupancy line) must come back to what other programs on
the host can hold (the flows map and a few live connections), well below the 2,000
flows a leak leaves."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import netns  # noqa: E402
from common import Agent, occupancy, workdir  # noqa: E402
from traffic import DRAIN_SERVER  # noqa: E402

N_UDP_PEERS, N_TCP, MAX_FLOWS = 1200, 1000, 1024
# Other programs on the host (their flows are in the same maps) may hold up to the
# whole flows map and a few live TCP connections; a leak leaves 2 * N_TCP.
LEFT_OVER = MAX_FLOWS + 300

UDP_FILL = r"""
import select, socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
first = True
while True:
    # Again and again: an entry another program's flow frees is taken back at once.
    for p in range(int(sys.argv[2]), int(sys.argv[2]) + int(sys.argv[3])):
        u.sendto(b"x" * 32, (sys.argv[1], p))
    if first:
        print("sent", flush=True)
        first = False
    if select.select([sys.stdin], [], [], 0.2)[0]:
        break
"""

TCP_CONNS = r"""
import resource, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
cs = [socket.create_connection((sys.argv[1], int(sys.argv[2]))) for _ in range(int(sys.argv[3]))]
for c in cs:
    c.sendall(b"y" * 100)
print("open", flush=True)
sys.stdin.readline()
for c in cs:
    c.close()
print("closed", flush=True)
"""


def body(res, args):
    port = 22000 + os.getpid() % 3000
    with workdir(args, "pf-full-") as d:
        with netns.TestNet("full") as net:
            srv = net.spawn(net.server_ns, [sys.executable, "-c", DRAIN_SERVER, net.server_v4,
                                            str(port)],
                            stdout=subprocess.PIPE, text=True)
            if not res.check("server up", srv.stdout.readline().strip() == "up"):
                return
            agent = Agent(args.agent, ["run", "--output-dir", os.path.join(d, "out"),
                                       "--runtime-dir", os.path.join(d, "run"),
                                       "--flush-interval", "1", "--max-flows", str(MAX_FLOWS), "-v"],
                          owner=net)
            if not agent.start_ready(res):
                return
            fill = net.spawn(net.client_ns, [sys.executable, "-c", UDP_FILL, net.server_v4,
                                             str(port + 1), str(N_UDP_PEERS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            res.check("UDP datagrams sent", fill.stdout.readline().strip() == "sent")
            ok = common.wait_for(lambda: occupancy(agent).get("flows", 0) >= MAX_FLOWS - 32, 10)
            res.check("flows map full", ok, "last occupancy: %s" % occupancy(agent))

            conns = net.spawn(net.client_ns, [sys.executable, "-c", TCP_CONNS, net.server_v4,
                                              str(port), str(N_TCP)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            res.check("TCP connections open", conns.stdout.readline().strip() == "open")
            ok = common.wait_for(lambda: occupancy(agent).get("collector flows", 0) >= 2 * N_TCP,
                                 20)
            res.check("collector follows the live connections", ok,
                      "last occupancy: %s" % occupancy(agent))
            conns.stdin.write("\n")
            conns.stdin.flush()
            res.check("TCP connections closed", conns.stdout.readline().strip() == "closed")
            fill.stdin.write("\n")
            fill.stdin.flush()
            fill.wait(10)

            seen = []

            def drained():
                seen.append(occupancy(agent).get("collector flows", -1))
                return 0 <= seen[-1] <= LEFT_OVER
            ok = common.wait_for(drained, 8, step=0.5)
            res.check("collector state back to what the flows map and live connections hold", ok,
                      "collector flows over the last polls: %s" % seen[-8:])
            # The UDP socket's flows complete at its close, so the table can be
            # back under the bound before the connections' state expires (two
            # collections after their last read): wait for the loss to be said.
            def said():
                return [int(l.split()[1]) for l in agent.stderr_lines
                        if "flows ended without their final counters" in l]
            common.wait_for(lambda: sum(said()) >= N_TCP, 8, step=0.5)
            res.check("loss counted and logged", sum(said()) >= N_TCP,
                      "flows said lost: %s" % said())
            # PF_MAP_BATCH=0 (the key-by-key registration of this test) forces the
            # collector's fallback; otherwise every collection reads in batches.
            want = "key by key" if os.environ.get("PF_MAP_BATCH") == "0" else "batch"
            modes = set(re.findall(r"collection: .* \((batch|key by key)\)$",
                                   "\n".join(agent.stderr_lines), re.M))
            res.check("maps read %s" % want, modes == {want}, "collections read: %s" % modes)
            rc, _ = agent.stop()
            res.check("agent exits 0", rc == 0, "rc %s" % rc)


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
