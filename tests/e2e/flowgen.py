#!/usr/bin/env python3
"""Generate flow-log lines in procflow's format (the record contract's keys, in order).

    python3 tests/e2e/flowgen.py OUT --mb 1024 [--seed 1] [--start 1795790000]

Used by test_query.py (small files whose content the test knows) and to measure
`procflow query` on a big file (README, "Speed"). The lines are shaped like the
agent's: the same keys and types, realistic lengths (about 1.4 KB), a mix of
processes, addresses, ports and protocols, and some hostile arguments (quotes,
backslashes, control bytes, non-ASCII).
"""

import argparse
import json
import random

KEYS = [
    "start_time", "end_time", "source_ip", "source_name", "source_name_aggr",
    "source_namespace", "nat_outgoing_ports", "source_port", "source_type", "source_labels",
    "dest_ip", "dest_name", "dest_name_aggr", "dest_namespace", "dest_port", "dest_type",
    "dest_labels", "dest_service_namespace", "dest_service_name", "dest_service_port",
    "dest_service_port_num", "dest_domains", "proto", "action", "reporter", "policies",
    "bytes_in", "bytes_out", "num_flows", "num_flows_started", "num_flows_completed",
    "packets_in", "packets_out", "transit_bytes_in", "transit_bytes_out",
    "transit_packets_in", "transit_packets_out", "http_requests_allowed_in",
    "http_requests_denied_in", "process_name", "num_process_names", "process_id",
    "num_process_ids", "process_args", "num_process_args", "original_source_ips",
    "num_original_source_ips", "tcp_mean_send_congestion_window",
    "tcp_min_send_congestion_window", "tcp_mean_smooth_rtt", "tcp_max_smooth_rtt",
    "tcp_mean_min_rtt", "tcp_max_min_rtt", "tcp_mean_mss", "tcp_min_mss",
    "tcp_total_retransmissions", "tcp_lost_packets", "tcp_unrecovered_to", "host",
]

PROCS = [
    ("/usr/bin/curl", ["-s https://api.example.test/v1/items?page=%d", "-fsSL http://198.18.0.1:8080/x"]),
    ("/usr/sbin/nginx", ["-g daemon off;"]),
    ("/usr/bin/python3", ["/srv/app/worker.py --queue jobs-%d --verbose", "-c 'print(\"q\\\\x\")'"]),
    ("/usr/lib/postgresql/15/bin/postgres", ["-D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf"]),
    ("/opt/app/bin/sérvice", ["--name caf\u00e9 --tab\there"]),
    ("/usr/bin/dig", ["@198.18.0.53 example.test A"]),
]


def make(rng, t0, i):
    proc, argset = PROCS[i % len(PROCS)]
    v6 = (i % 7) == 0
    src = "fd00::%x" % rng.randrange(1, 4096) if v6 else "198.18.%d.%d" % (rng.randrange(0, 4), rng.randrange(1, 255))
    dst = "fd00::1:%x" % rng.randrange(1, 4096) if v6 else "198.19.%d.%d" % (rng.randrange(0, 4), rng.randrange(1, 255))
    proto = ("tcp", "tcp", "udp", "icmp")[i % 4]
    port = None if proto == "icmp" else (80, 443, 5432, 53, 8080)[rng.randrange(0, 5)]
    st = t0 + (i // 50) * 15
    args = [a % i if "%d" in a else a for a in argset]
    pid = str(1000 + (i % 5000)) if i % 3 else "*"
    rec = {k: None for k in KEYS}
    rec.update({
        "start_time": st, "end_time": st + 15, "source_ip": src, "source_name": "node-a",
        "source_name_aggr": "node-a", "source_namespace": "-", "source_port": None,
        "source_type": "hep", "dest_ip": dst, "dest_name": "-", "dest_name_aggr": "pub",
        "dest_namespace": "-", "dest_port": port, "dest_type": "net",
        "dest_service_namespace": "-", "dest_service_name": "-", "dest_service_port": "-",
        "proto": proto, "action": "deny" if i % 97 == 0 else "allow",
        "reporter": "src" if i % 2 else "dst",
        "bytes_in": rng.randrange(0, 1 << 20), "bytes_out": rng.randrange(0, 1 << 16),
        "num_flows": 1 + i % 4, "num_flows_started": 1, "num_flows_completed": 1,
        "packets_in": rng.randrange(1, 1000), "packets_out": rng.randrange(1, 1000),
        "transit_bytes_in": 0, "transit_bytes_out": 0, "transit_packets_in": 0,
        "transit_packets_out": 0, "http_requests_allowed_in": 0, "http_requests_denied_in": 0,
        "process_name": proc, "num_process_names": 1, "process_id": pid,
        "num_process_ids": 1 if pid != "*" else 3, "process_args": args,
        "num_process_args": len(args), "num_original_source_ips": 0,
        "tcp_mean_send_congestion_window": 10, "tcp_min_send_congestion_window": 10,
        "tcp_mean_smooth_rtt": 61, "tcp_max_smooth_rtt": 88, "tcp_mean_min_rtt": 40,
        "tcp_max_min_rtt": 52, "tcp_mean_mss": 1448, "tcp_min_mss": 1448,
        "tcp_total_retransmissions": 0, "tcp_lost_packets": 0, "tcp_unrecovered_to": 0,
        "host": "node-a",
    })
    return rec


def lines(n=None, mb=None, seed=1, t0=1795790000):
    """Yield (record dict, line text) pairs, n of them or about mb megabytes."""
    rng = random.Random(seed)
    size = 0
    i = 0
    while (n is not None and i < n) or (mb is not None and size < mb * 1024 * 1024):
        rec = make(rng, t0, i)
        text = json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
        size += len(text) + 1
        i += 1
        yield rec, text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--mb", type=float, default=None)
    ap.add_argument("--lines", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=1795790000)
    a = ap.parse_args()
    if a.mb is None and a.lines is None:
        a.mb = 1
    # Template lines are cheap; the big file repeats 20,000 distinct ones with
    # new times, which keeps generation fast and the content varied enough.
    if a.mb and a.mb > 16:
        base = [t for _, t in lines(n=20000, seed=a.seed, t0=a.start)]
        target = int(a.mb * 1024 * 1024)
        size = 0
        with open(a.out, "w", encoding="utf-8") as f:
            while size < target:
                chunk = "\n".join(base) + "\n"
                f.write(chunk)
                size += len(chunk.encode("utf-8"))
        return
    with open(a.out, "w", encoding="utf-8") as f:
        for _, t in lines(n=a.lines, mb=a.mb, seed=a.seed, t0=a.start):
            f.write(t + "\n")


if __name__ == "__main__":
    main()
