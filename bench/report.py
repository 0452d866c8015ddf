#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn bench/out/results.tsv (written by bench/run.sh) into bench/report.md.

usage: report.py RESULTS.tsv META.txt   (META: key=value lines describing the machine)

Every figure is printed next to its baseline from the same run; rates are medians
over the runs with min and max; ratios are medians of per-round ratios (each round
runs the modes back to back, so a per-round ratio cancels the machine's drift).
"""
import statistics
import sys
from collections import defaultdict

res = defaultdict(list)
for line in open(sys.argv[1]):
    sec, name, mode, val = line.rstrip("\n").split("\t")
    res[(sec, name, mode)].append(val)
meta = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[2]) if "=" in l)
out = []
p = out.append


def nums(sec, name, mode):
    return [float(v) for v in res.get((sec, name, mode), [])]


def one(sec, name, mode, default=0.0):
    v = nums(sec, name, mode)
    return v[-1] if v else default


def fmt(x):
    if x >= 100:
        return "{:,.0f}".format(x)
    return "{:.2f}".format(x) if x < 10 else "{:.1f}".format(x)


def mmm(v):
    if not v:
        return "n/a"
    return "{} ({}–{})".format(fmt(statistics.median(v)), fmt(min(v)), fmt(max(v)))


def verdict(ok):
    return "met" if ok else "**MISSED**"


p("# procflow benchmark report")
p("")
p("Written by `make bench` (bench/run.sh); the method is in bench/README.md.")
p("")
p("| | |")
p("|---|---|")
p("| date | {} |".format(meta.get("date")))
p("| commit | {} |".format(meta.get("commit")))
p("| machine | {}, {} cores online, {} RAM |".format(meta.get("cpu"), meta.get("cores"), meta.get("mem")))
p("| OS, kernel | {}, Linux {} |".format(meta.get("os"), meta.get("kernel")))
p("| load average at start / end | {} / {} (other jobs share this machine: read the spreads) |".format(meta.get("load"), meta.get("load_end")))
p("| peers | tcplife {}, iperf3 {} |".format(meta.get("tcplife"), meta.get("iperf3")))
p("| run time of the whole benchmark | {} s |".format(meta.get("elapsed")))
p("")

misses = []

# -- 1. overhead ---------------------------------------------------------------------
ROWS = [
    ("tcp_rr_1B_1conn", "TCP request/response, 1 B, 1 connection", "round trips/s", True),
    ("tcp_rr_1KiB_1conn", "TCP request/response, 1 KiB, 1 connection", "round trips/s", True),
    ("tcp_rr_1B_32conn", "TCP request/response, 1 B, 32 connections", "round trips/s", True),
    ("tcp_rr_1KiB_32conn", "TCP request/response, 1 KiB, 32 connections", "round trips/s", True),
    ("tcp_crr", "TCP connect-request-close", "connections/s", True),
    ("tcp_crr_lo", "TCP connect-request-close on loopback (left out of the log)", "connections/s", True),
    ("tcp_bulk_iperf3", "TCP bulk (iperf3, 1 stream)", "Mbit/s", True),
    ("udp_rr_1B", "UDP request/response, 1 B", "round trips/s", False),
    ("udp_query_1B", "UDP query, a new socket each (DNS-style), 1 B", "queries/s", False),
]
if any(k[0] == "ovh" for k in res):
    p("## 1. Overhead on real traffic")
    p("")
    p("veth between two namespaces, client and server pinned to CPU {}, agents unpinned; "
      "{} rounds x {} s per run, modes interleaved (no agent, procflow, tcplife) within each "
      "round. procflow runs on its default tier with `--flush-interval {}`; tcplife is "
      "`tcplife -4` (TCP only: it has nothing to do on the UDP row). Ratio = median of the "
      "per-round ratios to no agent (min–max). Targets: procflow ≥ 0.97 of no agent on "
      "every row; procflow not behind tcplife (procflow / tcplife ≥ 0.99, i.e. within 1 %) "
      "on the TCP rows.".format(meta.get("pin"), meta.get("runs"), meta.get("secs"),
                                 meta.get("ovh_flush")))
    p("")
    stats_before = one("setup", "bpf_stats_before", "-", 0)
    p("Every measured run has `kernel.bpf_stats_enabled=0` (it times every BPF program "
      "run with two clock reads){}.".format(
          "; it was {:.0f} before this run, left on by something else, and was turned off "
          "for the runs and restored at the end".format(stats_before) if stats_before else
          ""))
    p("")
    p("| row | unit | no agent | procflow | ratio | tcplife | ratio | procflow / tcplife | spread of no-agent runs | targets |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for key, label, unit, tcp in ROWS:
        a, b, c = nums("ovh", key, "none"), nums("ovh", key, "procflow"), nums("ovh", key, "tcplife")
        if not a:
            continue
        n = min(len(a), len(b), len(c))
        if not n:
            continue  # a partial run without procflow or tcplife (PF_BENCH_MODES)
        rb = [b[i] / a[i] for i in range(n)]
        rc = [c[i] / a[i] for i in range(n)]
        rbc = [b[i] / c[i] for i in range(n)]
        mb, mc, mbc = statistics.median(rb), statistics.median(rc), statistics.median(rbc)
        spread = (max(a) - min(a)) / statistics.median(a) * 100
        ok1 = mb >= 0.97
        ok2 = (mbc >= 0.99) if tcp else True
        v = []
        v.append("≥0.97 " + verdict(ok1))
        if tcp:
            v.append("vs tcplife " + verdict(ok2))
        if not ok1:
            misses.append("overhead: {} procflow ratio {:.3f} < 0.97".format(label, mb))
        if not ok2:
            misses.append("overhead: {} procflow behind tcplife ({:.3f})".format(label, mbc))
        p("| {} | {} | {} | {} | **{:.3f}** ({:.3f}–{:.3f}) | {} | {:.3f} ({:.3f}–{:.3f}) | {:.3f} | {:.1f} % | {} |".format(
            label, unit, mmm(a), mmm(b), mb, min(rb), max(rb), mmm(c), mc, min(rc), max(rc), mbc,
            spread, "; ".join(v)))
    p("")
    fr = defaultdict(lambda: [0, 0])
    for k, v in res.items():
        if k[0] == "ovh_foreign":
            fr[k[2]][0] += sum(1 for x in v if float(x) > 0)
            fr[k[2]][1] += len(v)
    if fr:
        p("Runs during which another job's per-packet BPF programs (cgroup_skb on the root "
          "cgroup, not ours) were attached, so every mode paid for them: " +
          ", ".join("{} {}/{}".format(m, fr[m][0], fr[m][1]) for m in ("none", "procflow", "tcplife") if m in fr) +
          ". They slow the baseline as much as the agents' runs, which pushes the ratios "
          "towards 1: procflow's own cost is at least what the table shows.")
        p("")
    # Every mode against no agent, by rate and by the pinned pair's CPU time per
    # operation (the steadier figure on a busy machine), median of per-round ratios.
    modes = sorted({k[2] for k in res if k[0] == "ovh" and k[2] != "none"})
    if any(nums("ovh_cpuns", key, "none") for key, _, _, _ in ROWS):
        p("Every mode against no agent: rate ratio, and CPU ratio = the pinned pair's CPU "
          "time per operation with no agent / with the mode, with the added ns per operation "
          "(median of the per-round figures, min–max). `emptyskb`: an empty cgroup_skb "
          "program on ingress and egress; `base`: the agent binary PF_BENCH_BASE.")
        p("")
        p("| row | no agent, CPU ns/op | mode | rate ratio | CPU ratio | added ns/op |")
        p("|---|---|---|---|---|---|")
        for key, label, _, _ in ROWS:
            a, ca = nums("ovh", key, "none"), nums("ovh_cpuns", key, "none")
            if not a or not ca:
                continue
            for m in modes:
                b, cb = nums("ovh", key, m), nums("ovh_cpuns", key, m)
                n, k = min(len(a), len(b)), min(len(ca), len(cb))
                if not n or not k:
                    continue
                r = [b[i] / a[i] for i in range(n)]
                cr = [ca[i] / cb[i] for i in range(k)]
                d = [cb[i] - ca[i] for i in range(k)]
                p("| {} | {} | {} | {:.3f} ({:.3f}–{:.3f}) | {:.3f} ({:.3f}–{:.3f}) | {:+,.0f} ({:+,.0f}…{:+,.0f}) |".format(
                    label, mmm(ca), m, statistics.median(r), min(r), max(r), statistics.median(cr),
                    min(cr), max(cr), statistics.median(d), min(d), max(d)))
        p("")
    cpu = [(k[1], k[2], statistics.median([float(x) for x in v])) for k, v in res.items() if k[0] == "ovh_cpu"]
    if cpu:
        p("Agent CPU during the runs (% of one core, median over rounds; the agent runs on the "
          "other CPU, so it does not slow the pinned pair directly):")
        p("")
        p("| row | procflow | tcplife |")
        p("|---|---|---|")
        for key, label, _, _ in ROWS:
            d = {m: v for r, m, v in cpu if r == key}
            if d:
                p("| {} | {:.1f} | {:.1f} |".format(label, d.get("procflow", 0), d.get("tcplife", 0)))
        p("")
    st = [(k[1], k[2], v[-1]) for k, v in res.items() if k[0] == "bpfstat"]
    if st:
        p("Where procflow's in-kernel time goes (one extra run per row with "
          "`kernel.bpf_stats_enabled=1`, not part of the figures above; ns per program run, "
          "ns and runs per round trip or connection):")
        p("")
        p("| row | program | ns / run | ns / op | runs / op |")
        p("|---|---|---|---|---|")
        tot = defaultdict(float)
        for row, prog, v in sorted(st, key=lambda x: (x[0], -float(x[2].split()[1]))):
            per_run, per_op, runs = v.split()
            if float(per_op) < 1:
                continue
            tot[row] += float(per_op)
            p("| {} | {} | {} | {} | {} |".format(row, prog, per_run, per_op, runs))
        p("")
        p("The same in-kernel time as a ratio that does not depend on the machine's noise: "
          "with T ns of BPF per operation and the no-agent median rate R, the expected "
          "ratio is 1 / (1 + T·R / 10⁹). `bpf_stats` adds its own timing to every run, so "
          "T is an upper bound and the expected ratio a lower bound.")
        p("")
        p("| row | BPF ns per op (sum) | no-agent median rate | expected ratio | measured ratio |")
        p("|---|---|---|---|---|")
        for row in sorted(tot):
            a, b = nums("ovh", row, "none"), nums("ovh", row, "procflow")
            n = min(len(a), len(b))
            if not n:
                continue
            rate = statistics.median(a)
            p("| {} | {:,.0f} | {} | {:.3f} | {:.3f} |".format(
                row, tot[row], fmt(rate), 1 / (1 + tot[row] * rate / 1e9),
                statistics.median([b[i] / a[i] for i in range(n)])))
        p("")

# -- 2. churn --------------------------------------------------------------------------
rates = sorted({int(k[1]) for k in res if k[0] == "churn"})
if rates:
    p("## 2. Attribution under process churn")
    p("")
    p("Each process is a fresh exec of `pingpong once` that makes one TCP connection and "
      "reports its PID and source port; a process is *exactly attributed* when the flow "
      "log's line for its source port (reporter src, `--aggregation 0`) has its executable "
      "path as process_name, its PID as process_id and its argument string as process_args. "
      "Events lost: sum of the agent's `procflow: N process events lost` lines. "
      "{} s per rate, one fresh agent per rate. Target: 100 % and none lost at 1,000 "
      "processes/s.".format(meta.get("churn_secs")))
    p("")
    p("| processes/s asked | achieved | processes | flows in log | path right | exactly attributed | events lost | agent CPU % | |")
    p("|---|---|---|---|---|---|---|---|---|")
    bend = None
    for r in rates:
        g = lambda m: one("churn", str(r), m)
        n = g("processes")
        ex = g("exact")
        share = 100 * ex / n if n else 0
        lost = g("lost")
        good = n > 0 and ex == n and lost == 0
        if not good and bend is None:
            bend = r
        note = ""
        if r == 1000:
            note = verdict(good)
            if g("achieved") < 0.97 * r:
                note += " (at the {:,.0f}/s the machine reached)".format(g("achieved"))
            if not good:
                misses.append("churn: at 1,000/s {:.2f} % exact, {:.0f} events lost".format(share, lost))
        p("| {:,} | {:,.0f} | {:,.0f} | {:,.0f} | {:,.0f} | {:,.0f} (**{:.2f} %**) | {:,.0f} | {:.1f} | {} |".format(
            r, g("achieved"), n, g("in_log"), g("path_only"), ex, share, lost, g("cpu_pct"), note))
    p("")
    if bend is None:
        p("No bend up to {:,} processes/s asked (the highest rate the machine reached is the "
          "'achieved' column: beyond it, fork+exec itself is the limit).".format(rates[-1]))
    else:
        p("First rate with less than 100 % or lost events: {:,} processes/s asked.".format(bend))
    p("")

# -- 3. cost ---------------------------------------------------------------------------
ns = sorted({int(k[1]) for k in res if k[0] == "cost"})
if ns:
    p("## 3. Agent cost")
    p("")
    p("N concurrent TCP connections (1 byte each way, then held 5 s, then closed); both "
      "ends are on this host, so each connection is two flows (reporter src and dst). Agent "
      "with `--flush-interval 2`. CPU = the agent's utime+stime from opening the first "
      "connection until 5 s after closing the last (so the flushes that report them are "
      "counted); baseline = the same agent idle over the same length of time (measured "
      "over 3 s just before). Map memory = sum of `memlock` in /proc/PID/fdinfo of the "
      "agent's map fds (the kernel's own accounting, as `bpftool map show` prints it). "
      "Costliest flush: the largest CPU time of the agent's loop thread in one flush "
      "(its `-v` flush line), with the kernel flow entries that flush read, and that time per "
      "100,000 entries (linear growth keeps it constant across N). "
      "Target: VmHWM ≤ 64 MiB at 100,000 flows.")
    p("")
    p("| connections | time to open | agent CPU s / 1,000 flows in the log | idle baseline, CPU s over the same time | VmRSS idle (baseline) | VmHWM | BPF map memory idle → with flows | flows in log (src / dst) | packets not counted (flow map full) | socket owners not recorded (socket map full) | costliest flush: CPU s (entries read), s per 100,000 | |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        g = lambda m: one("cost", str(n), m)
        cpu = g("cpu_s")
        idle = g("idle_cpu_s_per_3s") * g("wall_s") / 3
        hwm = g("hwm_kib") / 1024
        note = ""
        seen = g("flows_src") + g("flows_dst")
        idle_rss = g("rss_idle_kib") / 1024
        if n >= 100000:
            if seen >= 100000:
                note = "≤ 64 MiB " + verdict(hwm <= 64)
                if hwm > 64:
                    misses.append("cost: VmHWM {:.1f} MiB at {:,.0f} flows > 64 MiB".format(hwm, seen))
            else:
                # Fewer flows reached the agent than the target speaks of: say
                # what the measured cost per flow predicts, and judge on that.
                per = (hwm - idle_rss) / seen if seen else 0
                ext = idle_rss + per * 100000
                note = ("only {:,.0f} flows reached the agent; at the measured {:.2f} KiB per "
                        "flow, 100,000 flows would need {:.0f} MiB: ≤ 64 MiB {}").format(
                            seen, per * 1024, ext, verdict(ext <= 64))
                if ext > 64:
                    misses.append("cost: VmHWM {:.1f} MiB with {:,.0f} flows; extrapolated to "
                                  "100,000 flows {:.0f} MiB > 64 MiB".format(hwm, seen, ext))
        fc, fe = g("flush_cpu_max_s"), g("flush_entries")
        flush = "{:.3f} s ({:,.0f}), {:.2f} s".format(fc, fe, fc * 100000 / fe) if fe else "-"
        p("| {:,} | {:.1f} s | {:.3f} ({:.2f} s in {:.0f} s) | {:.2f} s | {:.1f} MiB | {:.1f} MiB | {:.1f} → {:.1f} MiB | {:,.0f} / {:,.0f} | {:,.0f} | {:,.0f} | {} | {} |".format(
            n, g("open_s"), cpu / (seen / 1000) if seen else 0, cpu, g("wall_s"), idle, g("rss_idle_kib") / 1024, hwm,
            g("map_idle_bytes") / 1048576, g("map_full_bytes") / 1048576, g("flows_src"),
            g("flows_dst"), g("flow_map_full"), g("sock_map_full"), flush, note))
        if g("flows_src") < n or g("flows_dst") < n:
            misses.append("cost: at {:,} flows only {:,.0f} (src) / {:,.0f} (dst) appear in the log".format(
                n, g("flows_src"), g("flows_dst")))
    p("")

# -- 4. user space ---------------------------------------------------------------------
if any(k[0] == "user" for k in res):
    p("## 4. User space alone (aggbench)")
    p("")
    p("bench/aggbench.c links pf_lib and pushes 100,000 synthetic flows x 5 intervals "
      "through pf_agg__add and pf_agg__flush (JSON into memory), one core; 5 runs per "
      "aggregation level. Instructions from `valgrind --tool=callgrind` (20,000 flows x 2 "
      "intervals; inclusive cost of pf_agg__add per observation and of pf_agg__flush per "
      "line). Targets: ≥ 1,000,000 events/s/core into the flow table, ≥ 300,000 JSON "
      "lines/s (pmacct's JSON output: about 67,000 lines/s).")
    p("")
    p("| aggregation level | events/s/core into the table | target | JSON lines/s | target | lines per interval | bytes/line | instructions/event | instructions/line |")
    p("|---|---|---|---|---|---|---|---|---|")
    for lvl in ("level0", "level1"):
        ev = nums("user", lvl, "add_events_per_s")
        ln = nums("user", lvl, "flush_lines_per_s")
        if not ev:
            continue
        e_ok = statistics.median(ev) >= 1e6
        l_ok = statistics.median(ln) >= 3e5
        if not e_ok:
            misses.append("user space: {} {:.0f} events/s < 1 M".format(lvl, statistics.median(ev)))
        if not l_ok:
            misses.append("user space: {} {:.0f} lines/s < 300,000".format(lvl, statistics.median(ln)))
        p("| {} | {} | ≥ 1,000,000 {} | {} | ≥ 300,000 {} | {:,.0f} | {:,.0f} | {:,.0f} | {:,.0f} |".format(
            lvl[-1] + (" (per 5-tuple)" if lvl == "level0" else " (default)"), mmm(ev), verdict(e_ok),
            mmm(ln), verdict(l_ok), one("user", lvl, "lines_per_round"), one("user", lvl, "bytes_per_line"),
            one("user", lvl, "ir_per_event"), one("user", lvl, "ir_per_line")))
    p("")

p("## Targets")
p("")
if misses:
    p("Missed in this run:")
    p("")
    for m in misses:
        p("- " + m)
else:
    p("Every target was met in this run.")
p("")
p("Bottlenecks and what would fix them: bench/README.md, section *Findings*.")
print("\n".join(out))
