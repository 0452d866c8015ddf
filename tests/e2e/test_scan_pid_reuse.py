#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: a process learnt from /proc ends when it exits, so its PID, taken
again by another program, is never named after it.

    python3 tests/e2e/test_scan_pid_reuse.py --agent build/procflow --bindir build/e2e   (as root)

A process started before the agent is known from /proc, whose start time is in clock
ticks; its exit event carries the start to the nanosecond. Set-up (netns.TestNet):

1. a "daemon" (a copy of pf_odd, waiting on stdin) starts before the agent;
2. the agent starts (16 KiB ring buffer, 1 s interval, aggregation 0, -v), learns
   the daemon from /proc; the daemon is killed, and one flush later its exit has
   been read;
3. the agent is stopped (SIGSTOP) and 2,000 execs of /bin/true fill its ring
   buffer, so the events of what follows are lost (as under any event storm);
4. a pf_client is started under the daemon's PID (ns_last_pid, retried until the
   PID comes round) and makes one TCP connection; the agent continues (SIGCONT).

The client's exec was lost, so its flow must carry its task name, "pf_client", the
documented last resort, never the dead daemon's path and arguments."""

import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import netns  # noqa: E402
from common import Agent, workdir  # noqa: E402

# Fork until the child gets PID argv[1], then exec argv[2:] in it. Other children
# exit at once. Gives up after 20 s (other programs on the host fork too).
REUSE = r"""
import os, sys, time
target, argv = int(sys.argv[1]), sys.argv[2:]
end = time.monotonic() + 20
while time.monotonic() < end:
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(target - 1))
    pid = os.fork()
    if pid == 0:
        if os.getpid() == target:
            os.execv(argv[0], argv)
        os._exit(3)
    _, st = os.waitpid(pid, 0)
    if pid == target:
        print(os.waitstatus_to_exitcode(st), flush=True)
        sys.exit(0)
print("PID %d never came round" % target, flush=True)
sys.exit(1)
"""

STORM = "i=0; while [ $i -lt 2000 ]; do /bin/true; i=$((i+1)); done"


def body(res, args):
    port = 25000 + os.getpid() % 3000
    # (A stopped agent is killed at the end all the same: SIGKILL needs no SIGCONT.)
    with workdir(args, "pf-scanreuse-") as d:
        daemon = os.path.join(d, "pf_daemon")
        shutil.copy(os.path.join(args.bindir, "pf_odd"), daemon)
        client = os.path.abspath(os.path.join(args.bindir, "pf_client"))
        with netns.TestNet("scanreuse") as net:
            net.spawn(net.server_ns, [os.path.join(args.bindir, "pf_server"), "tcp",
                                      net.server_v4, str(port)])
            dm = net.spawn(net.client_ns, [daemon, "wait", net.server_v4, str(port), "old"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            if not res.check("daemon waiting", dm.stdout.readline().strip() == "pf_odd: waiting"):
                return
            agent = Agent(args.agent, ["run", "--output-dir", os.path.join(d, "out"),
                                       "--runtime-dir", os.path.join(d, "run"),
                                       "--flush-interval", "1", "--aggregation", "0",
                                       "--ring-buffer-kib", "16", "-v"], owner=net)
            if not agent.start_ready(res):
                return
            target = dm.pid
            dm.kill()
            dm.wait()
            n = agent.nlines()
            ok = agent.wait_line("flush:", timeout=10, after=n) is not None
            res.check("a flush after the daemon's exit", ok)

            agent.proc.send_signal(signal.SIGSTOP)
            p, _ = net.run_in(net.client_ns, ["sh", "-c", STORM], timeout=60)
            res.check("exec storm ran", p.returncode == 0)
            p, _ = net.run_in(net.client_ns, [sys.executable, "-c", REUSE, str(target), client,
                                              "tcp", net.server_v4, str(port), "300", "new"],
                              timeout=60, stdout=subprocess.PIPE, text=True)
            if not res.check("pf_client ran under the daemon's PID %d" % target,
                             p.returncode == 0 and p.out.strip() == "0", p.out.strip()):
                return
            agent.proc.send_signal(signal.SIGCONT)

            mine = common.wait_lines_of(os.path.join(d, "out", "flows.log"), target, port)
            res.check("the new process is not named after the dead one", len(mine) == 1 and
                      mine[0]["process_name"] == "pf_client" and mine[0]["process_args"] == [],
                      "want pf_client (task name; its exec was lost), not %s; got %s" % (
                          daemon, "; ".join(common.compact(r) for r in mine) or "no line"))
            lost = [l for l in agent.stderr_lines if "process events lost" in l]
            res.check("the lost events were counted", bool(lost), agent.stderr_text())
            rc, _ = agent.stop()
            res.check("agent exits 0", rc == 0, "rc %s" % rc)


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
