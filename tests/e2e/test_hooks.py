#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: the agent attaches no sockops program where the state tracepoint can
make accepted sockets' cookies itself (kernel 5.12 and later), and accepted
connections are still named after the process that accepted them.

    python3 tests/e2e/test_hooks.py --agent build/procflow   (as root)

A sockops program on the root cgroup runs about nine times per TCP connection on
the host, for every connection, whatever the agent needs of it; its only job was to
generate the cookie of accepted sockets, which inet_sock_set_state now does at the
child socket's birth. The agent's own programs are found through its file
descriptors (/proc/PID/fdinfo, prog_id) and typed with bpftool, so other agents on
the host do not count. Then one loopback TCP connection: its dst line must name the
accepting process's PID and path, and count the 3,000 payload bytes it received
(the server keeps the socket open: a live accepted connection, read from its socket
storage)."""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Agent  # noqa: E402

SERVER = r"""
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
n = 0
while n < 3000:
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
c.sendall(b"ok")
sys.stdin.readline()
"""

CLIENT = r"""
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"z" * 3000)
c.recv(2)
c.close()
"""


def agent_prog_types(pid):
    """The types of the BPF programs process @pid holds, by bpftool."""
    ids = set()
    fd_dir = "/proc/%d/fdinfo" % pid
    for name in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, name)) as f:
                m = re.search(r"^prog_id:\s*(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    types = {}
    for i in ids:
        out = subprocess.run(["bpftool", "prog", "show", "id", str(i), "-j"],
                             capture_output=True, text=True)
        if out.returncode == 0:
            p = json.loads(out.stdout)
            types[p.get("name", "?")] = p.get("type", "?")
    return types


def kernel_at_least(major, minor):
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (major, minor)


def body(res, args):
    d = tempfile.mkdtemp(prefix="pf-hooks-", dir=os.environ.get("TMPDIR"))
    procs = []
    agent = None
    try:
        out = os.path.join(d, "out")
        agent = Agent(args.agent, ["run", "--output-dir", out, "--flush-interval", "1",
                                   "--include-loopback", "--aggregation", "0"])
        agent.start()
        ok, why = agent.wait_ready(60)
        if not res.check("agent ready", ok, why):
            return
        types = agent_prog_types(agent.proc.pid)
        res.check("the agent's programs are listed", "pf_tcp_state" in types, str(types))
        sockops = sorted(n for n, t in types.items() if t == "sock_ops")
        if kernel_at_least(5, 12):
            res.check("no sockops program on kernel %s" % platform.release(), not sockops,
                      "attached: %s" % sockops)
        else:
            res.check("sockops program before 5.12", bool(sockops), str(types))

        srv = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        procs.append(srv)
        port = int(srv.stdout.readline())
        cli = subprocess.run([sys.executable, "-c", CLIENT, str(port)], timeout=30)
        res.check("client ran", cli.returncode == 0)

        def dst_lines():
            recs, _ = common.load_flows(os.path.join(out, "flows.log"))
            return [r for r in recs if r.get("reporter") == "dst" and
                    r.get("dest_port") == port and r.get("proto") == "tcp"]

        # One line per interval that carried bytes: wait for all 3,000 to be logged.
        common.wait_for(lambda: sum(r.get("bytes_in", 0) for r in dst_lines()) >= 3000, 30)
        lines = dst_lines()
        if not res.check("dst lines of the accepted connection", bool(lines)):
            return
        res.check("dst lines name the accepting process",
                  all(str(r.get("process_id")) == str(srv.pid) for r in lines),
                  "process_id %s, server pid %d" % ([r.get("process_id") for r in lines],
                                                    srv.pid))
        res.check("dst lines name the server's program",
                  all(r.get("process_name") in (sys.executable, os.path.realpath(sys.executable))
                      for r in lines), "process_name %s" % [r.get("process_name") for r in lines])
        res.check("dst lines count the payload received",
                  sum(r.get("bytes_in", 0) for r in lines) >= 3000,
                  "bytes_in %s" % [r.get("bytes_in") for r in lines])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if agent is not None:
            agent.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
