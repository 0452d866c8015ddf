#!/usr/bin/env python3
"""End-to-end: the ClickHouse sink against a real clickhouse-server on loopback.

    python3 tests/e2e/test_clickhouse.py --agent build/procflow --bindir build/e2e   (as root)

Each case starts its own clickhouse-server (Debian's package) with its own config and data
in a temporary directory, on free loopback ports, as a user with a password, and stops it
by its PID at the end, also on failure. The agent runs with --include-loopback and real
TCP and UDP traffic between processes this test starts on 127.0.0.1.

1. Steady: every line of flows.log is a row in ClickHouse, and no row is anything else.
2. Outage: the server is stopped mid-run (batches must wait in the spool) and started
   again: every line of flows.log is a row once the agent has caught up; rows inserted
   twice (a batch whose answer was lost) are counted by (run_id, seq) and reported.
3. Agent restart: batches spooled while the server was away when the agent stopped are
   sent by the next agent run, before its own, and every line of both runs is a row.
4. Spool cap: with the server unreachable and a 1 MB spool, the oldest batches are
   dropped and counted, the spool stays under its cap, flows.log keeps every line.
"""

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

USER, PASSWORD = "pf_writer", "s3cret-pw"


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   %s" % name)
        else:
            self.failed += 1
            print("FAIL %s %s" % (name, detail))
        sys.stdout.flush()
        return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ClickHouse:
    """A clickhouse-server of our own: config, data and logs under @root."""

    def __init__(self, root):
        self.root = root
        self.http = free_port()
        self.tcp = free_port()
        self.proc = None
        os.makedirs(root, exist_ok=True)
        for d in ("data", "tmp", "user_files", "format_schemas"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        with open(os.path.join(root, "config.xml"), "w") as f:
            f.write("""<?xml version="1.0"?>
<yandex>
  <logger><level>information</level><log>{r}/server.log</log><errorlog>{r}/error.log</errorlog></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{r}/data/</path>
  <tmp_path>{r}/tmp/</tmp_path>
  <user_files_path>{r}/user_files/</user_files_path>
  <format_schema_path>{r}/format_schemas/</format_schema_path>
  <users_config>{r}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <timezone>UTC</timezone>
</yandex>
""".format(r=root, http=self.http, tcp=self.tcp))
        with open(os.path.join(root, "users.xml"), "w") as f:
            f.write("""<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <{u}><password>{p}</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></{u}>
  </users>
  <quotas><default></default></quotas>
</yandex>
""".format(u=USER, p=PASSWORD))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.http

    def start(self, timeout=60):
        log = open(os.path.join(self.root, "stdout.log"), "ab")
        self.proc = subprocess.Popen(["clickhouse-server", "--config-file=%s/config.xml" % self.root],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     cwd=self.root)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("clickhouse-server exited with %s; see %s/error.log" %
                                   (self.proc.returncode, self.root))
            try:
                if self.sql("SELECT 1").strip() == "1":
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("clickhouse-server did not answer in %ds" % timeout)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def sql(self, q, user="default", password=""):
        params = {"query": q, "output_format_json_quote_64bit_integers": "0"}
        req = urllib.request.Request(self.url + "/?" + urllib.parse.urlencode(params), data=b"",
                                     method="POST")
        req.add_header("X-ClickHouse-User", user)
        if password:
            req.add_header("X-ClickHouse-Key", password)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()


def create_schema(agent, ch):
    out = subprocess.run([agent, "clickhouse-schema"], stdout=subprocess.PIPE, check=True).stdout.decode()
    for stmt in out.split(";"):
        if stmt.strip():
            ch.sql(stmt)


# ---- traffic: a TCP echo server and a UDP sink, clients with arguments we know ----

SERVER = r"""
import socket, sys, threading
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", 0)); t.listen(64)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print(t.getsockname()[1], u.getsockname()[1], flush=True)
def udp():
    while True:
        u.recvfrom(65536)
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = t.accept()
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b[:64])
    c.close()
"""

CLIENT = r"""
import socket, sys
tport, uport, n, mark = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = socket.create_connection(("127.0.0.1", tport)); c.sendall(b"x" * n); c.shutdown(socket.SHUT_WR)
while c.recv(65536):
    pass
c.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"y" * (n // 3 + 1), ("127.0.0.1", uport))
"""


class Traffic:
    def __init__(self):
        self.srv = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
        self.tport, self.uport = map(int, self.srv.stdout.readline().split())
        self.n = 0

    def run(self, seconds, tag):
        end = time.time() + seconds
        while time.time() < end:
            self.n += 1
            subprocess.run([sys.executable, "-c", CLIENT, str(self.tport), str(self.uport),
                            str(100 + self.n * 37), "%s-%d" % (tag, self.n)], timeout=20)
            time.sleep(0.05)

    def stop(self):
        if self.srv.poll() is None:
            self.srv.kill()
            self.srv.wait()


class Agent:
    def __init__(self, agent, outdir, extra):
        self.errlog = os.path.join(outdir + ".stderr")
        self.err = open(self.errlog, "wb")
        # A runtime directory of its own: the PID file there is a lock (one
        # agent per directory), which agents of other runs must not hold.
        self.p = subprocess.Popen([agent, "run", "--output-dir", outdir, "--flush-interval", "2",
                                   "--include-loopback", "--runtime-dir", outdir + ".run"] + extra,
                                  stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 30
        while time.time() < deadline:
            if "ready" in self.stderr():
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("agent not ready: %s" % self.stderr())

    def stderr(self):
        with open(self.errlog, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()
        return self.p.returncode


# ---- comparison ----

def file_key(r):
    """What identifies a line's content, with nulls as the table stores them."""
    return (r["start_time"], r["end_time"], r["source_ip"] or "", r["source_port"] or 0,
            r["dest_ip"] or "", r["dest_port"] or 0, r["proto"], r["action"], r["reporter"],
            r["process_name"], r["process_id"], tuple(r["process_args"]), r["bytes_in"],
            r["bytes_out"], r["packets_in"], r["packets_out"], r["num_flows"],
            r["num_flows_started"], r["num_flows_completed"], r["tcp_mean_smooth_rtt"],
            r["host"])


def row_key(r):
    return (r["st"], r["et"], r["source_ip"], r["source_port"], r["dest_ip"], r["dest_port"],
            r["proto"], r["action"], r["reporter"], r["process_name"], r["process_id"],
            tuple(r["process_args"]), r["bytes_in"], r["bytes_out"], r["packets_in"],
            r["packets_out"], r["num_flows"], r["num_flows_started"], r["num_flows_completed"],
            r["tcp_mean_smooth_rtt"], r["host"])


def file_lines(outdir):
    with open(os.path.join(outdir, "flows.log")) as f:
        return [json.loads(x) for x in f if x.strip()]


def table_rows(ch):
    q = ("SELECT toUInt32(start_time) AS st, toUInt32(end_time) AS et, source_ip, source_port, "
         "dest_ip, dest_port, proto, action, reporter, process_name, process_id, process_args, "
         "bytes_in, bytes_out, packets_in, packets_out, num_flows, num_flows_started, "
         "num_flows_completed, tcp_mean_smooth_rtt, host, run_id, seq "
         "FROM procflow.flows FORMAT JSONEachRow")
    return [json.loads(x) for x in ch.sql(q).splitlines() if x.strip()]


def readme_queries():
    """The three SQL examples of README.md's ClickHouse section."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
    with open(path) as f:
        text = f.read()
    blocks = text.split("```sql\n")[1:]
    qs = [b.split("```")[0] for b in blocks if "GROUP BY" in b.split("```")[0]]
    return list(zip(["top", "who", "out"], qs[:3]))


def case_steady(agent, res, tmp):
    ch = ClickHouse(os.path.join(tmp, "ch1"))
    traffic = None
    ag = None
    try:
        ch.start()
        res.check("clickhouse-server %s runs on 127.0.0.1:%d" % (ch.sql("SELECT version()").strip(), ch.http), True)
        create_schema(agent, ch)
        pwfile = os.path.join(tmp, "pw1")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        out = os.path.join(tmp, "out1")
        traffic = Traffic()
        ag = Agent(agent, out, ["--clickhouse-url", ch.url, "--clickhouse-user", USER,
                                "--clickhouse-password-file", pwfile, "--clickhouse-batch", "20",
                                "--clickhouse-batch-interval", "1"])
        traffic.run(8, "steady")
        rc = ag.stop()
        res.check("agent exits 0", rc == 0, ag.stderr())
        lines = file_lines(out)
        rows = table_rows(ch)
        res.check("flows.log has lines of the test's clients",
                  any("steady-" in " ".join(r["process_args"]) for r in lines), str(len(lines)))
        want = collections.Counter(file_key(r) for r in lines)
        got = collections.Counter(row_key(r) for r in rows)
        missing = want - got
        extra = got - want
        res.check("every line of flows.log is a row (%d lines, %d rows)" % (len(lines), len(rows)),
                  not missing and len(lines) > 0, "missing %d, e.g. %r" % (sum(missing.values()), list(missing)[:1]))
        res.check("no row that is not a line", not extra, "extra %r" % list(extra)[:1])
        seqs = sorted(r["seq"] for r in rows)
        res.check("seq numbers 1..N, once each", seqs == list(range(1, len(rows) + 1)), str(seqs[:10]))
        res.check("the agent reports what it inserted",
                  ("clickhouse: %d rows inserted" % len(lines)) in ag.stderr(), ag.stderr()[-400:])
        spool = os.path.join(out, "clickhouse-spool")
        res.check("the spool is empty at the end", os.path.isdir(spool) and not os.listdir(spool),
                  str(os.listdir(spool) if os.path.isdir(spool) else None))
        # The README's three example queries, as written there, answer on this server.
        for title, q in readme_queries():
            q = q.replace("198.18.0.1", "127.0.0.1").replace("now() - 3600", "now() - 86400")
            if title == "out":  # loopback is all this test has
                q = q.replace(" AND dest_type != 'hep' AND dest_ip NOT LIKE '127.%' AND dest_ip != '::1'", "")
            try:
                ans = ch.sql(q.rstrip().rstrip(";") + " FORMAT TSV")
            except Exception as e:
                ans = "error: %r" % e
            res.check("README query '%s' runs and names the test's clients" % title,
                      os.path.basename(sys.executable) in ans, ans[:300])
    finally:
        if ag:
            ag.stop()
        if traffic:
            traffic.stop()
        ch.stop()


def case_outage(agent, res, tmp):
    ch = ClickHouse(os.path.join(tmp, "ch2"))
    traffic = None
    ag = None
    try:
        ch.start()
        create_schema(agent, ch)
        pwfile = os.path.join(tmp, "pw2")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        out = os.path.join(tmp, "out2")
        spool = os.path.join(tmp, "spool2")
        traffic = Traffic()
        ag = Agent(agent, out, ["--clickhouse-url", ch.url, "--clickhouse-user", USER,
                                "--clickhouse-password-file", pwfile, "--clickhouse-batch", "20",
                                "--clickhouse-batch-interval", "1", "--clickhouse-spool-dir", spool,
                                "--clickhouse-timeout", "3"])
        traffic.run(5, "before")
        ch.stop()
        traffic.run(8, "during")
        spooled = [n for n in os.listdir(spool) if n.endswith(".batch")]
        res.check("while the server is down, batches wait in the spool (%d)" % len(spooled),
                  len(spooled) > 0)
        res.check("the agent says inserts fail and batches wait",
                  "insert failed" in ag.stderr(), ag.stderr()[-400:])
        ch.start()
        traffic.run(5, "after")
        # Wait until the spool has drained (the backoff is at most 60 s).
        deadline = time.time() + 90
        while time.time() < deadline and [n for n in os.listdir(spool) if n.endswith(".batch")]:
            time.sleep(0.5)
        rc = ag.stop()
        res.check("agent exits 0", rc == 0, ag.stderr()[-400:])
        res.check("the agent says it inserts again", "inserting again" in ag.stderr(), ag.stderr()[-600:])
        lines = file_lines(out)
        rows = table_rows(ch)
        want = collections.Counter(file_key(r) for r in lines)
        got = collections.Counter(row_key(r) for r in rows)
        missing = want - got
        res.check("no line missing after the outage (%d lines, %d rows)" % (len(lines), len(rows)),
                  not missing and len(lines) > 0, "missing %d" % sum(missing.values()))
        res.check("lines from during the outage are rows",
                  any("during-" in " ".join(r["process_args"]) for r in rows))
        uniq = len({(r["run_id"], r["seq"]) for r in rows})
        dups = len(rows) - uniq
        print("     duplicates after the outage: %d rows inserted twice (of %d)" % (dups, len(rows)))
        res.check("distinct (run_id, seq) = lines; duplicates are copies of lines",
                  uniq == len(lines) and set(got) == set(want),
                  "uniq %d lines %d" % (uniq, len(lines)))
        res.check("ordered delivery: seq covers 1..N", sorted({r["seq"] for r in rows}) ==
                  list(range(1, len(lines) + 1)))
    finally:
        if ag:
            ag.stop()
        if traffic:
            traffic.stop()
        ch.stop()


def case_restart(agent, res, tmp):
    ch = ClickHouse(os.path.join(tmp, "ch4"))
    traffic = None
    ag = None
    try:
        out1, out2 = os.path.join(tmp, "out4a"), os.path.join(tmp, "out4b")
        spool = os.path.join(tmp, "spool4")
        opts = ["--clickhouse-url", ch.url, "--clickhouse-batch", "20",
                "--clickhouse-batch-interval", "1", "--clickhouse-spool-dir", spool,
                "--clickhouse-timeout", "2"]
        traffic = Traffic()
        # Run 1: the server is not there at all.
        ag = Agent(agent, out1, opts)
        traffic.run(4, "first")
        rc = ag.stop()
        left = [n for n in os.listdir(spool) if n.endswith(".batch")]
        res.check("run 1 exits 0 with its batches left in the spool (%d)" % len(left),
                  rc == 0 and len(left) > 0, ag.stderr()[-300:])
        ch.start()
        create_schema(agent, ch)
        # Run 2: the server is back; run 1's batches go first.
        ag = Agent(agent, out2, opts)
        res.check("run 2 says batches from an earlier run wait", "from an earlier run" in ag.stderr(),
                  ag.stderr()[-300:])
        traffic.run(4, "second")
        rc = ag.stop()
        res.check("run 2 exits 0", rc == 0)
        lines = file_lines(out1) + file_lines(out2)
        rows = table_rows(ch)
        missing = collections.Counter(file_key(r) for r in lines) - collections.Counter(row_key(r) for r in rows)
        res.check("every line of both runs is a row (%d lines, %d rows)" % (len(lines), len(rows)),
                  not missing and len(file_lines(out1)) > 0, "missing %d" % sum(missing.values()))
        runs = ch.sql("SELECT run_id, min(seq), max(seq), count() FROM procflow.flows GROUP BY run_id "
                      "ORDER BY min(start_time) FORMAT TSV").split("\n")
        res.check("two runs, each with its own seq 1..N", len([r for r in runs if r]) == 2, str(runs))
    finally:
        if ag:
            ag.stop()
        if traffic:
            traffic.stop()
        ch.stop()


def case_spool_cap(agent, res, tmp):
    out = os.path.join(tmp, "out3")
    spool = os.path.join(tmp, "spool3")
    dead = "http://127.0.0.1:%d" % free_port()  # nothing listens there
    ag = None
    srv = None
    try:
        ag = Agent(agent, out, ["--clickhouse-url", dead, "--clickhouse-batch", "100",
                                "--clickhouse-batch-interval", "1", "--clickhouse-spool-dir", spool,
                                "--clickhouse-spool-max-mb", "1", "--aggregation", "0"])
        # Many distinct flows: one UDP datagram to each of 2,500 ports.
        code = ("import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "for p in range(30000,32500): u.sendto(b'z',('127.0.0.1',p))\n")
        subprocess.run([sys.executable, "-c", code], timeout=60)
        time.sleep(5)
        total = sum(os.path.getsize(os.path.join(spool, n)) for n in os.listdir(spool))
        res.check("the spool stays under its cap (%d bytes)" % total, 0 < total <= 1 << 20)
        rc = ag.stop()
        err = ag.stderr()
        lines = file_lines(out)
        res.check("flows.log has every line regardless (%d)" % len(lines), len(lines) >= 2500)
        res.check("the agent says the spool is full and how many rows went", "the spool is full" in err, err[-600:])
        import re
        m = re.search(r"(\d+) rows wait in the spool; dropped: (\d+) \(spool full\)", err)
        ok = m is not None and int(m.group(1)) + int(m.group(2)) == len(lines) and int(m.group(2)) > 0
        res.check("rows waiting + rows dropped = lines written", ok, m.group(0) if m else err[-400:])
        res.check("agent exits 0", rc == 0)
    finally:
        if ag:
            ag.stop()
        del srv


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", required=True)
    ap.add_argument("--bindir", required=False)
    args = ap.parse_args()
    agent = os.path.abspath(args.agent)
    res = Results()
    if os.geteuid() != 0:
        res.check("running as root", False, "the agent needs root")
    elif not shutil.which("clickhouse-server"):
        res.check("clickhouse-server installed (scripts/install-deps.sh)", False)
    else:
        tmp = tempfile.mkdtemp(prefix="pfe2e-%d-ch-" % os.getpid())
        try:
            for case in (case_steady, case_outage, case_restart, case_spool_cap):
                try:
                    case(agent, res, tmp)
                except Exception as e:
                    res.check("%s ran to the end" % case.__name__, False, repr(e))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
