#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""The soak run (make soak): one agent under a mixed workload for many minutes.

    python3 tests/soak/soak.py --agent build/procflow --bindir build/e2e [--minutes 10]

Not a test of `make test`: it runs for SOAK_MINUTES (default 10) and shows whether
the agent stays flat. The workload runs in two network namespaces of its own
(198.18.0.0/15 and fd00::/8, tests/e2e/netns.py), all at once:

- short-lived clients (pf_client) in batches: connection churn and exec events;
- 16 long TCP connections that send every second;
- UDP to 512 peers (ports) every few seconds;
- as the unprivileged user `nobody`: socket()+close() probes and connects that
  fail before SYN_SENT (ENETUNREACH: the client namespace has no route there);
- PID reuse: a client run again under the PID of one that just exited;
- rotation with zstd (1 MiB files), a reload (SIGHUP) every 2 minutes, and a
  ClickHouse server (when installed) stopped for a minute and started again.

Every minute it prints the agent's RSS, the occupancy of each of its BPF hash maps,
the lines written so far, and the losses the agent logged; it reads the files each
minute, before retention deletes the oldest. At the end it checks: every line
written during the run parses; 1,000 short-lived clients spread over the run are
each named exactly (path, arguments, PID); and RSS at the end is within 5 % of its
value at half the run, and within 15 % of its value after 2 minutes. The agent's tables (the process cache, the collector's flow
state) grow by doubling while the workload's working set fills them: a step in the
first half is such a growth, a leak is a trend, which shows in the second half too.
The growth since minute 2 and the map occupancy are printed beside it (the figures to
put beside a release). Exit 0 when all of that holds.
"""
import argparse
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import netns  # noqa: E402
from common import Agent  # noqa: E402

TCP_PORT, UDP_PORT, LONG_PORT = 7400, 7401, 7402
UDP_PEERS = 512
LONG_CONNS = 16
SAMPLE = 1000
FLAT = 0.05  # RSS at the end vs at half the run
STEP = 0.15  # RSS at the end vs after 2 minutes: the tables' growth, bounded


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def agent_maps(pid):
    """{name: (id, type, max_entries)} of the BPF maps the agent holds open."""
    maps = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                info = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        except OSError:
            continue
        if "map_id" in info:
            maps[int(info["map_id"])] = (int(info["map_type"]), int(info["max_entries"]))
    out = {}
    for mid, (mtype, cap) in maps.items():
        # Hash-like maps only (1 hash, 5 percpu hash, 9 LRU hash, 10 LRU percpu):
        # those are the ones whose occupancy can creep up.
        if mtype not in (1, 5, 9, 10):
            continue
        p = subprocess.run(["bpftool", "-j", "map", "show", "id", str(mid)], capture_output=True,
                           text=True)
        name = json.loads(p.stdout).get("name", str(mid)) if p.returncode == 0 else str(mid)
        out[name] = (mid, cap)
    return out


def map_entries(mid):
    """Entries in map @mid, counted key by key (bpftool map dump)."""
    p = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(mid)], capture_output=True, text=True)
    if p.returncode != 0:
        return -1
    try:
        return len(json.loads(p.stdout))
    except ValueError:
        return -1


class Lines:
    """Every line written during the run, read while it is still on disk.

    Retention (--max-files) deletes the oldest rotated files long before a
    30-minute run ends, so the lines are read each minute: a rotated file
    once (by inode: renaming does not change it), flows.log every time.
    Kept: the number of lines and unparsable ones, and for each short-lived
    client's tag argument the set of (process_id, process_name) it was
    named with."""

    def __init__(self, outdir):
        self.outdir = outdir
        self.seen = set()   # (dev, inode) of rotated files already read
        self.rotated_lines = 0
        self.live_lines = 0
        self.bad = []
        self.rotated_named = {}  # tag -> {(pid, name)}, from rotated files
        self.live_named = {}     # the same from the current flows.log

    def _parse(self, path, data, named):
        n = 0
        if data and not data.endswith(b"\n"):
            self.bad.append("%s: ends in a partial line" % path)
        for i, raw in enumerate(data.splitlines()):
            try:
                r = json.loads(raw)
            except ValueError:
                self.bad.append("%s:%d: %r" % (path, i + 1, raw[:80]))
                continue
            n += 1
            if r.get("reporter") == "src" and r.get("dest_port") == TCP_PORT:
                for tag in r.get("process_args") or []:
                    named.setdefault(tag, set()).add((r.get("process_id"), r.get("process_name")))
        return n

    def scan(self):
        live = {}
        self.live_lines = 0
        for path in sorted(glob.glob(os.path.join(self.outdir, "flows.log*"))):
            if path.endswith(".tmp"):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # deleted by retention meanwhile
            if path.endswith(".zst"):
                if (st.st_dev, st.st_ino) in self.seen:
                    continue
                p = subprocess.run(["zstd", "-dcq", path], capture_output=True)
                if p.returncode != 0 and not os.path.exists(path):
                    continue
                self.seen.add((st.st_dev, st.st_ino))
                self.rotated_lines += self._parse(path, p.stdout, self.rotated_named)
            else:
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                # The live file may end mid-write: only whole lines count here.
                cut = data.rfind(b"\n") + 1
                self.live_lines += self._parse(path, data[:cut], live)
        self.live_named = live

    def lines(self):
        return self.rotated_lines + self.live_lines

    def named(self, tag):
        return self.rotated_named.get(tag, set()) | self.live_named.get(tag, set())


class Workload:
    """The load generators: threads that run until stop is set."""

    def __init__(self, net, bindir, odd, stop):
        self.net, self.bindir, self.odd, self.stop = net, bindir, odd, stop
        self.client = os.path.join(bindir, "pf_client")
        self.runs = []  # (tag argument, pid) of every short-lived client that exited 0
        self.reuses = 0
        self.batches = 0
        self.errors = []
        self.lock = threading.Lock()

    def _loop(self, fn, pause):
        while not self.stop.is_set():
            try:
                fn()
            except Exception as e:  # a generator's failure is reported, not fatal
                with self.lock:
                    self.errors.append(repr(e))
            self.stop.wait(pause)

    def churn(self):
        self.batches += 1
        tag = "soak-%d" % self.batches
        p, _ = self.net.run_in(self.net.client_ns, [self.odd, "storm", self.client, self.net.server_v4,
                                                    str(TCP_PORT), "100", "4", tag],
                               timeout=120, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for m in re.finditer(r"^run (\d+) (\d+) (\d+) ", p.out, re.M):
            i, pid, rc = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if rc == 0:
                with self.lock:
                    self.runs.append(("tcp %s %d 64 %s-%d" % (self.net.server_v4, TCP_PORT, tag, i), pid))

    def reuse(self):
        p, _ = self.net.run_in(self.net.client_ns, [self.odd, "reuse", self.client, self.net.server_v4,
                                                    str(TCP_PORT), "soak%d" % self.reuses],
                               timeout=60, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode == 0:
            self.reuses += 1

    def probes(self):
        # As nobody: 20,000 sockets opened and closed, 500 connects that fail at once.
        code = ("import socket\n"
                "for _ in range(20000): socket.socket().close()\n"
                "for _ in range(500):\n"
                "    s = socket.socket()\n"
                "    try: s.connect(('198.19.255.1', 9))\n"
                "    except OSError: pass\n"
                "    s.close()\n")
        self.net.run_in(self.net.client_ns, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                             sys.executable, "-c", code], timeout=120)

    def udp_peers(self):
        code = ("import socket\n"
                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "for port in range(20000, 20000 + %d): s.sendto(b'u' * 32, ('%s', port))\n"
                % (UDP_PEERS, self.net.server_v4))
        self.net.run_in(self.net.client_ns, [sys.executable, "-c", code], timeout=60)

    def long_conns(self):
        # pf_server serves one connection at a time: long ones get a sink of their own.
        sink = ("import socket, threading\n"
                "l = socket.create_server(('::', %d), family=socket.AF_INET6, dualstack_ipv6=True)\n"
                "def drain(c):\n"
                "    while c.recv(65536): pass\n"
                "while True: threading.Thread(target=drain, args=(l.accept()[0],), daemon=True).start()\n"
                % LONG_PORT)
        self.net.spawn(self.net.server_ns, [sys.executable, "-c", sink])
        code = ("import socket, sys, time\n"
                "for _ in range(100):\n"
                "    try: cs = [socket.create_connection(('%s', %d)) for _ in range(%d)]; break\n"
                "    except OSError: time.sleep(0.1)\n"
                "while True:\n"
                "    for c in cs: c.sendall(b'l' * 100)\n"
                "    time.sleep(1)\n" % (self.net.server_v4, LONG_PORT, LONG_CONNS))
        self.long = self.net.spawn(self.net.client_ns, [sys.executable, "-c", code])

    def start(self):
        self.long_conns()
        self.threads = [threading.Thread(target=self._loop, args=a, daemon=True) for a in
                        ((self.churn, 1.0), (self.reuse, 20.0), (self.probes, 15.0), (self.udp_peers, 5.0))]
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(timeout=180)


def start_clickhouse(tmp, agent):
    """A ClickHouse server of the e2e suite's kind, or None when none is installed."""
    if not any(os.access(os.path.join(d, "clickhouse-server"), os.X_OK)
               for d in os.environ.get("PATH", "").split(":")):
        return None
    import test_clickhouse  # noqa: E402
    root = os.path.join(tmp, "ch")
    os.mkdir(root)
    ch = test_clickhouse.ClickHouse(root)
    ch.start()
    test_clickhouse.create_schema(agent, ch)
    pw = os.path.join(tmp, "ch-password")
    with open(pw, "w") as f:
        f.write(test_clickhouse.PASSWORD + "\n")
    os.chmod(pw, 0o600)
    return ch, ["--clickhouse-url", ch.url, "--clickhouse-user", test_clickhouse.USER,
                "--clickhouse-password-file", pw, "--clickhouse-spool-dir", os.path.join(tmp, "spool")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "10")))
    ap.add_argument("--keep", action="store_true", help="keep the output directory (its path is printed)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (namespaces, the agent)")
    a.bindir = os.path.abspath(a.bindir)  # the agent reports absolute paths
    odd = os.path.join(a.bindir, "pf_odd")
    tmp = tempfile.mkdtemp(prefix="pf-soak-")
    os.chmod(tmp, 0o755)
    outdir, rundir = os.path.join(tmp, "out"), os.path.join(tmp, "run")
    failures = []
    ch = None
    with netns.TestNet("soak") as net:
        for proto, port in (("tcp", TCP_PORT), ("udp", UDP_PORT)):
            srv = net.spawn(net.server_ns, [os.path.join(a.bindir, "pf_server"), proto, "::", str(port)],
                            stdout=subprocess.PIPE, text=True)
            if "listening" not in srv.stdout.readline():
                sys.exit("soak: pf_server %s did not start" % proto)
        extra = []
        try:
            got = start_clickhouse(tmp, a.agent)
        except Exception as e:  # no ClickHouse is no reason to skip the rest
            print("soak: ClickHouse not used: %s" % e)
            got = None
        if got:
            ch, extra = got
        agent = Agent(a.agent, ["run", "--output-dir", outdir, "--runtime-dir", rundir, "--flush-interval", "5",
                                "--max-file-size", "1", "--max-files", "200", "--compression", "zstd",
                                "--aggregation", "0", "--verbose"] + extra, owner=net)
        agent.start()
        ok, detail = agent.wait_ready(60)
        if not ok:
            sys.exit("soak: the agent did not start: %s" % detail)
        pid = agent.proc.pid
        maps = agent_maps(pid)
        written = Lines(outdir)
        stop = threading.Event()
        work = Workload(net, a.bindir, odd, stop)
        work.start()
        t0 = time.monotonic()
        minutes = max(1, int(round(a.minutes)))
        at2 = None
        rss_half = None
        end_occ = {}
        user_tables = []
        print("minute   rss_kib    lines  " + "  ".join("%-22s" % n for n in sorted(maps)) +
              "  processes coll.flows  ev.lost  loss lines")
        for minute in range(1, minutes + 1):
            # Occupancy is sampled 2-6 s apart at random and the minute's median
            # kept: one reading catches whatever happens to be in flight at that
            # instant, and readings at a fixed period alias with the 5 s flush
            # (every sample of a minute then lands at the same point of the
            # cycle, and the medians swing between minutes with no leak).
            samples = {n: [] for n in maps}
            next_sample = time.monotonic()
            while time.monotonic() < t0 + 60 * minute:
                if time.monotonic() >= next_sample:
                    for n, (mid, cap) in maps.items():
                        samples[n].append(map_entries(mid))
                    next_sample += random.uniform(2, 6)
                time.sleep(0.5)
                if agent.proc.poll() is not None:
                    break
            if agent.proc.poll() is not None:
                failures.append("the agent exited (%s) in minute %d" % (agent.proc.returncode, minute))
                break
            if minute % 2 == 0:
                agent.proc.send_signal(signal.SIGHUP)
            if ch and minute % 4 == 2:
                ch.stop()
            elif ch and minute % 4 == 3:
                ch.start()
            occ = {n: sorted(v)[len(v) // 2] if v else map_entries(maps[n][0]) for n, v in samples.items()}
            rss = rss_kib(pid)
            losses = [l for l in agent.stderr_lines if re.search(r"lost|not recorded|full|dropped", l)]
            events_lost = sum(int(m.group(1)) for m in (re.search(r"(\d+) process events lost", l)
                                                       for l in agent.stderr_lines) if m)
            # The user-space tables, from the agent's own occupancy line (-v: every flush).
            occ_line = next((l for l in reversed(agent.stderr_lines) if "occupancy:" in l), "")
            tables = {m.group(1): int(m.group(2)) for m in
                      re.finditer(r"(processes|collector flows|handshakes) (\d+)", occ_line)}
            user_tables.append(tables)
            written.scan()
            print("%6d %9d %8d  %s  %9s %9s  %6d  %d" % (
                minute, rss, written.lines(),
                "  ".join("%-22s" % ("%d/%d" % (occ[n], maps[n][1])) for n in sorted(maps)),
                tables.get("processes", "?"), tables.get("collector flows", "?"), events_lost,
                len(losses)), flush=True)
            if minute == min(2, minutes):
                at2 = (rss, occ)
            if minute == max(1, minutes // 2):
                rss_half = rss
            end_occ = occ
        stop.set()
        work.join()
        end_rss = rss_kib(pid) if agent.proc.poll() is None else 0
        rc, _ = agent.stop(60)
        if ch:
            ch.stop()
        if rc != 0:
            failures.append("the agent exited %s on SIGTERM" % rc)

    written.scan()  # the last interval, written at SIGTERM
    bad = written.bad
    print("\nlines: %d, unparsable: %d" % (written.lines(), len(bad)))
    for b in bad[:5]:
        print("  " + b)
    if bad:
        failures.append("%d lines do not parse" % len(bad))
    runs = work.runs
    sample = [runs[int(i * len(runs) / SAMPLE)] for i in range(SAMPLE)] if len(runs) >= SAMPLE else runs
    want_name = str(work.client)

    def exact(want, pid):
        got = written.named(want)
        return bool(got) and all(p == str(pid) and n == want_name for p, n in got)

    good = sum(1 for want, pid in sample if exact(want, pid))
    print("short-lived clients: %d run, %d sampled, %d exactly attributed" % (len(runs), len(sample), good))
    for want, pid in [x for x in sample if not exact(*x)][:10]:
        print("  not exact: pid %d %r: %s" % (pid, want, sorted(written.named(want)) or "no line"))
    if len(sample) < SAMPLE or good != len(sample):
        failures.append("attribution: %d of %d sampled clients exact (want %d of %d)" %
                        (good, len(sample), SAMPLE, SAMPLE))
    print("PID reuses: %d; generator errors: %d %s" % (work.reuses, len(work.errors), work.errors[:3]))
    if at2:
        rss2, occ2 = at2
        print("RSS: %d KiB after 2 minutes, %d KiB at half the run, %d KiB at the end "
              "(%+.1f %% since minute 2, %+.1f %% over the second half)" %
              (rss2, rss_half, end_rss, 100.0 * (end_rss - rss2) / (rss2 or 1),
               100.0 * (end_rss - rss_half) / (rss_half or 1)))
        if end_rss > rss_half * (1 + FLAT):
            failures.append("RSS grew more than %d %% over the second half" % (100 * FLAT))
        if end_rss > rss2 * (1 + STEP):
            failures.append("RSS grew more than %d %% since minute 2" % (100 * STEP))
        for n in sorted(occ2):
            cap = maps[n][1]
            print("map %-20s median %d entries in minute 2, %d in the last minute (of %d)" %
                  (n, occ2[n], end_occ.get(n, -1), cap))
            # What is in flight moves a map by a few hundred entries from minute to
            # minute; a leak moves it for good. Allowed: 5 % of the minute-2 value,
            # plus a noise floor of 1 % of the map's capacity.
            if end_occ.get(n, 0) > occ2[n] * (1 + FLAT) + cap // 100:
                failures.append("map %s grew from %d to %d entries" % (n, occ2[n], end_occ[n]))
    for l in agent.stderr_lines:
        if re.search(r"lost|not recorded|full|dropped", l):
            print("agent: " + l)
    print("\nsoak: %s" % ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    if a.keep:
        print("soak: files kept in %s" % tmp)
    else:
        subprocess.run(["rm", "-rf", tmp])
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
