#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Live reload of flowLogsCollectProcessPath with clients running throughout.

Process paths on; SIGHUP with the file saying off (process_name is the task
name, process_args []); `procflow reload` with it on again. A client is
started every 0.15 s the whole time. Every client's flow must be in the file,
and a client that ran entirely within one setting must carry that setting's
kind of process_name. A client that straddled a reload may carry either
(the reload closes the interval at the moment it is applied).

Clients on the host talk to a server in this test's own network namespace
(pfagent.NetnsServer); aggregation level 0, so each client's connection is its
own line, told apart by its PID."""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pfagent import Agent, NetnsServer, client, read_lines  # noqa: E402

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
    d = tempfile.mkdtemp(prefix="pf-reload-")
    conf = os.path.join(d, "procflow.yaml")
    out = os.path.join(d, "out")
    run = os.path.join(d, "run")
    agent = server = None
    clients = []  # (popen, start, end, marker)

    def write_conf(path_on):
        tmp = conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"flowLogsCollectProcessPath: {'true' if path_on else 'false'}\n"
                    "flowLogsFileAggregationKindForAllowed: 0\n")
        os.rename(tmp, conf)

    def spawn_one():
        marker = f"pf-reload-{len(clients)}"
        t0 = time.monotonic()
        p = client(server.port, marker, server.ip)
        clients.append([p, t0, None, marker])

    def reap_done():
        for c in clients:
            if c[2] is None and c[0].poll() is not None:
                c[2] = time.monotonic()

    def spawn_for(secs):
        """Clients for @secs, one every 0.15 s (the windows around a reload)."""
        end = time.monotonic() + secs
        while time.monotonic() < end:
            spawn_one()
            time.sleep(0.15)  # pacing the load, not waiting for anything
            reap_done()

    def spawn_phase(n, limit=90):
        """Clients, one every 0.15 s, until @n of them started and ended within
        this phase: a count, not a duration, so a slow machine still gets @n."""
        first = len(clients)
        end = time.monotonic() + limit
        while time.monotonic() < end and sum(c[2] is not None for c in clients[first:]) < n:
            spawn_one()
            time.sleep(0.15)  # pacing the load, not waiting for anything
            reap_done()

    try:
        write_conf(True)
        server = NetnsServer()
        agent = Agent(a.agent, ["--config", conf, "--output-dir", out, "--flush-interval", "1",
                                "--runtime-dir", run])
        check("agent ready", agent.wait_for("ready") is not None, agent.text())

        spawn_phase(12)
        write_conf(False)
        n = agent.nlog()
        hup1 = time.monotonic()
        agent.p.send_signal(signal.SIGHUP)
        spawn_for(0.3)
        done1 = agent.wait_for("reloaded: flowLogsCollectProcessPath=false", after=n)
        check("SIGHUP to off is applied", done1 is not None, agent.text())
        spawn_phase(12)

        write_conf(True)
        n = agent.nlog()
        hup2 = time.monotonic()
        r = os.spawnv(os.P_WAIT, a.agent, [a.agent, "reload", "--runtime-dir", run])
        check("procflow reload exits 0", r == 0)
        spawn_for(0.3)
        done2 = agent.wait_for("reloaded: flowLogsCollectProcessPath=true", after=n)
        check("procflow reload to on is applied", done2 is not None, agent.text())
        spawn_phase(5)

        # An invalid file is rejected; the running configuration stays.
        with open(conf, "w") as f:
            f.write("flowLogsCollectProcessPath: false\nflowLogsFileMaxFiles: lots\n")
        n = agent.nlog()
        agent.p.send_signal(signal.SIGHUP)
        t = agent.wait_for("reload rejected", after=n)
        check("an invalid config is rejected, naming key and file:line",
              t is not None and f"{conf}:2: flowLogsFileMaxFiles" in agent.text(), agent.text())
        spawn_phase(5)  # these clients must still get paths

        # A value of a restart-only key that the next start would refuse is
        # refused now, by the same check as at start.
        with open(conf, "w") as f:
            f.write("flowLogsCollectProcessPath: true\nringBufferKiB: 100\n")
        n = agent.nlog()
        agent.p.send_signal(signal.SIGHUP)
        t = agent.wait_for("reload rejected", after=n)
        check("a restart-only key the next start would refuse is rejected at reload",
              t is not None and "ringBufferKiB: 100 is not a power of two" in agent.text(),
              agent.text())
        check("... and not taken as 'changes only on restart'",
              "ringBufferKiB changes only on restart" not in agent.text(), agent.text())
        spawn_phase(5)  # these clients must still get paths

        for c in clients:
            c[0].wait(timeout=10)
            if c[2] is None:
                c[2] = time.monotonic()
        # The final flush on SIGTERM writes every client's flow.
        check("agent exits 0 on SIGTERM", agent.stop() == 0, agent.text())

        lines = read_lines(os.path.join(out, "flows.log"))
        by_pid = {}
        for l in lines:
            if l["reporter"] == "src" and l["dest_port"] == server.port and l["proto"] == "tcp":
                by_pid.setdefault(l["process_id"], []).append(l)
        hup1_done = done1 or hup1
        hup2_done = done2 or hup2
        kinds = {"path": 0, "task": 0, "either": 0}
        missing, wrong = [], []
        for p, t0, t1, marker in clients:
            ls = by_pid.get(str(p.pid))
            if not ls:
                missing.append(p.pid)
                continue
            if t1 < hup1 or t0 > hup2_done:
                want = "path"
            elif t0 > hup1_done and t1 < hup2:
                want = "task"
            else:
                want = "either"
            kinds[want] += 1
            for l in ls:
                is_path = (l["process_name"].startswith("/")
                           and any(marker in s for s in l["process_args"])
                           and l["num_process_args"] == 1)
                is_task = (not l["process_name"].startswith("/") and 0 < len(l["process_name"]) <= 15
                           and l["process_args"] == [] and l["num_process_args"] == 0)
                ok = {"path": is_path, "task": is_task, "either": is_path or is_task}[want]
                if not ok or l["num_process_ids"] != 1:
                    wrong.append((p.pid, want, l["process_name"], l["process_args"]))
        check(f"every client's flow is present ({len(clients)} clients)", not missing,
              f"missing PIDs {missing}\n{agent.text()}")
        check("each flow has the process_name kind of its time", not wrong, repr(wrong[:5]))
        check("clients ran in every phase", kinds["path"] >= 10 and kinds["task"] >= 10,
              repr(kinds))
        # A flow may span two intervals (two lines), but it starts and
        # completes once: neither a reload nor a flush counts it twice.
        twice = {}
        for c in clients:
            ls = by_pid.get(str(c[0].pid), [])
            st = sum(l["num_flows_started"] for l in ls)
            cp = sum(l["num_flows_completed"] for l in ls)
            if ls and (st != 1 or cp != 1):
                twice[c[0].pid] = (st, cp)
        check("each client's flow started once and completed once", not twice, repr(twice))
    finally:
        for c in clients:
            if c[0].poll() is None:
                c[0].kill()
                c[0].wait()
        if agent:
            agent.stop()
        if server:
            server.close()
        shutil.rmtree(d, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
