#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""flowLogsSchema selects the keys of every line, and changes live.

Calico Enterprise's ingestion up to 3.21.1 refuses a line with a key it does
not know (and with it the whole batch): the four transit_* keys. With
flowLogsSchema: calico-3.20 a real client's lines carry exactly the contract's
keys without those four, in the contract's order; after a reload to current,
the next client's lines carry all of them. The expected lists come from the
contract's key list (common.SPEC_KEYS), not from the agent.

Traffic goes to a server in a network namespace of the test's own (198.19/16),
so the agent runs without loopback and nothing else on the machine lands in
its output."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SPEC_KEYS, Agent, run_main, wait_for, workdir, write_atomic  # noqa: E402
from traffic import NetnsServer, client  # noqa: E402

OLD_KEYS = [k for k in SPEC_KEYS if not k.startswith("transit_")]


def key_lists(path):
    """(keys in order, record) of every line of @path; a line that is not a
    JSON object raises."""
    out = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return out
    for raw in data.splitlines():
        pairs = json.loads(raw, object_pairs_hook=lambda p: p)
        out.append(([k for k, _ in pairs], dict(pairs)))
    return out


def lines_of(path, pid, port):
    return [(k, r) for k, r in key_lists(path)
            if r.get("process_id") == str(pid) and r.get("reporter") == "src"
            and r.get("dest_port") == port]


def wait_lines(path, pid, port, timeout=20):
    got = []

    def found():
        got[:] = lines_of(path, pid, port)
        return bool(got)
    wait_for(found, timeout, step=0.2)
    return got


def body(res, args):
    with workdir(args, "pf-schema-") as d, NetnsServer() as server:
        scenario(res, args, d, server)


def scenario(res, args, d, server):
    check = res.check
    conf = os.path.join(d, "procflow.yaml")
    out = os.path.join(d, "out")
    flows = os.path.join(out, "flows.log")

    def write_conf(schema):
        write_atomic(conf, f"flowLogsSchema: {schema}\n"
                     "flowLogsFileAggregationKindForAllowed: 0\n")

    def run_client(tag):
        p = client(server.port, tag, ip=server.ip)
        p.wait(timeout=10)
        return p.pid

    write_conf("calico-3.20")
    agent = Agent(args.agent, ["run", "--config", conf, "--output-dir", out, "--flush-interval",
                               "1", "--runtime-dir", os.path.join(d, "run")])
    if not agent.start_ready(res):
        return

    old_pid = run_client("old")
    old = wait_lines(flows, old_pid, server.port)
    check("calico-3.20: the client's line is written", len(old) >= 1, agent.stderr_text())
    bad = [k for k, _ in old if k != OLD_KEYS]
    check("calico-3.20: exactly the contract's keys without transit_*, in order",
          old and not bad, repr(bad[:1]))
    check("calico-3.20: 55 keys", old and len(old[0][0]) == 55,
          repr(len(old[0][0]) if old else None))

    write_conf("current")
    n = agent.nlines()
    agent.proc.send_signal(signal.SIGHUP)
    check("reload to current applied",
          agent.wait_line("flowLogsSchema=current", after=n) is not None, agent.stderr_text())
    new_pid = run_client("new")
    new = wait_lines(flows, new_pid, server.port)
    check("current: the client's line is written", len(new) >= 1, agent.stderr_text())
    bad = [k for k, _ in new if k != SPEC_KEYS]
    check("current: every key of the contract, in order", new and not bad, repr(bad[:1]))
    check("agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())
    every = key_lists(flows)
    odd = [k for k, _ in every if k not in (OLD_KEYS, SPEC_KEYS)]
    check("every line has one of the two key sets", every and not odd, repr(odd[:1]))


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__.splitlines()[0]))
