#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""flowLogsIncludeLoopback changes live: a reload writes the flag into the
loaded BPF object's global data, so packets from then on follow it.

Loopback off (config file, no flag): a client's loopback flow is not logged;
reload on: the next client's is; reload off: the one after is not."""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pfagent import Agent, Server, client, read_lines  # noqa: E402

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--bindir")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pf-reload-lo-")
    conf = os.path.join(d, "procflow.yaml")
    out = os.path.join(d, "out")
    agent = server = None
    pids = {}

    def write_conf(on):
        with open(conf + ".tmp", "w") as f:
            f.write(f"flowLogsIncludeLoopback: {'true' if on else 'false'}\n"
                    "flowLogsFileAggregationKindForAllowed: 0\n")
        os.rename(conf + ".tmp", conf)

    def reload(on):
        write_conf(on)
        n = agent.nlog()
        agent.p.send_signal(signal.SIGHUP)
        return agent.wait_for(f"flowLogsIncludeLoopback={'true' if on else 'false'}", after=n)

    def run_client(tag):
        p = client(server.port, tag)
        p.wait(timeout=10)
        pids[tag] = p.pid

    try:
        write_conf(False)
        server = Server()
        agent = Agent(a.agent, ["--config", conf, "--output-dir", out, "--flush-interval", "1",
                                "--runtime-dir", os.path.join(d, "run")])
        check("agent ready", agent.wait_for("ready") is not None, agent.text())
        # A reload writes the interval so far before it applies the new
        # settings, so no wait is needed between a client and a reload.
        run_client("off-1")
        check("reload to on applied", reload(True) is not None, agent.text())
        run_client("on")
        check("reload to off applied", reload(False) is not None, agent.text())
        run_client("off-2")
        check("agent exits 0 on SIGTERM", agent.stop() == 0, agent.text())
        lines = read_lines(os.path.join(out, "flows.log"))
        seen = {l["process_id"] for l in lines if l["reporter"] == "src"
                and l["dest_port"] == server.port}
        check("loopback off: not logged", str(pids["off-1"]) not in seen, repr(seen))
        check("loopback on after a reload: logged", str(pids["on"]) in seen, repr(seen))
        check("loopback off again: not logged", str(pids["off-2"]) not in seen, repr(seen))
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
