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
(traffic.NetnsServer); aggregation level 0, so each client's connection is its
own line, told apart by its PID."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, read_lines, run_main, workdir, write_atomic  # noqa: E402
from traffic import NetnsServer, client  # noqa: E402


def body(res, args):
    with workdir(args, "pf-reload-") as d, NetnsServer() as server:
        clients = []  # (popen, start, end, marker)
        try:
            scenario(res, args, d, server, clients)
        finally:
            for c in clients:
                if c[0].poll() is None:
                    c[0].kill()
                    c[0].wait()


def scenario(res, args, d, server, clients):
    conf = os.path.join(d, "procflow.yaml")
    out = os.path.join(d, "out")
    run = os.path.join(d, "run")

    def write_conf(path_on):
        write_atomic(conf, f"flowLogsCollectProcessPath: {'true' if path_on else 'false'}\n"
                     "flowLogsFileAggregationKindForAllowed: 0\n")

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

    check = res.check
    write_conf(True)
    agent = Agent(args.agent, ["run", "--config", conf, "--output-dir", out, "--flush-interval",
                               "1", "--runtime-dir", run])
    if not agent.start_ready(res):
        return

    spawn_phase(12)
    write_conf(False)
    n = agent.nlines()
    hup1 = time.monotonic()
    agent.proc.send_signal(signal.SIGHUP)
    spawn_for(0.3)
    done1 = agent.wait_line("reloaded: flowLogsCollectProcessPath=false", after=n)
    check("SIGHUP to off is applied", done1 is not None, agent.stderr_text())
    spawn_phase(12)

    write_conf(True)
    n = agent.nlines()
    hup2 = time.monotonic()
    r = os.spawnv(os.P_WAIT, args.agent, [args.agent, "reload", "--runtime-dir", run])
    check("procflow reload exits 0", r == 0)
    spawn_for(0.3)
    done2 = agent.wait_line("reloaded: flowLogsCollectProcessPath=true", after=n)
    check("procflow reload to on is applied", done2 is not None, agent.stderr_text())
    spawn_phase(5)

    # An invalid file is rejected; the running configuration stays.
    with open(conf, "w") as f:
        f.write("flowLogsCollectProcessPath: false\nflowLogsFileMaxFiles: lots\n")
    n = agent.nlines()
    agent.proc.send_signal(signal.SIGHUP)
    t = agent.wait_line("reload rejected", after=n)
    check("an invalid config is rejected, naming key and file:line",
          t is not None and agent.logged(f"{conf}:2: flowLogsFileMaxFiles"), agent.stderr_text())
    spawn_phase(5)  # these clients must still get paths

    # A value of a restart-only key that the next start would refuse is
    # refused now, by the same check as at start.
    with open(conf, "w") as f:
        f.write("flowLogsCollectProcessPath: true\nringBufferKiB: 100\n")
    n = agent.nlines()
    agent.proc.send_signal(signal.SIGHUP)
    t = agent.wait_line("reload rejected", after=n)
    check("a restart-only key the next start would refuse is rejected at reload",
          t is not None and agent.logged("ringBufferKiB: 100 is not a power of two"),
          agent.stderr_text())
    check("... and not taken as 'changes only on restart'",
          not agent.logged("ringBufferKiB changes only on restart"), agent.stderr_text())
    spawn_phase(5)  # these clients must still get paths

    for c in clients:
        c[0].wait(timeout=10)
        if c[2] is None:
            c[2] = time.monotonic()
    # The final flush on SIGTERM writes every client's flow.
    check("agent exits 0 on SIGTERM", agent.stop()[0] == 0, agent.stderr_text())

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
          f"missing PIDs {missing}\n{agent.stderr_text()}")
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


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__.splitlines()[0]))
