#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end: once started, the agent holds only the capabilities the README
documents, in every thread, and still reloads and writes its last interval.

    python3 tests/e2e/test_privileges.py --agent build/procflow --bindir build/e2e   (as root)

The documented set is read from README.md (section "Privileges", the line
"Kept after start-up: ..."), so the test fails when the code and the README part.
The agent runs with a ClickHouse URL on a loopback port nothing listens on, so its
sender thread exists (its batches wait in the spool), and with --metrics-listen,
so the metrics endpoint's server thread exists; every thread's status is checked. Then a SIGHUP changes the flush interval through the config file (the
reload must be applied), and a client (netns.TestNet) runs right before SIGTERM:
its flow can only reach flows.log through the final flush."""

import os
import re
import subprocess
import sys
import socket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import netns  # noqa: E402
from common import Agent, workdir  # noqa: E402

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
# include/uapi/linux/capability.h
CAP_NUMBERS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2,
               "CAP_SETPCAP": 8, "CAP_NET_ADMIN": 12, "CAP_SYS_PTRACE": 19,
               "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_PERFMON": 38, "CAP_BPF": 39}


def documented_mask():
    """The capability mask README.md says the running agent keeps, or None."""
    with open(README) as f:
        for line in f:
            if line.startswith("Kept after start-up:"):
                names = re.findall(r"CAP_[A-Z_]+", line)
                if "none" in line.split(":", 1)[1].lower() and not names:
                    return 0
                return sum(1 << CAP_NUMBERS[n] for n in names)
    return None


def caps_of(status_path):
    out = {}
    with open(status_path) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.startswith("Cap") or k == "NoNewPrivs":
                out[k] = int(v.strip(), 16) if k.startswith("Cap") else int(v)
    return out


def free_port():
    """A loopback TCP port nobody listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(res, args):
    want = documented_mask()
    if not res.check("README documents the kept set", want is not None, README):
        return
    port = 26000 + os.getpid() % 3000
    with workdir(args, "pf-priv-") as d:
        conf = os.path.join(d, "procflow.yaml")
        out = os.path.join(d, "out")
        with open(conf, "w") as f:
            f.write("flowLogsFlushInterval: 30s\nflowLogsFileAggregationKindForAllowed: 0\n")
        with netns.TestNet("priv") as net:
            net.spawn(net.server_ns, [os.path.join(args.bindir, "pf_server"), "tcp",
                                      net.server_v4, str(port)])
            agent = Agent(args.agent, ["run", "--config", conf, "--output-dir", out,
                                       "--runtime-dir", os.path.join(d, "run"),
                                       "--clickhouse-url", "http://127.0.0.1:9/",
                                       # the endpoint's server thread too
                                       "--metrics-listen", "127.0.0.1:%d" % free_port()],
                                  owner=net)
            if not agent.start_ready(res):
                return
            pid = agent.proc.pid
            tasks = sorted(os.listdir("/proc/%d/task" % pid))
            res.check("the sender and metrics threads besides the main one", len(tasks) >= 3,
                      "tasks %s" % tasks)
            for tid in tasks:
                c = caps_of("/proc/%d/task/%s/status" % (pid, tid))
                res.check("thread %s: CapEff and CapPrm are the documented set (%#x)" % (tid, want),
                          c["CapEff"] == want and c["CapPrm"] == want,
                          "CapEff %#x CapPrm %#x" % (c["CapEff"], c["CapPrm"]))
                res.check("thread %s: nothing inheritable or ambient" % tid,
                          c["CapInh"] == 0 and c["CapAmb"] == 0,
                          "CapInh %#x CapAmb %#x" % (c["CapInh"], c["CapAmb"]))
            c = caps_of("/proc/%d/status" % pid)
            res.check("bounding set is the documented set, no_new_privs set",
                      c["CapBnd"] == want and c["NoNewPrivs"] == 1,
                      "CapBnd %#x NoNewPrivs %d" % (c["CapBnd"], c["NoNewPrivs"]))

            with open(conf, "w") as f:
                f.write("flowLogsFlushInterval: 2s\nflowLogsFileAggregationKindForAllowed: 0\n")
            n = agent.nlines()
            agent.proc.send_signal(1)  # SIGHUP
            ok = agent.wait_line("reloaded: flowLogsFlushInterval=2s", 10, after=n) is not None
            res.check("SIGHUP reload applied after the drop", ok, agent.stderr_text())

            cli = os.path.abspath(os.path.join(args.bindir, "pf_client"))
            c, _ = net.run_in(net.client_ns, [cli, "tcp", net.server_v4, str(port), "321", "last"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            rc, _ = agent.stop()
            res.check("agent exits 0", rc == 0, "rc %s\n%s" % (rc, agent.stderr_text()))
            mine = common.lines_of(os.path.join(out, "flows.log"), c.pid, port)
            res.check("final flush wrote the last client", c.returncode == 0 and len(mine) == 1
                      and mine[0]["process_name"] == cli,
                      "client rc %s; lines %s" % (c.returncode, [common.compact(r) for r in mine]))
            errs = [l for l in agent.stderr_lines if "could not give up" in l
                    or "Operation not permitted" in l and "libbpf" not in l]
            res.check("no permission error in the log", not errs, "; ".join(errs))


if __name__ == "__main__":
    sys.exit(common.run_main(body, __doc__))
