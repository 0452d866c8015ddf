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
5. Secrets: a password given in the URL (right or wrong) appears in no line of the agent's
   stderr, yet the rows arrive; a password file group or others can read is refused
   (exit 2, saying why); a bad URL's message masks its password.
6. Stop within one timeout: against a server that accepts and never answers, with a
   backlog in the spool, SIGTERM (sent while a request hangs) ends the agent within one
   request timeout and a margin, the batches stay in the spool, and the next run, against
   a real server, inserts every line of the stopped run, none twice, except those of one
   batch the test cuts as a power cut could (set aside as .bad, counted and logged).
7. Configuration: the sink set up by a YAML file (clickhouse* keys, the password in the
   URL) and a PROCFLOW_CLICKHOUSE_* variable inserts every line; --print-config shows
   the URL with the password masked and where each value came from; a reload changes the
   batch size live and keeps the table (restart only); no stderr line has the password.
"""

import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, run_main, terminate, workdir  # noqa: E402

USER, PASSWORD = "pf_writer", "s3cret-pw"


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
        if self.proc is not None:
            terminate(self.proc, 30)

    def sql(self, q, user="default", password=""):
        params = {"query": q, "output_format_json_quote_64bit_integers": "0"}
        req = urllib.request.Request(self.url + "/?" + urllib.parse.urlencode(params), data=b"",
                                     method="POST")
        req.add_header("X-ClickHouse-User", user)
        if password:
            req.add_header("X-ClickHouse-Key", password)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()


def write_pwfile(path):
    """The password file, 0600 as the agent demands."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(PASSWORD + "\n")
    return path


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


def start_agent(agent, outdir, extra, env=None):
    """An agent on loopback writing to @outdir, its runtime directory beside
    it; raises when it does not get ready."""
    a = Agent(agent, ["run", "--output-dir", outdir, "--flush-interval", "2",
                      "--include-loopback", "--runtime-dir", outdir + ".run"] + extra, env=env)
    a.start()
    ok, why = a.wait_ready(30)
    if not ok:
        raise RuntimeError("agent not ready: %s" % why)
    return a


@contextlib.contextmanager
def case_tools(tmp, name):
    """A case's ClickHouse server (not started yet) and its traffic, both
    stopped at the end of the case, also on failure."""
    ch = ClickHouse(os.path.join(tmp, name))
    traffic = None
    try:
        traffic = Traffic()
        yield ch, traffic
    finally:
        if traffic:
            traffic.stop()
        ch.stop()


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
    """Every line the agent wrote: rotated files oldest first, then flows.log
    (other loopback traffic on a busy host can make it rotate mid-test)."""
    rotated = sorted((n for n in os.listdir(outdir) if re.match(r"flows\.log\.\d+$", n)),
                     key=lambda n: -int(n.rsplit(".", 1)[1]))
    out = []
    for name in rotated + ["flows.log"]:
        with open(os.path.join(outdir, name)) as f:
            out += [json.loads(x) for x in f if x.strip()]
    return out


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
    with case_tools(tmp, "ch1") as (ch, traffic):
        ch.start()
        res.check("clickhouse-server %s runs on 127.0.0.1:%d" % (ch.sql("SELECT version()").strip(), ch.http), True)
        create_schema(agent, ch)
        pwfile = write_pwfile(os.path.join(tmp, "pw1"))
        out = os.path.join(tmp, "out1")
        ag = start_agent(agent, out, ["--clickhouse-url", ch.url, "--clickhouse-user", USER,
                                      "--clickhouse-password-file", pwfile,
                                      "--clickhouse-batch", "20",
                                      "--clickhouse-batch-interval", "1"])
        traffic.run(5, "steady")
        rc, _ = ag.stop(60)
        res.check("agent exits 0", rc == 0, ag.log_text())
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
                  ("clickhouse: %d rows inserted" % len(lines)) in ag.log_text(),
                  ag.log_text()[-400:])
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


def case_outage(agent, res, tmp):
    with case_tools(tmp, "ch2") as (ch, traffic):
        ch.start()
        create_schema(agent, ch)
        pwfile = write_pwfile(os.path.join(tmp, "pw2"))
        out = os.path.join(tmp, "out2")
        spool = os.path.join(tmp, "spool2")
        ag = start_agent(agent, out, ["--clickhouse-url", ch.url, "--clickhouse-user", USER,
                                      "--clickhouse-password-file", pwfile,
                                      "--clickhouse-batch", "20", "--clickhouse-batch-interval", "1",
                                      "--clickhouse-spool-dir", spool, "--clickhouse-timeout", "3"])
        traffic.run(3, "before")
        ch.stop()
        traffic.run(5, "during")
        spooled = [n for n in os.listdir(spool) if n.endswith(".batch")]
        res.check("while the server is down, batches wait in the spool (%d)" % len(spooled),
                  len(spooled) > 0)
        res.check("the agent says inserts fail and batches wait",
                  "insert failed" in ag.log_text(), ag.log_text()[-400:])
        ch.start()
        traffic.run(3, "after")
        # Wait until the spool has drained (the backoff is at most 60 s).
        deadline = time.time() + 90
        while time.time() < deadline and [n for n in os.listdir(spool) if n.endswith(".batch")]:
            time.sleep(0.5)
        rc, _ = ag.stop(60)
        res.check("agent exits 0", rc == 0, ag.log_text()[-400:])
        res.check("the agent says it inserts again", "inserting again" in ag.log_text(),
                  ag.log_text()[-600:])
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


def case_restart(agent, res, tmp):
    with case_tools(tmp, "ch4") as (ch, traffic):
        out1, out2 = os.path.join(tmp, "out4a"), os.path.join(tmp, "out4b")
        spool = os.path.join(tmp, "spool4")
        opts = ["--clickhouse-url", ch.url, "--clickhouse-batch", "20",
                "--clickhouse-batch-interval", "1", "--clickhouse-spool-dir", spool,
                "--clickhouse-timeout", "2"]
        # Run 1: the server is not there at all.
        ag = start_agent(agent, out1, opts)
        traffic.run(3, "first")
        rc, _ = ag.stop(60)
        left = [n for n in os.listdir(spool) if n.endswith(".batch")]
        res.check("run 1 exits 0 with its batches left in the spool (%d)" % len(left),
                  rc == 0 and len(left) > 0, ag.log_text()[-300:])
        ch.start()
        create_schema(agent, ch)
        # Run 2: the server is back; run 1's batches go first.
        ag = start_agent(agent, out2, opts)
        res.check("run 2 says batches from an earlier run wait",
                  "from an earlier run" in ag.log_text(), ag.log_text()[-300:])
        traffic.run(3, "second")
        rc, _ = ag.stop(60)
        res.check("run 2 exits 0", rc == 0)
        lines = file_lines(out1) + file_lines(out2)
        rows = table_rows(ch)
        missing = collections.Counter(file_key(r) for r in lines) - collections.Counter(row_key(r) for r in rows)
        res.check("every line of both runs is a row (%d lines, %d rows)" % (len(lines), len(rows)),
                  not missing and len(file_lines(out1)) > 0, "missing %d" % sum(missing.values()))
        runs = ch.sql("SELECT run_id, min(seq), max(seq), count() FROM procflow.flows GROUP BY run_id "
                      "ORDER BY min(start_time) FORMAT TSV").split("\n")
        res.check("two runs, each with its own seq 1..N", len([r for r in runs if r]) == 2, str(runs))


def case_spool_cap(agent, res, tmp):
    out = os.path.join(tmp, "out3")
    spool = os.path.join(tmp, "spool3")
    dead = "http://127.0.0.1:%d" % free_port()  # nothing listens there
    ag = start_agent(agent, out, ["--clickhouse-url", dead, "--clickhouse-batch", "100",
                                  "--clickhouse-batch-interval", "1",
                                  "--clickhouse-spool-dir", spool,
                                  "--clickhouse-spool-max-mb", "1", "--aggregation", "0"])
    # Many distinct flows: one UDP datagram to each of 2,500 ports.
    code = ("import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "for p in range(30000,32500): u.sendto(b'z',('127.0.0.1',p))\n")
    subprocess.run([sys.executable, "-c", code], timeout=60)
    # Wait for the agent to say the spool filled up (not a fixed sleep).
    ag.wait_line("the spool is full", timeout=60)
    total = 0
    for n in os.listdir(spool):
        try:
            total += os.path.getsize(os.path.join(spool, n))
        except FileNotFoundError:
            pass  # a batch file the agent renamed or removed since the listing
    res.check("the spool stays under its cap (%d bytes)" % total, 0 < total <= 1 << 20)
    rc, _ = ag.stop(60)
    err = ag.log_text()
    lines = file_lines(out)
    res.check("flows.log has every line regardless (%d)" % len(lines), len(lines) >= 2500)
    res.check("the agent says the spool is full and how many rows went", "the spool is full" in err, err[-600:])
    m = re.search(r"(\d+) rows wait in the spool; dropped: (\d+) \(spool full\)", err)
    ok = m is not None and int(m.group(1)) + int(m.group(2)) == len(lines) and int(m.group(2)) > 0
    res.check("rows waiting + rows dropped = lines written", ok, m.group(0) if m else err[-400:])
    res.check("agent exits 0", rc == 0)


def case_secrets(agent, res, tmp):
    wrong = "wrong-pw-7Qz"
    with case_tools(tmp, "ch5") as (ch, traffic):
        ch.start()
        create_schema(agent, ch)
        hostport = ch.url[len("http://"):]
        # The right password in the URL: rows arrive, the password is in no log line.
        out = os.path.join(tmp, "out5")
        url = "http://%s:%s@%s" % (USER, PASSWORD, hostport)
        ag = start_agent(agent, out, ["--clickhouse-url", url, "--clickhouse-batch", "20",
                                      "--clickhouse-batch-interval", "1"])
        traffic.run(4, "secret")
        rc, _ = ag.stop(60)
        err = ag.log_text()
        lines = file_lines(out)
        rows = table_rows(ch)
        res.check("password in the URL: agent exits 0 and every line is a row (%d lines, %d rows)"
                  % (len(lines), len(rows)), rc == 0 and len(lines) > 0 and len(rows) == len(lines),
                  err[-400:])
        res.check("the password in the URL is in no line of stderr", PASSWORD not in err,
                  [x for x in err.splitlines() if PASSWORD in x][:2])
        with open(os.path.join(out, "flows.log")) as f:
            text = f.read()
        # This agent's lines by its PID: another test's agent on the host (its
        # loopback flows are logged too) has other arguments.
        own = [r for r in file_lines(out) if r["process_name"].endswith("/procflow")
               and r["process_id"] == str(ag.proc.pid)]
        res.check("the agent's own flows to the server are logged, the password redacted "
                  "from its arguments (%d lines)" % len(own),
                  own and PASSWORD not in text and "[REDACTED]" in " ".join(own[0]["process_args"]),
                  own[0]["process_args"] if own else None)
        res.check("the start line names the server without the password",
                  ("at http://%s as %s with a password" % (hostport, USER)) in err, err[:600])
        # A wrong password: the failure is logged, the password is not.
        out = os.path.join(tmp, "out5w")
        url = "http://%s:%s@%s" % (USER, wrong, hostport)
        ag = start_agent(agent, out, ["--clickhouse-url", url, "--clickhouse-batch", "5",
                                      "--clickhouse-batch-interval", "1",
                                      "--clickhouse-timeout", "2"])
        traffic.run(1, "wrong")
        ag.wait_line("insert failed", timeout=30)
        rc, _ = ag.stop(60)
        err = ag.log_text()
        res.check("a wrong password: the failed insert is logged", "insert failed" in err, err[-400:])
        res.check("a wrong password is in no line of stderr", wrong not in err,
                  [x for x in err.splitlines() if wrong in x][:2])
        # A password file others can read is refused before anything starts.
        pwfile = os.path.join(tmp, "pw5")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pwfile, 0o644)
        p = subprocess.run([agent, "run", "--output-dir", os.path.join(tmp, "out5m"),
                            "--clickhouse-url", ch.url, "--clickhouse-user", USER,
                            "--clickhouse-password-file", pwfile],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        e = p.stderr.decode(errors="replace")
        res.check("a 0644 password file: exit 2, naming the file and its mode",
                  p.returncode == 2 and pwfile in e and "0644" in e, "rc %d: %s" % (p.returncode, e[-300:]))
        res.check("... and the password is not printed", PASSWORD not in e)
        # A URL the agent refuses: the message quotes it with the password masked.
        p = subprocess.run([agent, "run", "--clickhouse-url", "ftp://%s:%s@%s" % (USER, PASSWORD, hostport)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        e = p.stderr.decode(errors="replace")
        res.check("a bad URL: exit 2, password masked in the message",
                  p.returncode == 2 and PASSWORD not in e and ("ftp://%s:***@" % USER) in e,
                  "rc %d: %s" % (p.returncode, e[-300:]))


class MuteServer:
    """Accepts HTTP connections on 127.0.0.1, reads the requests, never answers."""

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.conns = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c):
        try:
            while c.recv(65536):
                with self.lock:
                    self.requests += 1
        except OSError:
            pass

    def count(self):
        with self.lock:
            return self.requests

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.conns:
            c.close()


def spooled(spool):
    return sorted(n for n in os.listdir(spool) if n.endswith(".batch"))


def case_stop(agent, res, tmp):
    timeout = 5
    with case_tools(tmp, "ch6") as (ch, traffic), contextlib.closing(MuteServer()) as mute:
        out1, out2 = os.path.join(tmp, "out6a"), os.path.join(tmp, "out6b")
        spool = os.path.join(tmp, "spool6")
        opts = ["--clickhouse-batch", "10", "--clickhouse-batch-interval", "1",
                "--clickhouse-spool-dir", spool, "--clickhouse-timeout", str(timeout)]
        ag = start_agent(agent, out1,
                         ["--clickhouse-url", "http://127.0.0.1:%d" % mute.port] + opts)
        traffic.run(5, "mute")
        # A backlog, and a request that has just started to hang: SIGTERM now.
        deadline = time.time() + 60
        while time.time() < deadline and len(spooled(spool)) < 3:
            time.sleep(0.2)
        seen = mute.count()
        while time.time() < deadline and mute.count() == seen:
            time.sleep(0.05)
        before = spooled(spool)
        t0 = time.time()
        ag.proc.send_signal(signal.SIGTERM)
        try:
            rc = ag.proc.wait(timeout=4 * timeout)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.time() - t0
        print("     SIGTERM to exit with a hanging request: %.1f s (timeout %d s)" % (took, timeout))
        res.check("SIGTERM with a hanging request: exit 0 within the timeout + 3 s (%.1f s)" % took,
                  rc == 0 and took <= timeout + 3, ag.log_text()[-400:])
        ag.stop()
        left = spooled(spool)
        res.check("the backlog stays in the spool (%d batches before SIGTERM, %d after)" %
                  (len(before), len(left)), len(before) >= 3 and set(before) <= set(left))
        mute.close()
        # A power cut would leave a cut batch: cut the newest in the middle of a line.
        cut = left[-1]
        cut_rows = int(cut.split("-")[1].split(".")[0])
        cut_path = os.path.join(spool, cut)
        with open(cut_path, "rb") as f:
            data = f.read()
        with open(cut_path, "wb") as f:
            f.write(data[:data.rindex(b"\n", 0, len(data) - 1) + 5])
        # The next run, against a real server, sends them first. (Other loopback traffic on
        # the host is logged too, so run 2 is judged only on run 1's lines.)
        ch.start()
        create_schema(agent, ch)
        ag = start_agent(agent, out2, ["--clickhouse-url", ch.url, "--clickhouse-batch", "1000",
                                       "--clickhouse-batch-interval", "1",
                                       "--clickhouse-spool-dir", spool,
                                       "--clickhouse-timeout", str(timeout)])
        deadline = time.time() + 120
        while time.time() < deadline and set(left) & set(spooled(spool)):
            time.sleep(0.3)
        rc, _ = ag.stop(60)
        lines = file_lines(out1)
        rows = table_rows(ch)
        missing = collections.Counter(file_key(r) for r in lines) - \
            collections.Counter(row_key(r) for r in rows)
        res.check("the next run inserts every line of the stopped run but the cut batch's "
                  "(%d lines, %d rows, %d missing)" % (len(lines), len(rows), sum(missing.values())),
                  rc == 0 and sum(missing.values()) == cut_rows and len(lines) > cut_rows,
                  "missing %d, the cut batch had %d" % (sum(missing.values()), cut_rows))
        res.check("the cut batch is set aside as .bad, counted and logged",
                  os.path.exists(cut_path + ".bad") and
                  ("1 spooled batches are damaged (cut or empty after a crash or power cut): "
                   "%d rows not sent" % cut_rows) in ag.log_text() and
                  ("%d (damaged in the spool)" % cut_rows) in ag.log_text(),
                  ag.log_text()[-600:])
        uniq = len({(r["run_id"], r["seq"]) for r in rows})
        res.check("no row twice (%d rows)" % len(rows), uniq == len(rows), "uniq %d" % uniq)


def case_config(agent, res, tmp):
    with case_tools(tmp, "ch7") as (ch, traffic):
        ch.start()
        create_schema(agent, ch)
        out = os.path.join(tmp, "out7")
        spool = os.path.join(tmp, "spool7")
        hostport = ch.url[len("http://"):]
        cfg = os.path.join(tmp, "procflow7.yaml")

        def write_cfg(rows, table):
            with open(cfg, "w") as f:
                f.write("clickhouseUrl: http://%s:%s@%s\n" % (USER, PASSWORD, hostport))
                f.write("clickhouseTable: %s\nclickhouseBatchRows: %d\n" % (table, rows))
                f.write("clickhouseBatchInterval: 1s\nclickhouseSpoolDirectory: %s\n" % spool)

        write_cfg(1000, "flows")
        env = {"PROCFLOW_CLICKHOUSE_TIMEOUT": "4"}
        p = subprocess.run([agent, "run", "--config", cfg, "--print-config"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=dict(os.environ, **env), timeout=30)
        pc = p.stdout.decode(errors="replace")
        lines = {x.split(":")[0]: x for x in pc.splitlines() if x.startswith("clickhouse")}
        res.check("--print-config: the URL from the file, its password masked",
                  p.returncode == 0 and PASSWORD not in pc + p.stderr.decode(errors="replace") and
                  ("http://%s:***@%s" % (USER, hostport)) in lines.get("clickhouseUrl", "") and
                  ("# file %s:1" % cfg) in lines.get("clickhouseUrl", ""), pc)
        res.check("--print-config: the timeout from PROCFLOW_CLICKHOUSE_TIMEOUT",
                  "clickhouseTimeout: 4s" in lines.get("clickhouseTimeout", "") and
                  "environment PROCFLOW_CLICKHOUSE_TIMEOUT" in lines.get("clickhouseTimeout", ""),
                  lines.get("clickhouseTimeout"))
        ag = start_agent(agent, out, ["--config", cfg], env)
        traffic.run(4, "cfg")
        # A reload: the batch size changes live, the table only on restart.
        write_cfg(7, "other")
        ag.proc.send_signal(signal.SIGHUP)
        ag.wait_line("reloaded", timeout=30)
        err = ag.log_text()
        res.check("reload: clickhouseBatchRows changes live, clickhouseTable on restart",
                  "clickhouseBatchRows=7" in err and
                  "clickhouseTable changes only on restart; keeping flows" in err, err[-600:])
        traffic.run(2, "cfg2")
        deadline = time.time() + 60
        while time.time() < deadline and spooled(spool):
            time.sleep(0.3)
        rc, _ = ag.stop(60)
        err = ag.log_text()
        res.check("the agent started from the file inserts (spool %s used)" % spool,
                  rc == 0 and os.path.isdir(spool) and
                  ("at http://%s as %s with a password" % (hostport, USER)) in err, err[-600:])
        mine = [r for r in file_lines(out) if "cfg" in " ".join(r["process_args"])]
        rows = table_rows(ch)
        missing = collections.Counter(file_key(r) for r in mine) - \
            collections.Counter(row_key(r) for r in rows)
        res.check("every line of the test's clients is a row (%d lines, %d rows in all)" %
                  (len(mine), len(rows)), len(mine) > 0 and not missing,
                  "missing %d" % sum(missing.values()))
        res.check("the password is in no stderr line", PASSWORD not in err,
                  [x for x in err.splitlines() if PASSWORD in x][:2])


CASES = {"steady": case_steady, "outage": case_outage, "restart": case_restart,
         "spool_cap": case_spool_cap, "secrets": case_secrets,
         "stop": case_stop, "config": case_config}


def options(ap):
    ap.add_argument("--case", action="append", choices=sorted(CASES),
                    help="run only this case (repeatable; default: all)")


def body(res, args):
    if not shutil.which("clickhouse-server"):
        res.check("clickhouse-server installed (scripts/install-deps.sh)", False)
        return
    for name in args.case or list(CASES):
        case = CASES[name]
        # A directory per case: its end also stops the agents the case started.
        with workdir(args, "pfe2e-%d-ch-%s-" % (os.getpid(), name)) as tmp:
            try:
                case(args.agent, res, tmp)
            except Exception as e:
                res.check("%s ran to the end" % case.__name__, False, repr(e))


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__.splitlines()[0], options))
