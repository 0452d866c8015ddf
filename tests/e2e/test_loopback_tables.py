#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Loopback traffic left out of the log takes no room in the kernel's tables.

With flowLogsIncludeLoopback off (the default), a TCP connection to a loopback
peer is never logged, so it must not take entries in the socks table (bounded
by maxSockets: a node busy with local proxies or a pod's sidecars would fill it
and lose the owners of the flows that are logged). The agent runs with -v, whose
"occupancy:" line per flush counts the table's entries.

N loopback connections held open with loopback off: the socks table grows by
less than N/4 (other programs on the host make sockets too; the old code made
two entries per connection). Then a reload turns loopback on and N more
connections are held: the table grows by at least 2N (their sockets, both
ends), and the "tcp" row counts their 2N live ends, which shows that the
figures count what this test makes.

Connections older than the agent are met by its socket scan (at start-up, and
at any flush that finds a flow without an owner), not by the hooks: N of them
held while an agent with loopback on starts are adopted (2N socks entries, 2N
live ends); while one with loopback off starts, closing them frees under N/4
entries (the old scan made an owner entry for each end all the same)."""
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, occupancy, run_main, workdir, write_atomic  # noqa: E402

N = 300


def hold(listener, n):
    """@n connections to @listener, both ends open: the sockets."""
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(listener.getsockname(), timeout=10))
            socks.append(listener.accept()[0])
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def body(res, args):
    with workdir(args, "pf-lo-tables-") as d:
        older(res, args, d)
        scenario(res, args, d)


def start(res, args, d, conf, name):
    """An agent on @conf with one flush a second and -v (its occupancy lines)."""
    agent = Agent(args.agent, ["run", "--config", conf, "--output-dir", os.path.join(d, name),
                               "--runtime-dir", os.path.join(d, name + "-run"),
                               "--flush-interval", "1", "-v"])
    return agent if agent.start_ready(res, name=name + " ready") else None


def settled(agent):
    """The table entries counted by a flush that started after this call:
    the second occupancy line from now (the first may come from a flush
    whose walk began before)."""
    n = agent.nlines()
    if agent.wait_line("occupancy: ", after=n) is None:
        return None
    if agent.wait_line("occupancy: ", after=agent.nlines()) is None:
        return None
    return occupancy(agent)


def older(res, args, d):
    """N loopback connections made before the agent, seen by its start-up scan."""
    check = res.check
    conf_on = os.path.join(d, "on.yaml")
    conf_off = os.path.join(d, "off.yaml")
    write_atomic(conf_on, "flowLogsIncludeLoopback: true\n")
    write_atomic(conf_off, "flowLogsIncludeLoopback: false\n")
    held = []
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(N)
        held += hold(listener, N)
        # Loopback on: the scan adopts every end (the control: it ran, and
        # the figures count these connections).
        agent = start(res, args, d, conf_on, "older-on")
        if agent is None:
            return
        on = settled(agent)
        if not check("older connections, loopback on: occupancy logged", on is not None,
                     agent.stderr_text()):
            return
        check("older connections, loopback on: at least %d socks entries" % (2 * N),
              on["socks"] >= 2 * N, "socks %d" % on["socks"])
        check("older connections, loopback on: the tcp table counts their %d live ends" % (2 * N),
              on["tcp"] >= 2 * N, "tcp %d" % on["tcp"])
        check("older-on agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())
        # Loopback off: the scan leaves them alone.
        agent = start(res, args, d, conf_off, "older-off")
        if agent is None:
            return
        held_n = settled(agent)
        for s in held:
            s.close()
        held = []
        gone = settled(agent)
        if not check("older connections, loopback off: occupancy logged",
                     held_n is not None and gone is not None, agent.stderr_text()):
            return
        freed = held_n["socks"] - gone["socks"]
        check("older connections, loopback off: closing %d took under %d socks entries away"
              % (N, N // 4), freed < N // 4,
              "socks %d held -> %d closed" % (held_n["socks"], gone["socks"]))
        check("older-off agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())
    finally:
        for s in held:
            s.close()
        listener.close()


def scenario(res, args, d):
    conf = os.path.join(d, "procflow.yaml")
    check = res.check

    def write_conf(on):
        write_atomic(conf, f"flowLogsIncludeLoopback: {'true' if on else 'false'}\n")

    write_conf(False)
    agent = Agent(args.agent, ["run", "--config", conf, "--output-dir", os.path.join(d, "out"),
                               "--runtime-dir", os.path.join(d, "run"), "--flush-interval", "1",
                               "-v"])
    if not agent.start_ready(res):
        return
    held = []
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(2 * N)
        before = settled(agent)
        if not check("occupancy logged", before is not None, agent.stderr_text()):
            return
        held += hold(listener, N)
        off = settled(agent)
        if not check("occupancy logged with loopback off", off is not None, agent.stderr_text()):
            return
        grew = off["socks"] - before["socks"]
        check("loopback off: %d connections took under %d socks entries" % (N, N // 4),
              grew < N // 4, "socks %d -> %d" % (before["socks"], off["socks"]))

        write_conf(True)
        n = agent.nlines()
        agent.proc.send_signal(signal.SIGHUP)
        check("reload to on applied",
              agent.wait_line("flowLogsIncludeLoopback=true", after=n) is not None,
              agent.stderr_text())
        held += hold(listener, N)
        on = settled(agent)
        if not check("occupancy logged with loopback on", on is not None, agent.stderr_text()):
            return
        check("loopback on: %d connections took at least %d socks entries" % (N, 2 * N),
              on["socks"] - off["socks"] >= 2 * N, "socks %d -> %d" % (off["socks"], on["socks"]))
        check("loopback on: the tcp table counts their %d live ends" % (2 * N),
              on["tcp"] - off["tcp"] >= 2 * N, "tcp %d -> %d" % (off["tcp"], on["tcp"]))
    finally:
        for s in held:
            s.close()
        listener.close()
    check("agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__.splitlines()[0]))
