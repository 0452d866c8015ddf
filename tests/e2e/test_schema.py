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
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SPEC_KEYS  # noqa: E402
from pfagent import Agent, NetnsServer, client  # noqa: E402

OLD_KEYS = [k for k in SPEC_KEYS if not k.startswith("transit_")]

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = lines_of(path, pid, port)
        if got:
            return got
        time.sleep(0.2)
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--bindir")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pf-schema-")
    conf = os.path.join(d, "procflow.yaml")
    out = os.path.join(d, "out")
    flows = os.path.join(out, "flows.log")
    agent = server = None

    def write_conf(schema):
        with open(conf + ".tmp", "w") as f:
            f.write(f"flowLogsSchema: {schema}\n"
                    "flowLogsFileAggregationKindForAllowed: 0\n")
        os.rename(conf + ".tmp", conf)

    def run_client(tag):
        p = client(server.port, tag, ip=server.ip)
        p.wait(timeout=10)
        return p.pid

    try:
        write_conf("calico-3.20")
        server = NetnsServer()
        agent = Agent(a.agent, ["--config", conf, "--output-dir", out, "--flush-interval", "1",
                                "--runtime-dir", os.path.join(d, "run")])
        check("agent ready", agent.wait_for("ready") is not None, agent.text())

        old_pid = run_client("old")
        old = wait_lines(flows, old_pid, server.port)
        check("calico-3.20: the client's line is written", len(old) >= 1, agent.text())
        bad = [k for k, _ in old if k != OLD_KEYS]
        check("calico-3.20: exactly the contract's keys without transit_*, in order",
              old and not bad, repr(bad[:1]))
        check("calico-3.20: 55 keys", old and len(old[0][0]) == 55,
              repr(len(old[0][0]) if old else None))

        write_conf("current")
        n = agent.nlog()
        agent.p.send_signal(signal.SIGHUP)
        check("reload to current applied",
              agent.wait_for("flowLogsSchema=current", after=n) is not None, agent.text())
        new_pid = run_client("new")
        new = wait_lines(flows, new_pid, server.port)
        check("current: the client's line is written", len(new) >= 1, agent.text())
        bad = [k for k, _ in new if k != SPEC_KEYS]
        check("current: every key of the contract, in order", new and not bad, repr(bad[:1]))
        check("agent exits 0 on SIGTERM", agent.stop() == 0, agent.text())
        agent = None
        every = key_lists(flows)
        odd = [k for k, _ in every if k not in (OLD_KEYS, SPEC_KEYS)]
        check("every line has one of the two key sets", every and not odd, repr(odd[:1]))
    finally:
        if agent:
            agent.stop()
        if server:
            server.close()
        shutil.rmtree(d, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
