#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: TCP counted from the kernel's per-socket counters (tcpCounting socket,
the default) gives the same bytes and packets as counting every packet (tcpCounting
packet), flow by flow, on the same traffic.

    python3 tests/e2e/test_tcp_counters.py --agent build/procflow --bindir build/e2e

Two agents run at once, one per mode, each with its own runtime and output
directory, so both see exactly the same packets. The traffic runs between two
network namespaces of this test (netns.TestNet: 198.18.0.1/2, fd00::1/2):

- short connections over IPv4 and IPv6, started from either namespace, carrying
  payload both ways, some closed by the client first and some by the server;
- a long connection that sends for several one-second intervals, so that its
  counters are read live (the socket-storage iterator) before its close;
- a connection opened before the agents start, idle while they start, then used:
  both modes count it from their start (socket mode: a baseline taken when the
  agent's start-up scan adopts it);
- a bulk transfer of 24 MiB with retransmissions. This kernel has no sch_netem, so
  the loss is made by dropping 2 % of the connection's packets in the receiving
  namespace's INPUT hook (iptables statistic match): after the sender counted them,
  before the receiving socket sees them, as loss on the wire is;
- a connection whose first SYN-ACK is dropped at the client, so that the client sends
  its SYN again while the server's handshake is pending.

Each flow's lines are summed per (reporter, 5-tuple) in each agent's flows.log.
Packets must be equal. Bytes must be equal on the connections without loss, and on
the lossy one differ only by what README ("How TCP is counted") says the socket
counters cannot see: SACK blocks on ACKs sent during loss and duplicate payload
received, so the socket count is at most the packet count, and below it by no more
than those SACK blocks and the payload the peer sent again (its retransmissions, each
at most an MSS).
One more thing it cannot see: a SYN the client sends again reaches only the
listener's request socket, so the server's line counts it in packet mode only; on the
two connections that may have one, the server's packets in may fall short by such
SYNs, each with exactly the SYN's bytes.
The socket agent's counts are also checked against the payload sent, so that a
socket mode that counted nothing, or twice, fails whatever the packet mode says."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Agent  # noqa: E402
from netns import TestNet  # noqa: E402

# The traffic: "serve" answers each connection; "connect" runs one. A connection
# starts with a 9-byte header: payload the client sends (u32), payload the server
# answers (u32), and who closes first (0 the client, 1 the server).
GEN = r"""
import socket, struct, sys, threading, time

def recv_n(c, n):
    got = 0
    while got < n:
        b = c.recv(min(65536, n - got))
        if not b:
            raise SystemExit("short read: %d of %d" % (got, n))
        got += len(b)

def serve(fam, addr, port):
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(64)
    print("ready", flush=True)
    def one(c):
        with c:
            hdr = b""
            while len(hdr) < 9:
                b = c.recv(9 - len(hdr))
                if not b:
                    return
                hdr += b
            n, m, server_first = struct.unpack("!IIB", hdr)
            recv_n(c, n)
            c.sendall(b"r" * m)
            if server_first:
                return  # close now; the client sees EOF
            while c.recv(65536):
                pass
    while True:
        c, _ = s.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()

def connect(fam, addr, port, n, m, server_first, chunks, pause, wait_stdin):
    c = socket.socket(fam)
    c.connect((addr, port))
    print("port %d" % c.getsockname()[1], flush=True)
    if wait_stdin:
        sys.stdin.readline()
    c.sendall(struct.pack("!IIB", n, m, server_first))
    part = n // chunks
    for i in range(chunks):
        c.sendall(b"q" * (part if i < chunks - 1 else n - part * (chunks - 1)))
        if i < chunks - 1:
            time.sleep(pause)  # traffic shape, not synchronisation
    recv_n(c, m)
    if server_first:
        while c.recv(65536):
            pass
    c.close()
    print("done", flush=True)

fam = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
if sys.argv[1] == "serve":
    serve(fam, sys.argv[2], int(sys.argv[3]))
else:
    a = sys.argv[2:]
    connect(fam, a[0], int(a[1]), int(a[2]), int(a[3]), int(a[4]), int(a[5]), float(a[6]),
            a[7] == "1")
"""

BULK = 24 << 20
# What the socket counters may miss in the lossy bulk transfer (README): the
# SACK blocks of an ACK (at most 28 bytes beside timestamps, in 40 bytes of
# options), and payload received twice, which only the peer's retransmissions
# carry: at most one MSS each (IPv4 on the test's veth, with timestamps). On a
# loaded machine spurious retransmissions make that 3 % of the bytes and more.
SACK_MAX = 28
MSS_V4 = 1448
# SYNs a client sends again while the server's handshake is pending: one or two
# (a second after the first, then two more), and each is an IPv4 SYN with
# Linux's options (MSS, SACK-permitted, timestamps, window scale): 20 + 40 bytes,
# of which the client's own count has 8 fewer (README, "How TCP is counted").
SYN_DUP_MAX = 2
SYN_V4 = 60
SYN_SHORT = 8


def gen(net, ns, args, **kw):
    return net.spawn(ns, [sys.executable, "-c", GEN] + [str(a) for a in args],
                     stdout=subprocess.PIPE, text=True, **kw)


def line_of(p, prefix, what):
    line = p.stdout.readline().strip()
    if not line.startswith(prefix):
        raise RuntimeError("%s: expected %r, got %r (exit %s)" % (what, prefix, line, p.poll()))
    return line


def sums(d, ports, pids):
    """(reporter, src ip, src port, dst ip, dst port) -> summed counters, over the
    lines of this test's TCP flows (our server ports, our processes), in every
    file of output directory @d: the agents log every other job's flows on the
    host too, and the file may have been rotated."""
    recs, problems = [], []
    for name in sorted(os.listdir(d)):
        if name.startswith("flows.log"):
            r, p = common.load_flows(os.path.join(d, name))
            recs += r
            problems += p
    out = {}
    for r in recs:
        if r["proto"] != "tcp" or r["dest_port"] not in ports:
            continue
        if str(r["process_id"]) not in pids:
            continue
        k = (r["reporter"], r["source_ip"], r["source_port"], r["dest_ip"], r["dest_port"])
        s = out.setdefault(k, {"bytes_in": 0, "bytes_out": 0, "packets_in": 0,
                               "packets_out": 0, "started": 0, "completed": 0,
                               "retrans": 0})
        for f in ("bytes_in", "bytes_out", "packets_in", "packets_out"):
            s[f] += r[f]
        s["started"] += r["num_flows_started"]
        s["completed"] += r["num_flows_completed"]
        s["retrans"] += r["tcp_total_retransmissions"]
    return out, problems


def body(res, args):
    d = tempfile.mkdtemp(prefix="pf-tcpcount-", dir=os.environ.get("TMPDIR"))
    agents = []
    try:
        with TestNet() as net:
            run_traffic(res, args, net, d, agents)
    finally:
        for a in agents:
            a.stop()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


def run_traffic(res, args, net, d, agents):
    # Below the ephemeral range (32768..): for the connection older than the
    # agents, whose side neither agent saw start, the lower port is the server.
    base = 10000 + (os.getpid() % 4000) * 5
    p_v4, p_v6, p_rev, p_bulk, p_syn = base, base + 1, base + 2, base + 3, base + 4
    ports = {p_v4, p_v6, p_rev, p_bulk, p_syn}
    srv_v4, srv_v6, cli_v4 = net.server_v4, net.server_v6, net.client_v4

    # Servers first: in the server namespace, and one in the client namespace
    # for connections the other way.
    servers = [gen(net, net.server_ns, ["serve", srv_v4, p_v4]),
               gen(net, net.server_ns, ["serve", srv_v6, p_v6]),
               gen(net, net.client_ns, ["serve", cli_v4, p_rev]),
               gen(net, net.server_ns, ["serve", srv_v4, p_bulk]),
               gen(net, net.server_ns, ["serve", srv_v4, p_syn])]
    for s in servers:
        line_of(s, "ready", "server")
    pids = {str(s.pid) for s in servers}

    # Opened before the agents, used after they start.
    old = gen(net, net.client_ns, ["connect", srv_v4, p_v4, 5000, 7000, 0, 1, 0, 1],
              stdin=subprocess.PIPE)
    old_port = int(line_of(old, "port", "older connection").split()[1])
    pids.add(str(old.pid))

    outs = {}
    for mode in ("socket", "packet"):
        outs[mode] = os.path.join(d, mode)
        # A larger flows map than the default: the agents see every other job's
        # traffic on the host too (a benchmark holding 100,000 connections fills
        # 65,536 entries), and a closed connection's final counters need one.
        a = Agent(args.agent, ["run", "--output-dir", outs[mode], "--flush-interval", "1",
                               "--aggregation", "0", "--tcp-counting", mode,
                               "--max-flows", "262144"], owner=net)
        agents.append(a)
        a.start()
    for mode, a in zip(("socket", "packet"), agents):
        ok, why = a.wait_ready(60)
        if not res.check("%s agent ready" % mode, ok, why):
            return
        res.check("%s agent says how it counts TCP" % mode,
                  any("TCP counting: " + mode in l for l in a.stderr_lines),
                  a.stderr_text())

    # Loss for the bulk connection only: 2 % of its packets dropped on arrival in
    # either namespace (data at the server, ACKs at the client).
    for ns, match in ((net.server_ns, "--dport"), (net.client_ns, "--sport")):
        r = subprocess.run(["ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-p", "tcp",
                            match, str(p_bulk), "-m", "statistic", "--mode", "random",
                            "--probability", "0.02", "-j", "DROP"],
                           capture_output=True, text=True)
        if not res.check("packet loss set up in %s" % ns, r.returncode == 0, r.stderr.strip()):
            return
    # The first SYN-ACK of the p_syn connection dropped at the client (every other
    # one from the first): its SYN goes out again after a second.
    r = subprocess.run(["ip", "netns", "exec", net.client_ns, "iptables", "-A", "INPUT", "-p",
                        "tcp", "--sport", str(p_syn), "--tcp-flags", "SYN,ACK", "SYN,ACK",
                        "-m", "statistic", "--mode", "nth", "--every", "2", "--packet", "0",
                        "-j", "DROP"], capture_output=True, text=True)
    if not res.check("SYN-ACK loss set up", r.returncode == 0, r.stderr.strip()):
        return

    # (family, namespace of the client, server address, port, out, back,
    # server closes first, chunks, pause): what each connection carries.
    cases = [
        ("v4 short", net.client_ns, srv_v4, p_v4, 1000, 3000, 0, 1, 0),
        ("v4 short, server closes", net.client_ns, srv_v4, p_v4, 20000, 100, 1, 1, 0),
        ("v6 short", net.client_ns, srv_v6, p_v6, 1500, 64000, 0, 1, 0),
        ("v6 short, server closes", net.client_ns, srv_v6, p_v6, 10, 10, 1, 1, 0),
        ("v4 short, other way", net.server_ns, cli_v4, p_rev, 70000, 2000, 0, 1, 0),
        ("v4 long (4 s)", net.client_ns, srv_v4, p_v4, 400000, 1000, 0, 8, 0.5),
        ("v4 bulk with loss", net.client_ns, srv_v4, p_bulk, BULK, 100, 0, 1, 0),
        ("v4, first SYN-ACK lost", net.client_ns, srv_v4, p_syn, 3000, 3000, 0, 1, 0),
    ]
    clients = []
    for name, ns, addr, port, n, m, sfirst, chunks, pause in cases:
        p = gen(net, ns, ["connect", addr, port, n, m, sfirst, chunks, pause, 0])
        lport = int(line_of(p, "port", name).split()[1])
        cli_ip = net.client_v4 if addr == srv_v4 else (
            net.client_v6 if addr == srv_v6 else net.server_v4)
        clients.append((name, p, (cli_ip, lport, addr, port), n, m))
        pids.add(str(p.pid))
    old.stdin.write("\n")
    old.stdin.flush()
    # wait(), then read(): communicate() with a timeout reads the pipe itself and
    # would miss what readline() above already buffered. The output is a line.
    for name, p, key, n, m in clients:
        p.wait(timeout=120)
        out = p.stdout.read()
        res.check("%s: client finished" % name, p.returncode == 0 and "done" in out,
                  "exit %s: %r" % (p.returncode, out))
    old.wait(timeout=60)
    out = old.stdout.read()
    res.check("older connection: client finished", old.returncode == 0 and "done" in out,
              "exit %s: %r" % (old.returncode, out))

    clients.append(("v4 older than the agents", old, (net.client_v4, old_port, srv_v4, p_v4),
                    5000, 7000))
    expect = {name: key for name, p, key, n, m in clients}

    def flows(mode):
        return sums(outs[mode], ports, pids)

    def complete():
        for mode in outs:
            got, _ = flows(mode)
            for key in expect.values():
                for rep in ("src", "dst"):
                    if got.get((rep,) + key, {}).get("completed", 0) < 1:
                        return False
        return True

    res.check("every connection completed in both logs", common.wait_for(complete, 60),
              "waited 60 s; agents' losses: %s" % [
                  l for a in agents for l in a.stderr_lines if "not counted" in l or
                  "without their final" in l][:4])
    sock, prob_s = flows("socket")
    pkt, prob_p = flows("packet")
    res.check("socket log parses", not prob_s, "; ".join(prob_s[:3]))
    res.check("packet log parses", not prob_p, "; ".join(prob_p[:3]))

    payload = {name: (n, m) for name, p, key, n, m in clients}
    for name, key in expect.items():
        # SYNs the client sent again, seen by the server in packet mode only (the
        # listener's request socket counts nothing); on the client's line each is
        # counted with the established header size, SYN_SHORT bytes short.
        sd, qd = sock.get(("dst",) + key), pkt.get(("dst",) + key)
        resent = qd["packets_in"] - sd["packets_in"] if sd and qd and key[3] in (
            p_bulk, p_syn) else 0
        for rep in ("src", "dst"):
            k = (rep,) + key
            s, q = sock.get(k), pkt.get(k)
            what = "%s, %s line" % (name, rep)
            if not res.check("%s: in both logs" % what, s and q, "socket %s packet %s" % (s, q)):
                continue
            # One connection is one flow: a handshake the packet mode counted on
            # the listener belongs to the accepted connection's line.
            res.check("%s: started once and completed once in both logs" % what,
                      all((x["started"], x["completed"]) == (1, 1) for x in (s, q)),
                      "socket %d/%d, packet %d/%d" % (s["started"], s["completed"],
                                                      q["started"], q["completed"]))
            dup = resent if rep == "dst" else 0
            res.check("%s: packets equal%s" % (what, " but resent SYNs" if dup else ""),
                      0 <= resent <= SYN_DUP_MAX and
                      (s["packets_in"] + dup, s["packets_out"]) ==
                      (q["packets_in"], q["packets_out"]),
                      "socket in/out %d/%d, packet %d/%d" % (
                          s["packets_in"], s["packets_out"], q["packets_in"], q["packets_out"]))
            # Payload this side sent and received: the socket count must cover it
            # plus at least 40 header bytes per packet, and no more than 100 (and
            # the retransmitted payload, at most a tenth, on the lossy one).
            n, m = payload[name]
            sent, got = (n + 9, m) if rep == "src" else (m, n + 9)
            for d_, pay, pk in (("out", sent, s["packets_out"]), ("in", got, s["packets_in"])):
                b = s["bytes_" + d_]
                hi = pay + 100 * pk + (pay // 10 if "loss" in name else 0)
                res.check("%s: socket bytes_%s fit the payload" % (what, d_),
                          pay + 40 * pk <= b <= hi,
                          "%d bytes in %d packets for %d payload bytes" % (b, pk, pay))
            if "loss" in name and rep == "src":
                res.check("%s: the sender retransmitted" % what, s["retrans"] > 0,
                          "tcp_total_retransmissions %d" % s["retrans"])
            if "loss" in name:
                peer = sock.get(("dst" if rep == "src" else "src",) + key) or {"retrans": 0}
                for d_ in ("in", "out"):
                    bs, bq = s["bytes_" + d_], q["bytes_" + d_]
                    dup_max = peer["retrans"] * MSS_V4 if d_ == "in" else 0
                    lo = bq - SACK_MAX * s["packets_" + d_] - dup_max
                    res.check("%s: bytes_%s at most SACK blocks and duplicates below the "
                              "packet count" % (what, d_), lo <= bs <= bq,
                              "socket %d, packet %d (%+d), lowest allowed %d" % (
                                  bs, bq, bs - bq, lo))
            else:
                res.check("%s: bytes equal" % what,
                          (s["bytes_in"] + dup * SYN_V4,
                           s["bytes_out"] + (resent * SYN_SHORT if rep == "src" else 0)) ==
                          (q["bytes_in"], q["bytes_out"]),
                          "socket in/out %d/%d, packet %d/%d (%+d/%+d)" % (
                              s["bytes_in"], s["bytes_out"], q["bytes_in"], q["bytes_out"],
                              s["bytes_in"] - q["bytes_in"], s["bytes_out"] - q["bytes_out"]))


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
