#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""--metrics-listen, scraped by a real Prometheus server.

The agent serves /metrics on a loopback port; a Prometheus server of the test's
own (Debian's `prometheus`, its data directory under TMPDIR, stopped by its
PID) scrapes it every second. After traffic, Prometheus' HTTP query API must
say up == 1 for the agent and procflow_flow_lines_written_total{sink="file"}
equal to the lines in flows.log: the same counter the agent's writes advance,
read by the same parser an operator's server uses. promtool checks the
exposition text; procflow_kernel_map_bytes is the kernel's own accounting of the
agent's maps (memlock of each map fd it holds); every thread of the agent, the
endpoint's included, holds no capability; a bad --metrics-listen is refused with
exit 2 and one line.

Traffic: UDP from the test's client namespace to 200 ports of its server
namespace, so every 2-second interval writes lines at aggregation 0.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, run_main, terminate, wait_for, workdir  # noqa: E402
from netns import TestNet  # noqa: E402
from traffic import UDP_SENDER  # noqa: E402


def free_port():
    """A loopback TCP port nobody listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def prom_query(base, expr):
    """The value of the single series of an instant query, or None."""
    try:
        _, body = http_get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    except OSError:
        return None
    data = json.loads(body)
    res = data.get("data", {}).get("result", [])
    if data.get("status") != "success" or len(res) != 1:
        return None
    return float(res[0]["value"][1])


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def map_memlock(pid):
    """The sum of memlock over the BPF map fds @pid holds (/proc/PID/fdinfo)."""
    total = 0
    fddir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fddir):
        try:
            with open(os.path.join(fddir, fd)) as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        if "map_type" in info and "memlock" in info:
            total += int(info["memlock"])
    return total


def caps_eff(pid):
    """CapEff of every thread of @pid, by thread id."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    out[tid] = int(line.split()[1], 16)
    return out


def body(res, args):
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        res.check("prometheus and promtool installed (scripts/install-deps.sh)", False)
        return
    bad = subprocess.run([args.agent, "run", "--metrics-listen", "localhost:80"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    res.check("a bad --metrics-listen exits 2 with one line naming the key",
              bad.returncode == 2 and "metricsListen" in bad.stderr
              and len(bad.stderr.strip().splitlines()) == 1,
              "exit %d: %s" % (bad.returncode, bad.stderr))

    prom = None
    with workdir(args, "pf-metrics-") as d:
        try:
            out = os.path.join(d, "out")
            mport, pport = free_port(), free_port()
            with TestNet("metrics") as net:
                net.spawn(net.client_ns, [sys.executable, "-c", UDP_SENDER, net.server_v4,
                                          str(20000 + os.getpid() % 20000), "200"])
                agent = Agent(args.agent, ["run", "--output-dir", out, "--flush-interval", "2",
                                           "--aggregation", "0",
                                           "--metrics-listen", "127.0.0.1:%d" % mport], owner=net)
                if not agent.start_ready(res):
                    return
                url = "http://127.0.0.1:%d/metrics" % mport
                status, text = http_get(url)
                res.check("GET /metrics answers 200", status == 200, str(status))
                try:
                    http_get("http://127.0.0.1:%d/other" % mport)
                    res.check("another path answers 404", False)
                except urllib.error.HTTPError as e:
                    res.check("another path answers 404", e.code == 404, str(e.code))
                chk = subprocess.run(["promtool", "check", "metrics"], input=text,
                                     capture_output=True, text=True, timeout=30)
                res.check("promtool check metrics passes", chk.returncode == 0 and not chk.stdout
                          and not chk.stderr, chk.stdout + chk.stderr)
                for name in ("procflow_flow_lines_written_total{sink=\"file\"}",
                             "procflow_table_capacity{table=\"socks\"}",
                             "procflow_table_capacity{table=\"cgroups\"}", "process_open_fds",
                             "process_cpu_seconds_total", "process_resident_memory_bytes",
                             "process_start_time_seconds", "process_max_fds",
                             "process_virtual_memory_bytes"):
                    res.check("the text has %s" % name,
                              any(l.startswith(name + " ") for l in text.splitlines()))
                # The kernel memory of the maps as the agent reports it is the
                # kernel's own accounting: memlock of every map fd it holds.
                held = map_memlock(agent.proc.pid)
                rep = next((int(l.split()[1]) for l in text.splitlines()
                            if l.startswith("procflow_kernel_map_bytes ")), None)
                res.check("procflow_kernel_map_bytes is the memlock of the agent's maps",
                          held > 0 and rep == held, "metric %s, fdinfo %d" % (rep, held))
                caps = caps_eff(agent.proc.pid)
                res.check("the endpoint added threads, and no thread holds a capability",
                          len(caps) >= 2 and all(v == 0 for v in caps.values()), str(caps))

                conf = os.path.join(d, "prometheus.yml")
                with open(conf, "w") as f:
                    f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                            "scrape_configs:\n  - job_name: procflow\n    static_configs:\n"
                            "      - targets: ['127.0.0.1:%d']\n" % mport)
                prom = subprocess.Popen(
                    ["prometheus", "--config.file", conf, "--storage.tsdb.path",
                     os.path.join(d, "prom-data"), "--web.listen-address", "127.0.0.1:%d" % pport],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=open(os.path.join(d, "prometheus.log"), "w"))
                base = "http://127.0.0.1:%d" % pport
                res.check("Prometheus says up == 1 for the agent",
                          wait_for(lambda: prom_query(base, 'up{job="procflow"}') == 1, 60, 0.5),
                          "up = %s" % prom_query(base, 'up{job="procflow"}'))

                # The counter and the file agree once Prometheus' latest scrape
                # follows the latest flush (a flush every 2 s, a scrape every 1 s).
                flows = os.path.join(out, "flows.log")
                seen = {}

                def agree():
                    n = count_lines(flows)
                    v = prom_query(base, 'procflow_flow_lines_written_total{sink="file"}')
                    seen["last"] = (v, n)
                    return n > 0 and v == n and n == count_lines(flows)

                res.check("procflow_flow_lines_written_total equals the lines in flows.log",
                          wait_for(agree, 60, 0.3), "Prometheus, file: %s" % (seen.get("last"),))
                v = prom_query(base, "procflow_flushes_total")
                res.check("Prometheus has the flush counter", v is not None and v >= 1, str(v))
                rc, _ = agent.stop()
                res.check("the agent exits 0 on SIGTERM", rc == 0, agent.stderr_text())
        finally:
            if prom is not None:
                terminate(prom, 30)


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__))
