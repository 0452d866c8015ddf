#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: a TCP connection still connecting when the agent starts is counted.

    python3 tests/e2e/test_scan_connecting.py --agent build/procflow --bindir build/e2e   (as root)

The state tracepoint gives a connection its counters' entry at CLOSE->SYN_SENT; for a
connection whose connect() came before the agent, that transition is gone, and only the
agent's start-up socket scan can adopt it. Set-up, on loopback (the agent's config logs
loopback, and --aggregation 0 keeps each connection's source port):

1. a listener with a backlog of 0 and one connection waiting in its accept queue: the
   kernel drops a second connection's SYN while the queue is full, so that connection
   stays in SYN_SENT, sending its SYN again after 1 s, 3 s, 7 s...;
2. the agent starts while that connection is in SYN_SENT (checked before and after);
3. the first connection is accepted, which makes room; the second establishes at its
   next SYN, sends 1,000 bytes, reads them back and closes.

The flow log must have the second connection's line from the client's side (its source
port), naming this test's PID, with at least the 1,000 bytes sent."""

import os
import select
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, load_flows, run_main, wait_for, workdir, write_atomic  # noqa: E402

TCP_SYN_SENT = 2
PAYLOAD = 1000


def state(s):
    """The socket's TCP state (struct tcp_info's first byte)."""
    return struct.unpack("B", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0]


def recv_all(s, n):
    got = b""
    while len(got) < n:
        b = s.recv(n - len(got))
        if not b:
            break
        got += b
    return got


def body(res, args):
    with workdir(args, "pf-scanconn-") as d:
        scenario(res, args, d)


def scenario(res, args, d):
    check = res.check
    conf = os.path.join(d, "procflow.yaml")
    write_atomic(conf, "flowLogsIncludeLoopback: true\n")
    log = os.path.join(d, "out", "flows.log")
    socks = []
    lst = socket.socket()
    socks.append(lst)
    try:
        lst.bind(("127.0.0.1", 0))
        lst.listen(0)
        addr = lst.getsockname()
        first = socket.create_connection(addr, timeout=10)
        socks.append(first)
        conn = socket.socket()
        socks.append(conn)
        conn.setblocking(False)
        conn.connect_ex(addr)
        if not check("second connection in SYN_SENT before the agent", state(conn) == TCP_SYN_SENT,
                     "state %d" % state(conn)):
            return
        agent = Agent(args.agent, ["run", "--config", conf, "--output-dir", os.path.join(d, "out"),
                                   "--runtime-dir", os.path.join(d, "run"),
                                   "--flush-interval", "1", "--aggregation", "0"])
        if not agent.start_ready(res):
            return
        if not check("still in SYN_SENT once the agent is ready", state(conn) == TCP_SYN_SENT,
                     "state %d" % state(conn)):
            return
        socks.append(lst.accept()[0])
        _, w, _ = select.select([], [conn], [], 20)
        err = conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if not check("second connection established", bool(w) and err == 0, "SO_ERROR %d" % err):
            return
        conn.setblocking(True)
        conn.settimeout(10)
        lst.settimeout(10)
        peer = lst.accept()[0]
        socks.append(peer)
        sport = conn.getsockname()[1]
        conn.sendall(b"x" * PAYLOAD)
        peer.sendall(recv_all(peer, PAYLOAD))
        check("echo read back", len(recv_all(conn, PAYLOAD)) == PAYLOAD)
        conn.close()
        peer.close()

        def src_lines():
            if not os.path.exists(log):
                return []
            recs, _ = load_flows(log)
            return [r for r in recs if r["reporter"] == "src" and r["source_port"] == sport]

        wait_for(lambda: src_lines(), 15, step=0.2)
        lines = src_lines()
        if check("a src line for the connection (source port %d)" % sport, bool(lines),
                 agent.stderr_text()):
            check("it names this test's PID %d" % os.getpid(),
                  all(r["process_id"] == str(os.getpid()) for r in lines),
                  "; ".join("%s %s" % (r["process_id"], r["process_name"]) for r in lines))
            out = sum(int(r["bytes_out"]) for r in lines)
            check("it counts the %d bytes sent" % PAYLOAD, out >= PAYLOAD, "bytes_out %d" % out)
        check("agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__.splitlines()[0]))
