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

import ipaddress
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flowgen  # noqa: E402
from common import Agent, run_main, terminate, wait_for, workdir  # noqa: E402


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


def ref_ip(rec, key, net):
    return in_net(rec[key], ipaddress.ip_network(net))


def check_combine(agent, res, d, recs):
    """Issue: --src A --dst B matched A or B; a repeated --reporter kept the last.
    Each count is computed here, with json and ipaddress, not by lib/query.c."""
    cases = [
        (["--src", "198.18.1.0/24", "--dst", "198.19.2.0/24"],
         lambda r: ref_ip(r, "source_ip", "198.18.1.0/24") and ref_ip(r, "dest_ip", "198.19.2.0/24")),
        (["--src", "198.18.0.0/16", "--dst", "10.0.0.0/8"], lambda r: False),
        (["--src", "198.18.1.0/24", "--src", "fd00::/16", "--dst", "198.19.0.0/16"],
         lambda r: (ref_ip(r, "source_ip", "198.18.1.0/24") or ref_ip(r, "source_ip", "fd00::/16"))
         and ref_ip(r, "dest_ip", "198.19.0.0/16")),
        (["--ip", "198.19.3.0/24", "--src", "198.18.2.0/24"],
         lambda r: (ref_ip(r, "source_ip", "198.19.3.0/24") or ref_ip(r, "dest_ip", "198.19.3.0/24"))
         and ref_ip(r, "source_ip", "198.18.2.0/24")),
        (["--reporter", "src", "--reporter", "dst"], lambda r: r["reporter"] in ("src", "dst")),
        (["--action", "deny", "--action", "allow", "--reporter", "dst"],
         lambda r: r["reporter"] == "dst"),
        (["--port", "80-443", "--proto", "6"],
         lambda r: r["proto"] == "tcp" and any(p is not None and 80 <= p <= 443
                                               for p in (r["source_port"], r["dest_port"]))),
        (["--port", "53,5432"], lambda r: 53 in (r["source_port"], r["dest_port"]) or
         5432 in (r["source_port"], r["dest_port"])),
        (["--port", "https"], lambda r: 443 in (r["source_port"], r["dest_port"])),
        (["--not-process", "curl", "--not-process", "/usr/sbin/*"],
         lambda r: os.path.basename(r["process_name"]) != "curl" and
         not r["process_name"].startswith("/usr/sbin/")),
    ]
    for args, pred in cases:
        want = sum(1 for r, _ in recs if pred(r))
        rc, out, err = query(agent, [d, "--json"] + args)
        got = len(out.splitlines())
        res.check("reference count %s: %d lines" % (" ".join(args), want),
                  rc == 0 and got == want, "rc=%d got %d want %d err=%r" % (rc, got, want, err[-200:]))
    for args in (["--to", "1795790100", "--to", "1795790200"],
                 ["--since", "1h", "--from", "1795790000"],
                 ["--from", "1795790000", "--from", "1795790100"],
                 ["--since", "1h", "--since", "2h"]):
        rc, out, err = query(agent, [d] + args)
        res.check("%s: exit 2 with one line, not the last value silently" % " ".join(args),
                  rc == 2 and out == "" and len(err.strip().splitlines()) == 1, "rc=%d err=%r" % (rc, err))


def check_damage(agent, res, tmp):
    """A line over the 4 MiB cap counts as skipped; {"a":1} is no flow line; the
    file is named. Counts from the file written here."""
    d = os.path.join(tmp, "damage")
    os.mkdir(d)
    recs = [t for _, t in flowgen.lines(n=30, seed=5)]
    with open(os.path.join(d, "flows.log.1"), "w") as f:
        f.write("\n".join(recs[:10]) + "\n")
        f.write('{"process_name":"' + "x" * (5 << 20) + '"}\n')  # over the cap
        f.write('{"a":1}\n')                                      # JSON, not a flow line
        f.write("\n".join(recs[10:20]) + "\n")
    with open(os.path.join(d, "flows.log"), "w") as f:
        f.write("\n".join(recs[20:30]) + "\n")
    want = recs
    skipped, total = 2, 32  # lines in the files, counted here
    rc, out, err = query(agent, [d, "--json"])
    res.check("damage: only the 30 flow lines are printed", rc == 0 and out.splitlines() == want,
              "rc=%d n=%d" % (rc, len(out.splitlines())))
    res.check("damage: the oversize line and {\"a\":1} counted: %d of %d" % (skipped, total),
              ("%d corrupt or truncated lines skipped (of %d)" % (skipped, total)) in err, err)
    res.check("damage: the file is named", os.path.join(d, "flows.log.1") in err and
              os.path.join(d, "flows.log") + ":" not in err, err)


def check_hostile_files(agent, res, tmp):
    """A FIFO among the rotated names must not hang the query; a cut .zst is damage."""
    d = os.path.join(tmp, "hostile")
    os.mkdir(d)
    recs = [t for _, t in flowgen.lines(n=400, seed=9)]
    with open(os.path.join(d, "flows.log"), "w") as f:
        f.write("\n".join(recs[300:]) + "\n")
    os.mkfifo(os.path.join(d, "flows.log.3"))
    try:
        rc, out, err = query(agent, [d, "--json"], timeout=15)
        res.check("FIFO flows.log.3: refused by name, the rest read, exit 1",
                  rc == 1 and out.splitlines() == recs[300:] and "flows.log.3" in err and
                  "regular file" in err, "rc=%d err=%r" % (rc, err))
    except subprocess.TimeoutExpired:
        res.check("FIFO flows.log.3: refused by name, the rest read, exit 1", False, "query hung")
    os.unlink(os.path.join(d, "flows.log.3"))
    # A .zst cut in the middle of its frame: the lines before the cut, then an error.
    plain = os.path.join(d, "flows.log.1")
    with open(plain, "w") as f:
        f.write("\n".join(recs[:300]) + "\n")
    subprocess.run(["zstd", "-q", "--rm", plain], check=True)
    z = plain + ".zst"
    size = os.path.getsize(z)
    with open(z, "r+b") as f:
        f.truncate(size // 2)
    rc, out, err = query(agent, [d, "--json"])
    got = out.splitlines()
    before = got[:len(got) - 100]
    res.check("cut .zst: reported as damage naming the file, exit 1",
              rc == 1 and z in err and "cut" in err, "rc=%d err=%r" % (rc, err))
    res.check("cut .zst: the whole lines before the cut, then the current file",
              got[-100:] == recs[300:] and before == recs[:len(before)] and 0 < len(before) < 300,
              "n=%d" % len(got))


def fd_pos(pid, name):
    """The read position of the file @name open in process @pid, or None."""
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == name:
                with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                    return int(f.readline().split()[1])
        except OSError:
            pass
    return None


def check_rotation_during_query(agent, res, tmp):
    """The agent rotates while a query reads: every line exactly once. The query's
    stdout is not read until the rotation is done, so it is stopped inside the
    oldest file (its pipe full) when the names move."""
    d = os.path.join(tmp, "rotating")
    os.mkdir(d)
    recs = [t for _, t in flowgen.lines(n=9000, seed=13)]
    parts = {"flows.log.2": recs[:6000], "flows.log.1": recs[6000:7500], "flows.log": recs[7500:]}
    for name, part in parts.items():
        with open(os.path.join(d, name), "w") as f:
            f.write("\n".join(part) + "\n")
    p = subprocess.Popen([agent, "query", d, "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        oldest = os.path.join(d, "flows.log.2")
        deadline = time.time() + 20
        while time.time() < deadline and not fd_pos(p.pid, oldest):
            time.sleep(0.01)
        started = fd_pos(p.pid, oldest)
        # Rotate as the agent does: .2 -> .3, .1 -> .2, flows.log -> .1, a new flows.log.
        for a, b in (("flows.log.2", "flows.log.3"), ("flows.log.1", "flows.log.2"),
                     ("flows.log", "flows.log.1")):
            os.rename(os.path.join(d, a), os.path.join(d, b))
        new = [t for _, t in flowgen.lines(n=5, seed=14)]
        with open(os.path.join(d, "flows.log"), "w") as f:
            f.write("\n".join(new) + "\n")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    got = out.decode().splitlines()
    res.check("rotation during a query: it was inside the oldest file", bool(started))
    res.check("rotation during a query: each line of the files it began with exactly once",
              got == recs, "got %d lines (%d distinct), want %d" % (len(got), len(set(got)), len(recs)))
    # One file under two names (what a rotation caught between two names looks like):
    # read once, and no error.
    d2 = os.path.join(tmp, "twonames")
    os.mkdir(d2)
    with open(os.path.join(d2, "flows.log"), "w") as f:
        f.write("\n".join(recs[:50]) + "\n")
    os.link(os.path.join(d2, "flows.log"), os.path.join(d2, "flows.log.1"))
    rc, out, err = query(agent, [d2, "--json"])
    res.check("one inode under two names: its lines once, exit 0",
              rc == 0 and out.splitlines() == recs[:50] and err == "",
              "rc=%d n=%d err=%r" % (rc, len(out.splitlines()), err))


def check_sources(agent, res, tmp, d, recs):
    """query reads the configured directory, standard input and several files."""
    texts = [t for _, t in recs]
    cfg = os.path.join(tmp, "pf.yaml")
    with open(cfg, "w") as f:
        f.write("flowLogsFileDirectory: %s\n" % d)
    rc, out, err = query(agent, ["-c", cfg, "--json"])
    res.check("query -c FILE: reads its flowLogsFileDirectory", rc == 0 and out.splitlines() == texts,
              "rc=%d n=%d err=%r" % (rc, len(out.splitlines()), err[-200:]))
    env = dict(os.environ, PROCFLOW_CONFIG=cfg)
    p = subprocess.run([agent, "query", "--json"], capture_output=True, text=True, env=env, timeout=60)
    res.check("PROCFLOW_CONFIG: query reads its flowLogsFileDirectory",
              p.returncode == 0 and p.stdout.splitlines() == texts, p.stderr[-200:])
    one = os.path.join(d, "flows.log.1")
    cur = os.path.join(d, "flows.log")
    want = [l for l in open(one).read().splitlines() + open(cur).read().splitlines()
            if l in set(texts)]
    rc, out, err = query(agent, [one, cur, "--json"])
    res.check("two files named: both, in the order given", rc == 0 and out.splitlines() == want,
              "rc=%d n=%d" % (rc, len(out.splitlines())))
    with open(cur) as f:
        p = subprocess.run([agent, "query", "-", "--json"], stdin=f, capture_output=True,
                           text=True, timeout=60)
    res.check("- reads standard input", p.returncode == 0 and p.stdout.splitlines() == want[1000:],
              "rc=%d n=%d %r" % (p.returncode, len(p.stdout.splitlines()), p.stderr[-200:]))


def check_width(agent, res, d):
    """The table fits the terminal (COLUMNS), IPv6 rows stay aligned, the zone is marked."""
    for cols in (80, 120, 200):
        env = dict(os.environ, COLUMNS=str(cols))
        p = subprocess.run([agent, "query", d, "--limit", "50"], capture_output=True, text=True,
                           env=env, timeout=60)
        rows = p.stdout.splitlines()
        widest = max(len(r) for r in rows) if rows else 0
        res.check("COLUMNS=%d: every row fits (widest %d)" % (cols, widest),
                  p.returncode == 0 and len(rows) == 51 and widest <= cols, p.stdout[:300])
        head = rows[0] if rows else ""
        col = head.find("DESTINATION")
        starts = {r.find("198.19.") if "198.19." in r else
                  r.find("[fd00::1:") if "[fd00::1:" in r else r.find("fd00::1:") for r in rows[1:]}
        res.check("COLUMNS=%d: IPv4 and IPv6 destinations start in one column" % cols,
                  col > 0 and starts == {col}, "%r %r" % (col, starts))
        res.check("COLUMNS=%d: the header names the time zone" % cols,
                  head.startswith("TIME") and "(" in head.split()[0] + head.split()[1], head)
    env = dict(os.environ, COLUMNS="100")
    p = subprocess.run([agent, "query", d, "--limit", "6", "-o", "wide"], capture_output=True,
                       text=True, env=env, timeout=60)
    res.check("-o wide: paths and arguments whole", "/usr/lib/postgresql/15/bin/postgres" in p.stdout
              and "config_file=/etc/postgresql/15/main/postgresql.conf" in p.stdout, p.stdout[:400])
    p = subprocess.run([agent, "query", d, "--limit", "3", "-o", "json"], capture_output=True,
                       text=True, timeout=60)
    res.check("-o json: the lines", p.returncode == 0 and all(json.loads(l) for l in p.stdout.splitlines())
              and len(p.stdout.splitlines()) == 3, p.stdout[:200])


def wait_lines(path, n, deadline_s=20):
    end = time.time() + deadline_s
    while time.time() < end:
        with open(path) as f:
            got = f.read().splitlines()
        if len(got) >= n:
            return got
        time.sleep(0.05)
    with open(path) as f:
        return f.read().splitlines()


def check_tail_follow(agent, res, tmp):
    """-n N -f: the last N lines, then what is appended (not every line first)."""
    d = os.path.join(tmp, "tailf")
    os.mkdir(d)
    recs = [t for _, t in flowgen.lines(n=210, seed=21)]
    path = os.path.join(d, "flows.log")
    with open(path, "w") as f:
        f.write("\n".join(recs[:200]) + "\n")
    out_path = os.path.join(tmp, "tailf.out")
    with open(out_path, "w") as out:
        p = subprocess.Popen([agent, "query", d, "--json", "-n", "5", "-f"], stdout=out,
                             stderr=subprocess.DEVNULL)
    try:
        first = wait_lines(out_path, 5)
        with open(path, "a") as f:
            f.write("\n".join(recs[200:]) + "\n")
        got = wait_lines(out_path, 15)
    finally:
        terminate(p)
    res.check("-n 5 -f: the last 5 existing lines first", first[:5] == recs[195:200],
              "got %d lines first" % len(first))
    res.check("-n 5 -f: then the 10 appended, nothing else", got == recs[195:], "got %d" % len(got))
    # The table too: a few rows are shown while it waits, not held back.
    tpath = os.path.join(tmp, "tailf.table")
    with open(tpath, "w") as out:
        p = subprocess.Popen([agent, "query", d, "-n", "3", "-f"], stdout=out,
                             stderr=subprocess.DEVNULL, env=dict(os.environ, COLUMNS="200"))
    try:
        rows = wait_lines(tpath, 4)
    finally:
        terminate(p)
    res.check("-n 3 -f as a table: the header and 3 rows while it follows",
              len(rows) == 4 and rows[0].startswith("TIME"), "%r" % rows)


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
        return wait_for(lambda: shown() >= n, 30, step=0.05)

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
        terminate(p)
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
    agent_p = Agent(agent, ["run", "--output-dir", out, "--flush-interval", "2",
                            "--include-loopback"])
    if not agent_p.start_ready(res, 30):
        return
    srv = None
    try:
        srv = subprocess.Popen([sys.executable, "-c", SERVER, "1"], stdout=subprocess.PIPE)
        port = int(srv.stdout.readline())
        marker = "pfq-marker-%d" % os.getpid()
        cl = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), "5000", marker])
        cl.wait(timeout=20)
        srv.wait(timeout=20)
        # No wait: the agent's final flush on SIGTERM writes every flow.
    finally:
        agent_p.stop()
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


def body(res, args):
    agent = args.agent
    with workdir(args, "pfe2e-%d-query-" % os.getpid()) as tmp:
        d, recs, ncorrupt = gen_dir(tmp)
        check_filters(agent, res, d, recs, ncorrupt)
        check_bad(agent, res, d)
        check_combine(agent, res, d, recs)
        check_damage(agent, res, tmp)
        check_hostile_files(agent, res, tmp)
        check_rotation_during_query(agent, res, tmp)
        check_sources(agent, res, tmp, d, recs)
        check_width(agent, res, d)
        check_tail_follow(agent, res, tmp)
        check_follow(agent, res, tmp)
        check_real(agent, res, tmp)


if __name__ == "__main__":
    # Only check_real needs root (it runs the agent); it fails, not skips, without.
    sys.exit(run_main(body, __doc__.splitlines()[0], root=False))
