#!/usr/bin/env bash
# On the kernel this runs on: every tier `procflow check` calls not usable
# must, when forced with --hook-tier, fail cleanly (exit 1, one line on
# stderr naming the tier and the hook); every usable tier, forced, must
# start and stop cleanly (exit 0 on SIGTERM). On the build hosts (locked
# down, no kprobes) that is: fentry and kprobe are clean errors, the
# tracepoint tier runs. Needs root.
#
#   host_tiers.sh PROCFLOW
set -uo pipefail
agent=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

"$agent" check >"$tmp/check" 2>/dev/null
for tier in fentry kprobe tracepoint; do
	status=$(awk -v t="$tier" '$1 == t { $1 = ""; print; exit }' "$tmp/check")
	if [ -z "$status" ]; then
		echo "FAIL $tier: procflow check does not list the tier"
		fail=1
		continue
	fi
	case $status in
	*"not usable"*)
		timeout 20 "$agent" run -o "$tmp/out-$tier" --runtime-dir "$tmp/run-$tier" --hook-tier "$tier" >"$tmp/out" 2>"$tmp/err"
		rc=$?
		lines=$(wc -l <"$tmp/err")
		if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] &&
			grep -q "hook tier $tier (forced with --hook-tier) cannot run on this kernel: " "$tmp/err"; then
			echo "PASS $tier: not usable here; forcing it is a clean error: $(cat "$tmp/err")"
		else
			echo "FAIL $tier: forcing an unusable tier gave exit $rc and $lines lines:"
			sed 's/^/    /' "$tmp/err"
			fail=1
		fi
		;;
	*)
		"$agent" run -o "$tmp/out-$tier" --runtime-dir "$tmp/run-$tier" --hook-tier "$tier" 2>"$tmp/err" &
		pid=$!
		for _ in $(seq 100); do
			grep -q "ready" "$tmp/err" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -TERM "$pid" 2>/dev/null
		wait "$pid"
		rc=$?
		if [ "$rc" -eq 0 ] && grep -q "hook tier: $tier (forced with --hook-tier)" "$tmp/err"; then
			echo "PASS $tier: usable here; forced, it runs"
		else
			echo "FAIL $tier: usable per check, but forced it gave exit $rc:"
			sed 's/^/    /' "$tmp/err"
			fail=1
		fi
		;;
	esac
done
# The fentry UDP counters are optional (the cgroup_skb pair counts UDP
# without them): a line saying they do not load or attach says so too.
while IFS= read -r line; do
	case $line in
	*"loads, attaches"*) ;;
	*"(optional: the cgroup_skb pair counts UDP)"*) echo "PASS check, optional hook: $line" ;;
	*)
		echo "FAIL check calls a UDP counter missing without saying it is optional: $line"
		fail=1
		;;
	esac
done < <(grep "(UDP counters)" "$tmp/check")
grep -q "(UDP counters)" "$tmp/check" || { echo "FAIL check does not list the UDP counters"; fail=1; }
exit $fail
