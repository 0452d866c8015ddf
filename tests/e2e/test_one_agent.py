#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""One agent per host: the PID file in the runtime directory is a lock.

A second `procflow run` on the same runtime directory exits 1 saying which
agent (PID N) runs, and leaves the first one's PID file and output alone;
`procflow reload` signals the agent that holds the lock, and once that agent
has gone it signals nobody (exit 1), even though the PID file's name and
content could still be found.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, run_main, wait_for  # noqa: E402


def body(res, args):
    d = tempfile.mkdtemp(prefix="pf-one-")
    first = None
    try:
        run = os.path.join(d, "run")
        pidfile = os.path.join(run, "procflow.pid")
        first = Agent(args.agent, ["run", "--output-dir", os.path.join(d, "out1"),
                                   "--runtime-dir", run, "--flush-interval", "1"])
        first.start()
        ok, detail = first.wait_ready(30)
        if not res.check("first agent ready", ok, detail):
            return
        with open(pidfile) as f:
            res.check("the PID file names the first agent",
                      f.read().strip() == str(first.proc.pid))

        try:
            # (subprocess.run kills the second agent if it is still running.)
            second = subprocess.run([args.agent, "run", "--output-dir",
                                     os.path.join(d, "out2"), "--runtime-dir", run,
                                     "--flush-interval", "1"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, timeout=30)
        except subprocess.TimeoutExpired as e:
            res.check("a second agent on the same runtime directory exits 1", False,
                      "still running after 30 s: %s" % e.stderr)
            return
        res.check("a second agent on the same runtime directory exits 1",
                  second.returncode == 1, "exit %d: %s" % (second.returncode, second.stderr))
        res.check("it says which agent runs",
                  "another agent (PID %d) runs" % first.proc.pid in second.stderr,
                  second.stderr)
        res.check("it loaded nothing and wrote no file",
                  "ready" not in second.stderr
                  and not os.path.exists(os.path.join(d, "out2", "flows.log")), second.stderr)
        with open(pidfile) as f:
            res.check("the first agent's PID file is untouched",
                      f.read().strip() == str(first.proc.pid))
        res.check("the first agent runs on", first.proc.poll() is None)

        n = len(first.stderr_lines)
        r = subprocess.run([args.agent, "reload", "--runtime-dir", run],
                           stderr=subprocess.PIPE, text=True, timeout=30)
        res.check("procflow reload exits 0", r.returncode == 0, r.stderr)
        res.check("the first agent got the SIGHUP",
                  wait_for(lambda: any("reload" in l for l in first.stderr_lines[n:]), 10),
                  first.stderr_text())

        rc, _ = first.stop()
        res.check("first agent exits 0 on SIGTERM", rc == 0, first.stderr_text())
        r = subprocess.run([args.agent, "reload", "--runtime-dir", run],
                           stderr=subprocess.PIPE, text=True, timeout=30)
        res.check("reload with no agent running exits 1", r.returncode == 1, r.stderr)
    finally:
        if first:
            first.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__))
