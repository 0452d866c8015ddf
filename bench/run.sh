#!/usr/bin/env bash
# procflow benchmark: overhead on real traffic (against no agent and tcplife),
# attribution under process churn, the agent's own cost, and user space alone.
#
#   bench/run.sh BUILD_DIR          (as root; the agent is BUILD_DIR/procflow)
#
# Writes bench/report.md (and the raw results next to it in bench/out/). The method
# and the reasons for it are in bench/README.md; the short version:
#   1. Two network namespaces joined by a veth pair, 198.18.1.1 (server) and
#      198.18.1.2 (client); 198.18.0.0/15 is reserved for benchmarking and no
#      packet leaves the namespaces this script makes. An EXIT trap removes them
#      and stops, by PID, every process the script started.
#   2. Overhead: seven traffic rows, each with no agent (A), procflow (B) and
#      tcplife (C), interleaved A B C A B C ... so drift hits all three alike.
#      Client and server share one pinned CPU.
#   3. Churn: fresh processes per second, each making one connection, against
#      the share of them the flow log names exactly (path, args, PID).
#   4. Cost: agent CPU per 1,000 flows, peak RSS and BPF map memory at 1,000 and
#      100,000 concurrent connections.
#   5. User space: aggbench (pf_agg__add + pf_agg__flush) timed and under callgrind.
#
# Knobs (environment): PF_BENCH_RUNS (7) rounds of the overhead rows,
# PF_BENCH_SECONDS (3) seconds per traffic run, PF_BENCH_RATES ("250 500 1000 2000
# 4000") churn rates, PF_BENCH_CHURN_SECONDS (3), PF_BENCH_BIG (100000) the large
# flow count, PF_BENCH_PIN (last CPU, "none" for no pinning), PF_BENCH_AGENT,
# PF_BENCH_ONLY (comma list of phases: overhead,churn,cost,user), PF_BENCH_KEEP=1,
# PF_BENCH_ROWS (overhead rows, default all seven), PF_BENCH_MODES ("none procflow
# tcplife"; "emptyskb" adds a cgroup_skb program that passes every packet and does
# nothing else: the fixed cost of any per-packet cgroup_skb hook; "base" runs the
# agent binary PF_BENCH_BASE, e.g. a copy of build/procflow from before a change, so
# old and new are compared in the same rounds), PF_BENCH_COST_NS ("1000 BIG") the
# connection counts of the cost phase, PF_BENCH_WRAP a command the cost phase's agent
# runs under (e.g. "valgrind --tool=massif --massif-out-file=/tmp/massif.%p", a heap
# profile; the figures of such a run are the profiler's, not the agent's),
# PF_BENCH_HOLD_S (5) seconds the cost phase holds its connections, and waits after
# closing them (longer under a profiler, whose flushes take longer than 2 s).
set -euo pipefail

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

[ $# -eq 1 ] || die "usage: bench/run.sh BUILD_DIR"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF)"
BUILD=$(cd "$1" && pwd) || die "no build directory $1"
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT=${PF_BENCH_AGENT:-$BUILD/procflow}
BASE_AGENT=${PF_BENCH_BASE:-}
RUNS=${PF_BENCH_RUNS:-7}
SECS=${PF_BENCH_SECONDS:-3}
RATES=${PF_BENCH_RATES:-"250 500 1000 2000 4000"}
CHURN_SECS=${PF_BENCH_CHURN_SECONDS:-3}
BIG=${PF_BENCH_BIG:-100000}
ONLY=${PF_BENCH_ONLY:-overhead,churn,cost,user}
COST_NS=${PF_BENCH_COST_NS:-"1000 $BIG"}
# Seconds the cost phase holds the connections open, and waits after closing them.
HOLD_S=${PF_BENCH_HOLD_S:-5}
read -r -a WRAP <<<"${PF_BENCH_WRAP:-}"
READY_TIMEOUT=60
# Under a profiler the agent starts (and flushes) many times slower.
[ ${#WRAP[@]} -eq 0 ] || READY_TIMEOUT=900
# The agent's start-up scan of /proc must not land in a measured run.
SETTLE=0.5
# Flush interval of the agent in the overhead rows: short enough that flushes
# (reading the flow map, writing JSON) happen inside every measured run.
OVH_FLUSH=2

[ -x "$AGENT" ] || die "agent not found or not executable: $AGENT (build it first)"
for v in RUNS SECS CHURN_SECS BIG HOLD_S; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[ "$RUNS" -le 21 ] && [ "$SECS" -le 30 ] && [ "$CHURN_SECS" -le 10 ] && [ "$BIG" -le 200000 ] &&
	[ "$HOLD_S" -le 600 ] ||
	die "bounds: RUNS <= 21, SECONDS <= 30, CHURN_SECONDS <= 10, BIG <= 200000, HOLD_S <= 600"
for n in $COST_NS; do
	[[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -le 200000 ] || die "PF_BENCH_COST_NS: counts must be 1..200000"
done
for r in $RATES; do
	[[ $r =~ ^[1-9][0-9]*$ ]] && [ "$r" -le 20000 ] || die "churn rates must be 1..20000"
done
# The peers and tools of the benchmark, from Debian (only those missing).
missing=()
for pkg in iperf3 libbpf-tools valgrind python3 iproute2; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "cannot install ${missing[*]}"
fi
TCPLIFE=$(command -v tcplife || true)
[ -n "$TCPLIFE" ] || TCPLIFE=/usr/sbin/tcplife
[ -x "$TCPLIFE" ] || die "tcplife not found (apt-get install libbpf-tools)"
command -v iperf3 >/dev/null || die "iperf3 not found (apt-get install iperf3)"
has() { [[ ",$ONLY," == *",$1,"* ]]; }

# Client and server of the overhead rows share one CPU (taskset -c), the last one by
# default. Unpinned, a request/response rate on this VM jumps between ~30k and
# ~210k/s depending on whether the scheduler puts the two on one vCPU or two (a
# cross-vCPU wake-up of a halted vCPU goes through the hypervisor); that swamps a
# 3 % effect. Pinned, each round trip is two direct context switches with the BPF
# programs on the measured path. The agents are not pinned: they take the other CPU,
# as a node agent would.
PF_BENCH_PIN=${PF_BENCH_PIN:-$(($(nproc) - 1))}
PIN=()
[ "$PF_BENCH_PIN" = none ] || PIN=(taskset -c "$PF_BENCH_PIN")
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

# A partial run (PF_BENCH_ONLY, PF_BENCH_ROWS, PF_BENCH_MODES) writes its report
# elsewhere with PF_BENCH_REPORT, so it never replaces the full run's bench/report.md.
REPORT=${PF_BENCH_REPORT:-$HERE/report.md}
mkdir -p "$BUILD/bench" "$HERE/out"
PP=$BUILD/bench/pingpong
AB=$BUILD/bench/aggbench
cc -O2 -Wall -Wextra -D_GNU_SOURCE -o "$PP" "$HERE/pingpong.c" || die "cannot build pingpong"
[ -f "$BUILD/libpf_lib.a" ] || die "no $BUILD/libpf_lib.a (build the project first)"
cc -O2 -g -Wall -Wextra -D_GNU_SOURCE -I"$HERE/../lib" -I"$HERE/../include" -o "$AB" \
	"$HERE/aggbench.c" "$BUILD/libpf_lib.a" || die "cannot build aggbench"
SKB_EMPTY=$BUILD/bench/skb_empty.bpf.o
VMLINUX_DIR=$HERE/../bpf/vmlinux/$(uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
clang -g -O2 -Wall -target bpf -I"$VMLINUX_DIR" -c "$HERE/skb_empty.bpf.c" -o "$SKB_EMPTY" ||
	die "cannot build skb_empty.bpf.c"

NS_S=pfbench-$$-srv
NS_C=pfbench-$$-cli
SRV=198.18.1.1
CLI=198.18.1.2
P_RR=5201 P_CRR=5202 P_UDP=5203 P_IPERF=5204 P_CHURN=5300 P_HOLD=6000
# Hold servers (and client processes) for the many-flows phase: root here lacks
# CAP_SYS_RESOURCE, so no process can raise its descriptor limit above the hard
# limit (20,000 on these machines); 8 of each keep every process under 12,500.
NHOLD=8
TMP=$(mktemp -d "/tmp/pfbench-$$-XXXXXX")
RES=$HERE/out/results.tsv
: >"$RES"
PIDS=()
AGENT_PID=
TRACEFS_MOUNTED=0
# Pin of the empty cgroup_skb program while mode emptyskb is attached.
SKB_PIN=/sys/fs/bpf/pfbench-$$-skb-empty
BPF_STATS_OLD=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	ip netns del "$NS_C" 2>/dev/null || true
	ip netns del "$NS_S" 2>/dev/null || true
	skb_empty_detach
	echo "$BPF_STATS_OLD" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null || true
	[ "$TRACEFS_MOUNTED" = 1 ] && umount /sys/kernel/tracing 2>/dev/null
	if [ "${PF_BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
# Mode emptyskb: the empty program on the root cgroup's ingress and egress hooks,
# where procflow attaches its own (ALLOW_MULTI, beside any other job's).
skb_empty_attach() {
	[ -n "$CGROOT" ] || die "no cgroup2 mount for mode emptyskb"
	bpftool prog load "$SKB_EMPTY" "$SKB_PIN" || die "cannot load $SKB_EMPTY"
	bpftool cgroup attach "$CGROOT" ingress pinned "$SKB_PIN" multi &&
		bpftool cgroup attach "$CGROOT" egress pinned "$SKB_PIN" multi ||
		die "cannot attach the empty cgroup_skb program to $CGROOT"
}
skb_empty_detach() {
	[ -e "$SKB_PIN" ] || return 0
	bpftool cgroup detach "$CGROOT" ingress pinned "$SKB_PIN" 2>/dev/null || true
	bpftool cgroup detach "$CGROOT" egress pinned "$SKB_PIN" 2>/dev/null || true
	rm -f "$SKB_PIN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# tcplife attaches to a tracepoint by name, which libbpf resolves through tracefs.
if ! mountpoint -q /sys/kernel/tracing; then
	mount -t tracefs nodev /sys/kernel/tracing && TRACEFS_MOUNTED=1
fi

result() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RES"; } # section name mode value

# kernel.bpf_stats_enabled=1 times every BPF program run on the host with two clock
# reads (kvm-clock here: ~0.6 us per TCP round trip with the cgroup_skb pair), and a
# run killed during the bpf_stats phase leaves it on. Measured rows always run with
# it off; it is turned on only for the diagnosis phase and restored at exit.
result setup bpf_stats_before - "$BPF_STATS_OLD"
if [ "$BPF_STATS_OLD" != 0 ]; then
	log "kernel.bpf_stats_enabled was $BPF_STATS_OLD: off for the measured rows, restored at exit"
	echo 0 >/proc/sys/kernel/bpf_stats_enabled || die "cannot turn kernel.bpf_stats_enabled off"
fi
forget() { # PID: reaped, so cleanup must never signal a recycled one
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# -- namespaces ------------------------------------------------------------------
ip netns add "$NS_S"
ip netns add "$NS_C"
# The veth pair is created inside the namespaces: nothing touches the root namespace.
ip -n "$NS_S" link add eth0 type veth peer name eth0 netns "$NS_C"
ip -n "$NS_S" addr add "$SRV/24" dev eth0
ip -n "$NS_C" addr add "$CLI/24" dev eth0
for ns in "$NS_S" "$NS_C"; do
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
done
# Per-namespace sysctls: the whole ephemeral range for the client (25,000
# concurrent connections per server port, and churn without reusing ports), and a
# deep accept queue for the servers.
ip netns exec "$NS_C" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
# The connect-request-close row leaves ~10,000 client sockets per second in
# TIME_WAIT; without reuse, connect() soon scans an almost full port range and
# every later run is slower than the one before (an order effect, not overhead).
ip netns exec "$NS_C" sysctl -qw net.ipv4.tcp_tw_reuse=1
ip netns exec "$NS_S" sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192
for _ in $(seq 100); do
	ip -n "$NS_C" -o link show eth0 | grep -q "state UP" &&
		ip -n "$NS_S" -o link show eth0 | grep -q "state UP" && break
	sleep 0.05
done

declare -A SERVER_PID
start_server() { # NAME CMD...: background in the server namespace, wait for "listening"
	local name=$1 ns=$NS_S
	shift
	# The loopback row's server shares the client's namespace (its lo).
	[ "$name" = crrlo ] && ns=$NS_C
	ip netns exec "$ns" "$@" >"$TMP/server-$name.out" 2>&1 &
	PIDS+=($!)
	SERVER_PID[$name]=$! # ip netns exec and taskset exec: this is the server
	for _ in $(seq 200); do
		grep -qis "listening" "$TMP/server-$name.out" && return 0
		sleep 0.05
	done
	die "server $name did not start: $(cat "$TMP/server-$name.out")"
}

# -- agents ------------------------------------------------------------------------
# MODE: none, procflow or tcplife. Sets AGENT_PID (empty for none).
start_agent() { # MODE DIR [procflow args...]
	local mode=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	AGENT_PID=
	case $mode in
	none) return 0 ;;
	emptyskb)
		skb_empty_attach
		return 0
		;;
	procflow | base)
		local bin=$AGENT
		if [ "$mode" = base ]; then
			bin=$BASE_AGENT
			[ -x "$bin" ] || die "mode base needs PF_BENCH_BASE (an agent binary)"
		fi
		# A runtime directory of its own: another agent on the host (a test's)
		# holds the default one, and a second agent there exits at once.
		# AGENT_WRAP (the cost phase's PF_BENCH_WRAP) execs the agent in
		# this same process, so AGENT_PID is the agent's either way.
		"${AGENT_WRAP[@]}" "$bin" run --output-dir "$dir" --runtime-dir "$dir/run" "$@" 2>"$dir/agent.err" >/dev/null &
		AGENT_PID=$!
		PIDS+=("$AGENT_PID")
		for _ in $(seq $((READY_TIMEOUT * 20))); do
			grep -qs "procflow: ready" "$dir/agent.err" && return 0
			kill -0 "$AGENT_PID" 2>/dev/null || die "agent exited before ready: $(cat "$dir/agent.err")"
			sleep 0.05
		done
		die "agent not ready after ${READY_TIMEOUT}s: $(cat "$dir/agent.err")"
		;;
	tcplife)
		# Line-buffered so the header (printed once attached) is seen at once.
		stdbuf -oL "$TCPLIFE" -4 >"$dir/tcplife.out" 2>"$dir/agent.err" &
		AGENT_PID=$!
		PIDS+=("$AGENT_PID")
		for _ in $(seq $((READY_TIMEOUT * 20))); do
			grep -qs "^PID" "$dir/tcplife.out" && return 0
			kill -0 "$AGENT_PID" 2>/dev/null || die "tcplife exited: $(cat "$dir/agent.err")"
			sleep 0.05
		done
		die "tcplife not ready after ${READY_TIMEOUT}s"
		;;
	esac
}

stop_agent() {
	local rc=0
	skb_empty_detach
	[ -n "$AGENT_PID" ] || return 0
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID" || rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 143 ] || log "warning: agent exited $rc on SIGTERM"
	AGENT_EXIT=$rc
	forget "$AGENT_PID"
	AGENT_PID=
}

AGENT_WRAP=()
CLK_TCK=$(getconf CLK_TCK)
# utime+stime in clock ticks (fields 14 and 15; the comm field may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# BPF map memory as the kernel accounts it: "memlock" of every map fd the process
# holds (/proc/PID/fdinfo; the same figure bpftool map show prints as memlock).
map_bytes() {
	local f sum=0 m
	for f in /proc/"$1"/fdinfo/*; do
		grep -q '^map_type:' "$f" 2>/dev/null || continue
		m=$(awk '$1 == "memlock:" { print $2 }' "$f")
		sum=$((sum + ${m:-0}))
	done
	echo "$sum"
}
now() { date +%s.%N; }

# -- phase 1: overhead on real traffic ------------------------------------------------
# One row: prints the rate (round trips/s, connections/s or Mbit/s); the
# pingpong rows leave their whole output in $TMP/row.out (client CPU per op).
run_row() { # ROW
	local cli=(timeout $((SECS + 60)) ip netns exec "$NS_C" "${PIN[@]}") o=$TMP/row.out
	: >"$o"
	case $1 in
	tcp_rr_1B_1conn) "${cli[@]}" "$PP" client "$SRV" $P_RR "$SECS" 1 >"$o" ;;
	tcp_rr_1KiB_1conn) "${cli[@]}" "$PP" client "$SRV" $P_RR "$SECS" 1024 >"$o" ;;
	tcp_rr_1B_32conn) "${cli[@]}" "$PP" multi "$SRV" $P_RR "$SECS" 1 32 >"$o" ;;
	tcp_rr_1KiB_32conn) "${cli[@]}" "$PP" multi "$SRV" $P_RR "$SECS" 1024 32 >"$o" ;;
	tcp_crr) "${cli[@]}" "$PP" connect "$SRV" $P_CRR 1000000 "$SECS" >"$o" ;;
	tcp_crr_lo) "${cli[@]}" "$PP" connect 127.0.0.1 $P_CRR 1000000 "$SECS" >"$o" ;;
	tcp_bulk_iperf3) "${cli[@]}" iperf3 -c "$SRV" -p $P_IPERF -t "$SECS" -J |
		python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))'
		return ;;
	udp_rr_1B) "${cli[@]}" "$PP" udpclient "$SRV" $P_UDP "$SECS" 1 >"$o" ;;
	udp_query_1B) "${cli[@]}" "$PP" udpquery "$SRV" $P_UDP "$SECS" 1 >"$o" ;;
	esac
	awk '/^(roundtrips|connections)_per_s/ { print $2 }' "$o"
}
# The server process of a pingpong row (its CPU time is read around each run).
row_server() { # ROW
	case $1 in
	tcp_rr_*) echo "${SERVER_PID[rr]}" ;;
	tcp_crr) echo "${SERVER_PID[crr]}" ;;
	tcp_crr_lo) echo "${SERVER_PID[crrlo]}" ;;
	udp_*) echo "${SERVER_PID[udp]}" ;;
	esac
}
# Other jobs on a shared machine may run BPF agents of their own (procflow's e2e
# tests do): per-packet programs on the root cgroup that are not ours slow every mode
# alike and make a ratio look better than it is. Counted before and after each run,
# while none of ours is attached; the report says how many runs had them.
foreign_skb() {
	[ -n "$CGROOT" ] || { echo 0; return; }
	bpftool cgroup show "$CGROOT" 2>/dev/null | awk '$2 ~ /^cgroup_inet_(ingress|egress)$/ { n++ } END { print n + 0 }'
}
ROWS=${PF_BENCH_ROWS:-"tcp_rr_1B_1conn tcp_rr_1KiB_1conn tcp_rr_1B_32conn tcp_rr_1KiB_32conn tcp_crr tcp_crr_lo tcp_bulk_iperf3 udp_rr_1B udp_query_1B"}
MODES=${PF_BENCH_MODES:-"none procflow tcplife"}

# One bpf_stats run of ROW with agent MODE: ns per program run, per operation, and
# runs per operation, of the agent's own programs only (the prog_id of every
# program fd it holds: other jobs' agents may load programs of the same names, and
# start or stop during the run).
stats_run() { # ROW MODE
	local row=$1 smode=$2 sd=$TMP/stats-$1-$2 label=$1 v
	[ "$smode" = procflow ] || label="$row ($smode)"
	mkdir -p "$sd"
	start_agent "$smode" "$sd" --flush-interval $OVH_FLUSH
	sleep "$SETTLE"
	grep -h '^prog_id:' /proc/"$AGENT_PID"/fdinfo/* 2>/dev/null |
		awk '{ print $2 }' | sort -u >"$sd/ids"
	bpftool prog show -j >"$sd/before.json"
	v=$(run_row "$row") || true
	bpftool prog show -j >"$sd/after.json"
	stop_agent
	python3 - "$sd" "$label" "${v:-0}" "$SECS" >>"$RES" <<'EOF'
import json, sys
d, row, rate, secs = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def load(p):
    return {x["id"]: x for x in json.load(open(p))}
ids = {int(x) for x in open(d + "/ids").read().split()}
b, a = load(d + "/before.json"), load(d + "/after.json")
a = {k: v for k, v in a.items() if k in b and k in ids}
ops = rate * secs  # round trips (or connections) in the run
for pid, x in sorted(a.items()):
    y = b.get(pid)
    if not y or "run_time_ns" not in x:
        continue
    ns, cnt = x["run_time_ns"] - y.get("run_time_ns", 0), x["run_cnt"] - y.get("run_cnt", 0)
    if cnt <= 0:
        continue
    print("bpfstat\t%s\t%s:%s\t%.0f %.0f %.2f" % (row, x.get("type", "?"), x.get("name", "?"),
          ns / cnt, ns / ops if ops else 0, cnt / ops if ops else 0))
EOF
}

if has overhead; then
	start_server rr "${PIN[@]}" "$PP" server "$SRV" $P_RR
	start_server crr "${PIN[@]}" "$PP" server "$SRV" $P_CRR
	start_server crrlo "${PIN[@]}" "$PP" server 127.0.0.1 $P_CRR
	start_server udp "${PIN[@]}" "$PP" udpserver "$SRV" $P_UDP
	start_server iperf "${PIN[@]}" iperf3 -s -B "$SRV" -p $P_IPERF --forceflush
	log "overhead: $RUNS rounds x rows ($ROWS) x modes ($MODES) x ${SECS}s (interleaved)"
	for r in $(seq "$RUNS"); do
		for row in $ROWS; do
			for mode in $MODES; do
				f0=$(foreign_skb)
				start_agent "$mode" "$TMP/ovh-$r-$row-$mode" --flush-interval $OVH_FLUSH
				# Every mode waits alike: the agent's start-up scan and the
				# previous agent's detach must not land in a measured run.
				sleep "$SETTLE"
				c0=0
				[ -n "$AGENT_PID" ] && c0=$(cpu_ticks "$AGENT_PID")
				spid=$(row_server "$row")
				s0=0
				[ -n "$spid" ] && s0=$("$PP" cpu "$spid")
				t0=$(now)
				v=$(run_row "$row") || true
				t1=$(now)
				# CPU ns per op of the pinned pair (client + server): the
				# cost per operation, steadier than the rate on a busy host.
				if [ -n "$spid" ] && [ -n "$v" ]; then
					s1=$("$PP" cpu "$spid")
					awk -v s=$((s1 - s0)) -v r="$v" -v secs="$SECS" '
						/^(roundtrips|connections) / { ops = $2 }
						/^client_cpu_ns_per_op/ { c = $2 }
						END { if (ops > 0) printf "%.1f\n", c + s / ops }' "$TMP/row.out" >"$TMP/cpuop"
					result ovh_cpuns "$row" "$mode" "$(cat "$TMP/cpuop")"
				fi
				if [ -n "$AGENT_PID" ]; then
					c1=$(cpu_ticks "$AGENT_PID")
					result ovh_cpu "$row" "$mode" "$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", 100 * c / hz / (b - a) }')"
				fi
				stop_agent
				f1=$(foreign_skb)
				result ovh_foreign "$row" "$mode" $((f0 > f1 ? f0 : f1))
				[ -n "$v" ] || die "overhead row $row ($mode) failed"
				result ovh "$row" "$mode" "$v"
				log "  round $r $row $mode: $v"
			done
		done
	done

	# Diagnosis, not measurement: per-program BPF run time (kernel.bpf_stats_enabled
	# adds its own cost, so this run is kept out of the rows above).
	log "overhead: BPF per-program run time (bpf_stats_enabled, one run per row)"
	echo 1 >/proc/sys/kernel/bpf_stats_enabled
	# With mode base, the older agent is measured too; its rows say "(base)".
	smodes=procflow
	[[ " $MODES " == *" base "* ]] && smodes="base procflow"
	for row in tcp_rr_1B_1conn tcp_crr tcp_crr_lo udp_rr_1B udp_query_1B; do
		for smode in $smodes; do
			stats_run "$row" "$smode"
		done
	done
	echo 0 >/proc/sys/kernel/bpf_stats_enabled
fi

# -- phase 2: attribution under churn -------------------------------------------------
if has churn; then
	log "churn: rates $RATES, ${CHURN_SECS}s each"
	k=0
	for rate in $RATES; do
		port=$((P_CHURN + k))
		k=$((k + 1))
		start_server "churn$rate" "$PP" server "$SRV" $port
		d=$TMP/churn-$rate
		# Level 0 keeps the source port in each line, so every process's flow is
		# its own line; 1 s flushes write them soon after.
		start_agent procflow "$d" --flush-interval 1 --aggregation 0
		sleep "$SETTLE"
		c0=$(cpu_ticks "$AGENT_PID")
		: >"$d/spawned.txt"
		ip netns exec "$NS_C" "$PP" spawn "$SRV" $port "$rate" "$CHURN_SECS" \
			>>"$d/spawned.txt" 2>"$d/spawn.err" || log "  warning: spawn: $(cat "$d/spawn.err")"
		sleep 3 # flushes that write the last flows
		c1=$(cpu_ticks "$AGENT_PID")
		stop_agent
		achieved=$(awk '/^spawned/ { print $6 }' "$d/spawn.err")
		lost=$(sed -n 's/^procflow: \([0-9][0-9]*\) process events lost.*/\1/p' "$d/agent.err" | awk '{ s += $1 } END { print s + 0 }')
		read -r n exact named seen < <(python3 - "$d" "$PP" "$SRV" "$port" <<'EOF'
import json, sys
d, pp, srv, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
flows = {}
for raw in open(d + "/flows.log", "rb"):
    try:
        r = json.loads(raw)
    except ValueError:
        continue
    if r.get("reporter") == "src" and r.get("dest_port") == port and r.get("proto") == "tcp":
        flows.setdefault(r["source_port"], []).append(r)
n = exact = named = seen = 0
for line in open(d + "/spawned.txt"):
    pid, sport, tag = line.split()
    n += 1
    recs = flows.get(int(sport), [])
    if recs:
        seen += 1
    want = "once %s %d %s" % (srv, port, tag)
    ok = [r for r in recs if r.get("process_name") == pp]
    if ok:
        named += 1
    if any(r.get("process_id") == pid and r.get("process_args") == [want] for r in ok):
        exact += 1
print(n, exact, named, seen)
EOF
		)
		result churn "$rate" achieved "$achieved"
		result churn "$rate" processes "$n"
		result churn "$rate" exact "$exact"
		result churn "$rate" path_only "$named"
		result churn "$rate" in_log "$seen"
		result churn "$rate" lost "$lost"
		result churn "$rate" cpu_pct "$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v s=$((CHURN_SECS + 3)) 'BEGIN { printf "%.1f", 100 * c / hz / s }')"
		log "  rate $rate/s: achieved $achieved/s, $exact/$n exact, $seen in log, $lost lost"
	done
fi

# -- phase 3: agent cost at N concurrent flows --------------------------------------
if has cost; then
	for p in $(seq 0 $((NHOLD - 1))); do
		start_server "hold$p" "$PP" server "$SRV" $((P_HOLD + p))
	done
	hard=$(ulimit -Hn)
	for n in $COST_NS; do
		[ "$hard" = unlimited ] || [ $((n / NHOLD + 100)) -le "$hard" ] ||
			die "$n connections need $((n / NHOLD + 100)) descriptors per process; hard limit is $hard"
	done
	AGENT_WRAP=("${WRAP[@]}")
	for n in $COST_NS; do
		d=$TMP/cost-$n
		log "cost: $n concurrent connections"
		# -v: each flush logs its CPU time (the loop thread's), read below.
		start_agent procflow "$d" --flush-interval 2 -v
		sleep 1
		# Baseline: the same agent idle for 3 s before the connections.
		c_idle0=$(cpu_ticks "$AGENT_PID")
		rss_idle=$(status_kib "$AGENT_PID" VmRSS)
		map_idle=$(map_bytes "$AGENT_PID")
		sleep 3
		c0=$(cpu_ticks "$AGENT_PID")
		t0=$(now)
		nproc_hold=$NHOLD
		[ "$n" -lt 10000 ] && nproc_hold=1
		per=$((n / nproc_hold))
		HP=()
		for p in $(seq 0 $((nproc_hold - 1))); do
			ip netns exec "$NS_C" "$PP" hold "$SRV" $((P_HOLD + p)) 1 "$per" $((HOLD_S + 60)) >"$d/hold-$p.out" 2>&1 &
			HP+=($!)
			PIDS+=($!)
		done
		for _ in $(seq 1800); do # up to 180 s for all connections to be open
			ok=0
			for p in $(seq 0 $((nproc_hold - 1))); do
				grep -q '^held' "$d/hold-$p.out" && ok=$((ok + 1))
			done
			[ "$ok" -eq "$nproc_hold" ] && break
			for h in "${HP[@]}"; do kill -0 "$h" 2>/dev/null || die "hold client failed: $(cat "$d"/hold-*.out)"; done
			sleep 0.1
		done
		t_open=$(now)
		sleep "$HOLD_S" # two flushes with every connection open
		map_full=$(map_bytes "$AGENT_PID")
		for h in "${HP[@]}"; do kill -USR1 "$h"; done
		for h in "${HP[@]}"; do wait "$h" || true; forget "$h"; done
		sleep "$HOLD_S" # the flushes that report them completed
		c1=$(cpu_ticks "$AGENT_PID")
		t1=$(now)
		hwm=$(status_kib "$AGENT_PID" VmHWM)
		stop_agent
		# The costliest flush (the one reading every connection, or the one
		# that reports them completed) and how many kernel flow entries it read.
		read -r flush_cpu flush_entries < <(sed -n 's/.*flush: [0-9]* lines, \([0-9]*\) kernel flow entries.* \([0-9.]*\) s CPU$/\2 \1/p' "$d/agent.err" |
			sort -g | tail -1 | awk '{ print $1 + 0, $2 + 0 } END { if (!NR) print 0, 0 }')
		full=$(sed -n 's/^procflow: \([0-9][0-9]*\) packets not counted.*/\1/p' "$d/agent.err" | awk '{ s += $1 } END { print s + 0 }')
		read -r src dst < <(python3 - "$d/flows.log" "$P_HOLD" "$NHOLD" <<'EOF'
import json, sys
path, base, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
src = dst = 0
for raw in open(path, "rb"):
    try:
        r = json.loads(raw)
    except ValueError:
        continue
    if r.get("proto") != "tcp" or not base <= r.get("dest_port", 0) < base + n:
        continue
    if r.get("reporter") == "src":
        src += r.get("num_flows_started") or 0
    elif r.get("reporter") == "dst":
        dst += r.get("num_flows_started") or 0
print(src, dst)
EOF
		)
		result cost "$n" open_s "$(awk -v a="$t0" -v b="$t_open" 'BEGIN { printf "%.1f", b - a }')"
		result cost "$n" idle_cpu_s_per_3s "$(awk -v c=$((c0 - c_idle0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", c / hz }')"
		result cost "$n" cpu_s "$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", c / hz }')"
		result cost "$n" wall_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
		result cost "$n" rss_idle_kib "$rss_idle"
		result cost "$n" hwm_kib "$hwm"
		result cost "$n" map_idle_bytes "$map_idle"
		result cost "$n" map_full_bytes "$map_full"
		result cost "$n" flows_src "$src"
		result cost "$n" flows_dst "$dst"
		result cost "$n" flow_map_full "$full"
		result cost "$n" flush_cpu_max_s "$flush_cpu"
		result cost "$n" flush_entries "$flush_entries"
		result cost "$n" sock_map_full "$(sed -n 's/^procflow: \([0-9][0-9]*\) socket owners not recorded.*/\1/p' "$d/agent.err" | awk '{ s += $1 } END { print s + 0 }')"
		log "  $n: cpu $((c1 - c0)) ticks, HWM $hwm KiB, maps $map_full B, src $src dst $dst, map-full $full, costliest flush ${flush_cpu} s CPU for $flush_entries entries"
	done
	AGENT_WRAP=()
fi

# -- phase 4: user space alone --------------------------------------------------------
if has user; then
	log "user space: aggbench, 5 runs per level, then callgrind"
	for lvl in 0 1; do
		for _ in 1 2 3 4 5; do
			"$AB" 100000 5 "$lvl" >"$TMP/ab.out"
			result user "level$lvl" add_events_per_s "$(awk '/^add_events_per_s/ { print $2 }' "$TMP/ab.out")"
			result user "level$lvl" flush_lines_per_s "$(awk '/^flush_lines_per_s/ { print $2 }' "$TMP/ab.out")"
		done
		result user "level$lvl" lines_per_round "$(awk '/^lines_per_round/ { print $2 }' "$TMP/ab.out")"
		result user "level$lvl" bytes_per_line "$(awk '/^bytes_per_line/ { print $2 }' "$TMP/ab.out")"
		# Callgrind counts instructions, which do not depend on what else the
		# machine is doing: the figure to compare between commits.
		cg=$TMP/cg-$lvl.out
		valgrind --tool=callgrind --callgrind-out-file="$cg" "$AB" 20000 2 "$lvl" >"$TMP/abcg.out" 2>/dev/null
		lines=$(awk '/^lines_per_round/ { print $2 * 2 }' "$TMP/abcg.out")
		callgrind_annotate --inclusive=yes "$cg" 2>/dev/null >"$TMP/cg-$lvl.txt"
		add_ir=$(awk '/pf_agg__add[ (]|pf_agg__add$/ { gsub(",", "", $1); print $1; exit }' "$TMP/cg-$lvl.txt")
		flush_ir=$(awk '/pf_agg__flush[ (]|pf_agg__flush$/ { gsub(",", "", $1); print $1; exit }' "$TMP/cg-$lvl.txt")
		result user "level$lvl" ir_per_event "$(awk -v i="${add_ir:-0}" 'BEGIN { printf "%.0f", i / 40000 }')"
		result user "level$lvl" ir_per_line "$(awk -v i="${flush_ir:-0}" -v n="$lines" 'BEGIN { printf "%.0f", n ? i / n : 0 }')"
		head -40 "$TMP/cg-$lvl.txt" >"$HERE/out/callgrind-level$lvl.txt"
	done
fi

# -- report ------------------------------------------------------------------------
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$CPU_MODEL" ] || CPU_MODEL=$(uname -m)
COMMIT=$(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$HERE/.." status --porcelain -- agent bpf lib include 2>/dev/null | grep -q . && echo " (agent sources modified)" || true)
META=$HERE/out/meta.txt
cat >"$META" <<EOF
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=$COMMIT$DIRTY
kernel=$(uname -r)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
cpu=$CPU_MODEL
cores=$(nproc)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
load=$LOADAVG
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
pin=$PF_BENCH_PIN
runs=$RUNS
secs=$SECS
churn_secs=$CHURN_SECS
tcplife=$TCPLIFE ($(dpkg-query -W -f='${Version}' libbpf-tools 2>/dev/null || echo ?))
iperf3=$(iperf3 --version 2>/dev/null | head -1 | cut -d' ' -f2)
big=$BIG
ovh_flush=$OVH_FLUSH
elapsed=$SECONDS
EOF
# The report can be rewritten from these two files: bench/report.py RESULTS META.
python3 "$HERE/report.py" "$RES" "$META" >"$REPORT"
# Redaction of secrets in arguments runs once per exec event: its cost per event,
# from the pure-logic benchmark (no agent, no root needed for this part).
if has user && [ -x "$BUILD/bench_redact" ]; then
	{
		printf '\n## Redaction cost per exec event\n\n```\n'
		"$BUILD/bench_redact" 100000
		printf '```\n'
	} >>"$REPORT"
fi
cat "$REPORT"
