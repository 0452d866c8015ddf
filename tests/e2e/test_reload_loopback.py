#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""flowLogsIncludeLoopback changes live: a reload writes the flag into the
loaded BPF object's global data, so packets from then on follow it.

Loopback off (config file, no flag): a client's loopback flow is not logged;
reload on: the next client's is; reload off: the one after is not."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, read_lines, run_main, workdir, write_atomic  # noqa: E402
from traffic import Server, client  # noqa: E402


def body(res, args):
    with workdir(args, "pf-reload-lo-") as d, Server() as server:
        scenario(res, args, d, server)


def scenario(res, args, d, server):
    conf = os.path.join(d, "procflow.yaml")
    out = os.path.join(d, "out")
    pids = {}

    def write_conf(on):
        write_atomic(conf, f"flowLogsIncludeLoopback: {'true' if on else 'false'}\n"
                     "flowLogsFileAggregationKindForAllowed: 0\n")

    def reload(on):
        write_conf(on)
        n = agent.nlines()
        agent.proc.send_signal(signal.SIGHUP)
        return agent.wait_line(f"flowLogsIncludeLoopback={'true' if on else 'false'}", after=n)

    def run_client(tag):
        p = client(server.port, tag)
        p.wait(timeout=10)
        pids[tag] = p.pid

    check = res.check
    write_conf(False)
    agent = Agent(args.agent, ["run", "--config", conf, "--output-dir", out, "--flush-interval",
                               "1", "--runtime-dir", os.path.join(d, "run")])
    if not agent.start_ready(res):
        return
    # A reload writes the interval so far before it applies the new
    # settings, so no wait is needed between a client and a reload.
    run_client("off-1")
    check("reload to on applied", reload(True) is not None, agent.stderr_text())
    run_client("on")
    check("reload to off applied", reload(False) is not None, agent.stderr_text())
    run_client("off-2")
    check("agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())
    lines = read_lines(os.path.join(out, "flows.log"))
    seen = {l["process_id"] for l in lines if l["reporter"] == "src"
            and l["dest_port"] == server.port}
    check("loopback off: not logged", str(pids["off-1"]) not in seen, repr(seen))
    check("loopback on after a reload: logged", str(pids["on"]) in seen, repr(seen))
    check("loopback off again: not logged", str(pids["off-2"]) not in seen, repr(seen))


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__.splitlines()[0]))
