#!/usr/bin/env python3
"""End-to-end: `procflow query` on generated flow files and on a real flows.log.

    python3 tests/e2e/test_query.py --agent build/procflow --bindir build/e2e   (as root)

Generated files (tests/e2e/flowgen.py) let the test know every line, so each filter's
output is compared with the lines Python selects by the same rule: exactly those lines,
in file order (rotated and compressed files first, oldest first). Corrupt and truncated
lines are mixed in and must be skipped and counted. --follow is checked across a
rotation and a truncation. Then the agent records real loopback traffic of a client this
test starts, and query must find that client by process, arguments, PID and address.
Only loopback traffic; every process started here is stopped by its own PID.
"""

import argparse
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flowgen  # noqa: E402


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


def query(agent, args, timeout=60):
    p = subprocess.run([agent, "query"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def in_net(text, net):
    if text is None:
        return False
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return False
    if a.version != net.version:
        if a.version == 6 and a.ipv4_mapped is not None:
            a = a.ipv4_mapped
        else:
            return False
    return a in net


def gen_dir(tmp):
    """flows.log.2.zst (oldest), flows.log.1, flows.log, with corrupt lines.
    Returns (dir, the valid records in read order, the number of corrupt lines)."""
    d = os.path.join(tmp, "gen")
    os.mkdir(d)
    recs = list(flowgen.lines(n=3000, seed=7))
    parts = [recs[:1000], recs[1000:2000], recs[2000:]]
    bad = [
        '{"start_time":1795790000,"end_time":17957',   # cut by a crash
        'garbage that is not json',
        '{"start_time":1,"process_name":"x"}}',        # trailing junk
        '\x00\x00\x00',
    ]
    names = ["flows.log.2", "flows.log.1", "flows.log"]
    for i, (name, part) in enumerate(zip(names, parts)):
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            for j, (_, text) in enumerate(part):
                f.write(text + "\n")
                if j == 500:
                    f.write(bad[i] + "\n")
            if i == 2:
                f.write(bad[3] + "\n")
    subprocess.run(["zstd", "-q", "--rm", os.path.join(d, "flows.log.2")], check=True)
    return d, recs, 4


def check_filters(agent, res, d, recs, ncorrupt):
    texts = [t for _, t in recs]
    rc, out, err = query(agent, [d, "--json"])
    res.check("no filter: every valid line, in order, unchanged",
              rc == 0 and out.splitlines() == texts,
              "rc=%d lines=%d" % (rc, len(out.splitlines())))
    res.check("corrupt lines counted on stderr",
              ("%d corrupt or truncated lines skipped" % ncorrupt) in err, repr(err))

    t_mid = recs[1500][0]["end_time"]
    n4 = ipaddress.ip_network("198.19.0.0/16")
    n6 = ipaddress.ip_network("fd00::1:0/112")
    cases = [
        (["--process", "nginx"], lambda r: os.path.basename(r["process_name"]) == "nginx"),
        (["--process", "/usr/*/python3"], lambda r: r["process_name"] == "/usr/bin/python3"),
        (["--process", "*sérvice"], lambda r: r["process_name"].endswith("sérvice")),
        (["--args", "queue jobs-1"], lambda r: any("queue jobs-1" in a for a in r["process_args"])),
        (["--args", 'print("q'], lambda r: any('print("q' in a for a in r["process_args"])),
        (["--pid", "1235"], lambda r: r["process_id"] == "1235"),
        (["--dst", "198.19.0.0/16"], lambda r: in_net(r["dest_ip"], n4)),
        (["--ip", "fd00::1:0/112"], lambda r: in_net(r["dest_ip"], n6) or in_net(r["source_ip"], n6)),
        (["--src", "198.18.1.7"], lambda r: r["source_ip"] == "198.18.1.7"),
        (["--port", "443", "--proto", "tcp"], lambda r: r["proto"] == "tcp" and 443 in (r["source_port"], r["dest_port"])),
        (["--proto", "icmp"], lambda r: r["proto"] == "icmp"),
        (["--reporter", "dst", "--action", "deny"], lambda r: r["reporter"] == "dst" and r["action"] == "deny"),
        (["--from", str(t_mid)], lambda r: r["end_time"] >= t_mid),
        (["--to", str(t_mid)], lambda r: r["start_time"] <= t_mid),
        (["--from", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_mid)), "--process", "dig", "--process", "curl"],
         lambda r: r["end_time"] >= t_mid and os.path.basename(r["process_name"]) in ("dig", "curl")),
    ]
    for args, pred in cases:
        want = [t for r, t in recs if pred(r)]
        rc, out, err = query(agent, [d, "--json"] + args)
        got = out.splitlines()
        res.check("filter %s: %d lines" % (" ".join(args), len(want)),
                  rc == 0 and got == want and len(want) > 0,
                  "rc=%d got %d want %d err=%r" % (rc, len(got), len(want), err[-200:]))

    # --since against a file whose times are now.
    now = int(time.time())
    d2 = os.path.join(os.path.dirname(d), "recent")
    os.mkdir(d2)
    with open(os.path.join(d2, "flows.log"), "w") as f:
        for i, (r, _) in enumerate(flowgen.lines(n=20, seed=3)):
            r["start_time"] = now - 3600 * (i % 4) - 15
            r["end_time"] = now - 3600 * (i % 4)
            f.write(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n")
    rc, out, _ = query(agent, [d2, "--json", "--since", "90m"])
    res.check("--since 90m: the lines of the last 90 minutes", rc == 0 and len(out.splitlines()) == 10,
              "rc=%d n=%d" % (rc, len(out.splitlines())))

    # --top process: sums as Python computes them.
    sums = {}
    for r, _ in recs:
        s = sums.setdefault(r["process_name"], [0, 0, 0])
        s[0] += r["bytes_in"]
        s[1] += r["bytes_out"]
        s[2] += r["num_flows"]
    rc, out, _ = query(agent, [d, "--top", "process", "--json"])
    got = {}
    for ln in out.splitlines():
        o = json.loads(ln)
        got[o["process_name"]] = [o["bytes_in"], o["bytes_out"], o["num_flows"]]
    res.check("--top process: bytes and flows per process", rc == 0 and got == sums,
              "%r vs %r" % (got, sums))
    order = [json.loads(ln)["process_name"] for ln in out.splitlines()]
    res.check("--top: sorted by bytes", order == sorted(sums, key=lambda k: -(sums[k][0] + sums[k][1])))
    rc, out, _ = query(agent, [d, "--top", "port", "--limit", "3"])
    res.check("--top port --limit 3: header and 3 rows", rc == 0 and len(out.splitlines()) == 4 and
              out.splitlines()[0].split()[0] == "PORT", out)

    # The table: one header, one row per line, hostile bytes neutralised.
    rc, out, _ = query(agent, [d, "--process", "sérvice", "--limit", "5"])
    rows = out.splitlines()
    res.check("table: header and 5 rows", rc == 0 and len(rows) == 6 and rows[0].startswith("TIME"), out)
    res.check("table: no control byte reaches the terminal (a tab in the arguments)",
              "\t" not in out and "?here" in out, out)
    cols = [r.find("DESTINATION") for r in rows[:1]]
    res.check("table: bytes with units", any(u in out for u in ("K ", "M ")), out)
    del cols


def check_bad(agent, res, d):
    bad = [
        ["--since", "10 minutes"], ["--from", "yesterday"], ["--to", "2026-13-01"],
        ["--ip", "10.0.0.0/33"], ["--dst", "host.example"], ["--port", "70000"],
        ["--pid", "abc"], ["--proto", "tcpx"], ["--reporter", "both"], ["--action", "drop"],
        ["--top", "user"], ["--bogus"], ["--limit", "0"], ["--from", "200", "--to", "100"],
        ["--follow", "--top", "process"],
    ]
    for args in bad:
        rc, out, err = query(agent, [d] + args)
        lines = err.strip().splitlines()
        res.check("bad filter %s: exit 2, one line naming it" % " ".join(args),
                  rc == 2 and len(lines) == 1 and out == "" and
                  (args[0] in lines[0] or "unknown option" in lines[0] or "--to" in lines[0]),
                  "rc=%d err=%r" % (rc, err))
    rc, _, err = query(agent, [os.path.join(d, "nope")])
    res.check("missing directory: exit 1 and says so", rc == 1 and "nope" in err, err)


def poll_until(pred, timeout):
    """Poll @pred until it holds or @timeout seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def check_follow(agent, res, tmp):
    d = os.path.join(tmp, "follow")
    os.mkdir(d)
    recs = [t for _, t in flowgen.lines(n=40, seed=11)]
    path = os.path.join(d, "flows.log")
    with open(path, "w") as f:
        f.write("\n".join(recs[:10]) + "\n")
    out_path = os.path.join(tmp, "follow.out")
    with open(out_path, "w") as out:
        p = subprocess.Popen([agent, "query", d, "--json", "--follow"], stdout=out,
                             stderr=subprocess.DEVNULL)
    def shown():
        with open(out_path) as f:
            return f.read().count("\n")

    def wait_shown(n):
        # Poll the reader's output with a deadline: each step starts only once
        # the reader has printed everything before it, however slow it runs.
        return poll_until(lambda: shown() >= n, 30)

    try:
        steps_ok = wait_shown(10)
        with open(path, "a") as f:  # appended, the last line in two writes
            f.write("\n".join(recs[10:20]) + "\n" + recs[20][:50])
            f.flush()
            steps_ok &= wait_shown(20)
            f.write(recs[20][50:] + "\n")
        steps_ok &= wait_shown(21)
        os.rename(path, path + ".1")  # rotation: a last write to the old file, then a new one
        with open(path + ".1", "a") as f:
            f.write(recs[21] + "\n")
        with open(path, "w") as f:
            f.write("\n".join(recs[22:30]) + "\n")
        steps_ok &= wait_shown(30)
        # Truncation (as copytruncate does), then appends. The first appends
        # stay below the size the reader had reached, so it sees the
        # truncation whenever it looks; the rest follow once it has.
        old_size = os.path.getsize(path)
        k = 0
        while k < 10 and sum(len(r) + 1 for r in recs[30:31 + k]) < old_size:
            k += 1
        with open(path, "r+") as f:
            f.truncate(0)
        with open(path, "a") as f:
            f.write("".join(r + "\n" for r in recs[30:30 + k]))
        steps_ok &= wait_shown(30 + k)
        with open(path, "a") as f:
            f.write("".join(r + "\n" for r in recs[30 + k:40]))
        steps_ok &= wait_shown(40)
        res.check("--follow: the reader caught up after each step (within 30 s)", steps_ok,
                  "%d lines shown" % shown())
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    with open(out_path) as f:
        got = f.read().splitlines()
    res.check("--follow: appended, rotated and truncated lines, each once, in order",
              got == recs, "got %d lines, first difference at %s" %
              (len(got), next((i for i, (a, b) in enumerate(zip(got, recs)) if a != b), None)))
    res.check("--follow: exits 0 on SIGTERM", p.returncode == 0, str(p.returncode))


SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
for _ in range(int(sys.argv[1])):
    c, _ = s.accept()
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b[:100])
    c.close()
"""

CLIENT = r"""
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"x" * int(sys.argv[2])); c.shutdown(socket.SHUT_WR)
while c.recv(65536):
    pass
c.close()
time.sleep(0.2)
"""


def check_real(agent, res, tmp):
    if os.geteuid() != 0:
        res.check("real flows.log (needs root)", False, "not root")
        return
    out = os.path.join(tmp, "real")
    agent_p = subprocess.Popen([agent, "run", "--output-dir", out, "--flush-interval", "2",
                                "--include-loopback"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    srv = None
    try:
        deadline = time.time() + 30
        ready = False
        while time.time() < deadline:
            line = agent_p.stderr.readline().decode()
            if not line:
                break
            if "ready" in line:
                ready = True
                break
        if not res.check("agent ready", ready):
            return
        srv = subprocess.Popen([sys.executable, "-c", SERVER, "1"], stdout=subprocess.PIPE)
        port = int(srv.stdout.readline())
        marker = "pfq-marker-%d" % os.getpid()
        cl = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), "5000", marker])
        cl.wait(timeout=20)
        srv.wait(timeout=20)
        # No wait: the agent's final flush on SIGTERM writes every flow.
    finally:
        agent_p.send_signal(signal.SIGTERM)
        try:
            agent_p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent_p.kill()
            agent_p.wait()
        if srv and srv.poll() is None:
            srv.kill()
            srv.wait()
    rc, text, err = query(agent, [out, "--json", "--args", marker])
    lines = [json.loads(x) for x in text.splitlines()]
    res.check("real: --args finds the client's line", rc == 0 and len(lines) >= 1, err)
    if not lines:
        return
    r = lines[0]
    res.check("real: it is the client, to the server's port",
              r["reporter"] == "src" and r["dest_port"] == port and r["process_id"] == str(cl.pid),
              json.dumps(r)[:300])
    rc, text, _ = query(agent, [out, "--json", "--pid", str(cl.pid), "--dst", "127.0.0.1",
                                "--port", str(port), "--proto", "tcp", "--reporter", "src"])
    res.check("real: --pid --dst --port --proto --reporter find the same line",
              rc == 0 and [json.loads(x) for x in text.splitlines()] == lines, text[:300])
    rc, text, _ = query(agent, [out, "--json", "--process", os.path.basename(sys.executable),
                                "--port", str(port), "--reporter", "dst"])
    srv_lines = [json.loads(x) for x in text.splitlines()]
    res.check("real: --process finds the server's side",
              rc == 0 and len(srv_lines) == 1 and srv_lines[0]["process_id"] == str(srv.pid),
              text[:300])
    rc, text, _ = query(agent, [out, "--pid", str(cl.pid)])
    res.check("real: the table shows the client's PID and program",
              rc == 0 and str(cl.pid) in text and os.path.basename(sys.executable) in text, text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", required=True)
    ap.add_argument("--bindir", required=False)
    args = ap.parse_args()
    agent = os.path.abspath(args.agent)
    res = Results()
    tmp = tempfile.mkdtemp(prefix="pfe2e-%d-query-" % os.getpid())
    try:
        d, recs, ncorrupt = gen_dir(tmp)
        check_filters(agent, res, d, recs, ncorrupt)
        check_bad(agent, res, d)
        check_follow(agent, res, tmp)
        check_real(agent, res, tmp)
    except Exception as e:  # a crash of the test itself is a failure, reported
        res.check("test ran to the end", False, repr(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
