#!/usr/bin/env bash
# The VM stage: boot each kernel of kernels.txt under qemu (software
# emulation: KVM guests hang in the firmware on these hosts) with an
# initramfs holding procflow and the guest programs.
#
#   tests/vm/run.sh BUILD_DIR            the test (make test, make test-vm):
#       the end-to-end test once per hook tier each kernel offers; a
#       kernel-by-tier table; exit 1 if any cell fails.
#   tests/vm/run.sh --bench BUILD_DIR    the measurements (make vm-bench, part of
#       make bench): ping-pong ratios, agent CPU and BPF time per tier (each
#       program's time per run in the guest logs, BPFPROG lines); no verdict.
#
# Time limits come from the work, not one number for a whole guest: the
# guest prints "PFVM step NAME" before each step, and each kind of step has
# its own limit (STEP_LIMIT below, scaled by PF_VM_SLOWDOWN). A guest that
# overruns a step is stopped and reported with its kernel, step and tier.
# A kernel that cannot be downloaded is reported as a download failure, not
# as a test failure (the stage still fails: nothing was tested on it).
#
# Environment: PF_VM_KERNELS (a kernels file, default tests/vm/kernels.txt),
# PF_VM_CACHE (downloaded kernels, default /var/cache/procflow-vm, kept across
# clones), PF_VM_SLOWDOWN (multiplies every step limit, default 1), and for
# --bench: PF_VM_BENCH_SECS (seconds per ping-pong run, default 2),
# PF_VM_BENCH_ROUNDS (ping-pong pairs per tier, default 3), PF_VM_BENCH_CONNS
# (connections for the CPU figure, default 1000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=test
if [ "${1:-}" = --bench ]; then
	mode=bench
	shift
fi
build=$(cd "${1:?usage: run.sh [--bench] BUILD_DIR}" && pwd)
kernels=${PF_VM_KERNELS:-$here/kernels.txt}
secs=${PF_VM_BENCH_SECS:-2}
rounds=${PF_VM_BENCH_ROUNDS:-3}
conns=${PF_VM_BENCH_CONNS:-1000}
slow=${PF_VM_SLOWDOWN:-1}
cache=${PF_VM_CACHE:-/var/cache/procflow-vm}
work=$build/vm-$mode
all_tiers=(fentry kprobe tracepoint)
start=$(date +%s)

# Seconds a step may take before the guest is called hung. About five times
# what a step takes on an idle 2-core machine under TCG (boot 8-15 s, check
# 5-10 s, one tier's e2e 35-45 s, one bench pair 20-40 s), so a busy or
# slower machine passes and a real hang is still caught within minutes.
declare -A STEP_LIMIT=([boot]=180 [check]=120 [e2e]=300 [bench]=300)

for tool in qemu-system-x86_64 busybox cpio; do
	command -v "$tool" >/dev/null || {
		echo "vm: $tool is missing (scripts/install-deps.sh installs it)" >&2
		exit 1
	}
done
for f in procflow vm/pf_vm_e2e vm/pf_pingpong; do
	[ -x "$build/$f" ] || { echo "vm: $build/$f is not built" >&2; exit 1; }
done

# ---- the initramfs (one for every kernel) --------------------------------
rm -rf "$work" && mkdir -p "$work/root"/{bin,proc,sys,dev,tmp,etc}
root=$work/root
cp "$(command -v busybox)" "$root/bin/busybox"
cp "$build/procflow" "$build/vm/pf_vm_e2e" "$build/vm/pf_pingpong" "$root/bin/"
ln -s pf_vm_e2e "$root/bin/pf_client"
ln -s pf_vm_e2e "$root/bin/pf_server"
# procflow's shared libraries and the dynamic loader, at the paths it asks for.
ldd "$build/procflow" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
cp "$here/guest-init.sh" "$root/init"
chmod +x "$root/init"
printf 'MODE=%s\nBENCH_SECS=%s\nBENCH_CONNS=%s\nBENCH_ROUNDS=%s\n' "$mode" "$secs" "$conns" \
	"$rounds" >"$root/pfvm.conf"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.cpio.gz"

# ---- one guest, watched step by step ---------------------------------------
# Boots the guest with its console in $2, follows the heartbeats and stops
# qemu when a step overruns its limit. Prints nothing; sets `hung` to
# "STEP [tier=T] after N s" or leaves it empty.
hung=
run_guest() {
	local vmlinuz=$1 log=$2 qpid step=boot since limit now last
	hung=
	qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 -nographic -no-reboot \
		-kernel "$vmlinuz" -initrd "$work/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1" </dev/null >"$log" 2>&1 &
	qpid=$!
	since=$(date +%s)
	while kill -0 "$qpid" 2>/dev/null; do
		last=$(tr -d '\r' <"$log" | sed -n 's/^PFVM step //p' | tail -n 1)
		if [ -n "$last" ] && [ "$last" != "$step" ]; then
			step=$last
			since=$(date +%s)
		fi
		limit=$((${STEP_LIMIT[${step%% *}]:-300} * slow))
		now=$(date +%s)
		if [ $((now - since)) -gt "$limit" ]; then
			hung="$step after $((now - since)) s (limit $limit s)"
			kill "$qpid" 2>/dev/null || true
			break
		fi
		# A watchdog's poll, not a synchronisation: qemu's exit ends the loop.
		sleep 1
	done
	wait "$qpid" 2>/dev/null || true
}

declare -A cell
labels=()
fail=0
download_fail=()
while read -r label suite regex expect; do
	case $label in '' | '#'*) continue ;; esac
	labels+=("$label")
	rc=0
	vmlinuz=$("$here/fetch-kernel.sh" "$cache" "$suite" "$regex") || rc=$?
	if [ "$rc" -ne 0 ]; then
		if [ "$rc" -eq 3 ]; then
			echo "vm $label: DOWNLOAD FAILURE: the kernel could not be fetched (see above); no test ran on it"
			download_fail+=("$label")
			v=NO-DOWNLOAD
		else
			echo "vm $label: no kernel package (see above)"
			v=NO-KERNEL
		fi
		for t in "${all_tiers[@]}"; do cell[$label,$t]=$v; done
		fail=1
		continue
	fi
	log=$work/$label.log
	t0=$(date +%s)
	echo "== vm $label: $(basename "$(dirname "$vmlinuz")")"
	run_guest "$vmlinuz" "$log"
	tr -d '\r' <"$log" >"$log.txt"
	grep '^PFVM \(e2e \(PASS\|FAIL\)\|tiers\|done\|kernel\|step\)' "$log.txt" | sed 's/^PFVM /   /' || true
	offered=$(sed -n 's/^PFVM tiers//p' "$log.txt")
	for t in "${all_tiers[@]}"; do
		if [ "$mode" = bench ]; then
			cell[$label,$t]=$([[ " $offered " == *" $t "* ]] && echo measured || echo "-")
			continue
		fi
		if grep -q "^PFVM e2e RESULT tier=$t PASS" "$log.txt"; then
			cell[$label,$t]=PASS
		elif grep -q "^PFVM e2e RESULT tier=$t FAIL" "$log.txt"; then
			cell[$label,$t]=FAIL
		elif [ -n "$hung" ] && [[ "$hung" == *"tier=$t "* ]]; then
			cell[$label,$t]=HUNG
		elif [[ ",$expect," == *",$t,"* ]]; then
			# Expected here but not offered, or the guest never got to it.
			cell[$label,$t]=$([[ " $offered " == *" $t "* ]] && echo "NOT-RUN" || echo "UNUSABLE")
		else
			cell[$label,$t]="-"
		fi
		case ${cell[$label,$t]} in PASS | -) ;; *) fail=1 ;; esac
	done
	if [ -n "$hung" ]; then
		echo "vm $label: the guest hung in step $hung; stopped (see $log.txt)"
		fail=1
	elif ! grep -q '^PFVM done' "$log.txt"; then
		echo "vm $label: the guest stopped before it finished (see $log.txt)"
		fail=1
	fi
	echo "   guest time: $(($(date +%s) - t0)) s (log: $log.txt)"
done <"$kernels"

# ---- the report ------------------------------------------------------------
echo
echo "VM stage ($mode): per kernel and hook tier"
printf '%-10s' kernel; printf ' %-10s' "${all_tiers[@]}"; echo
for l in "${labels[@]}"; do
	printf '%-10s' "$l"
	for t in "${all_tiers[@]}"; do printf ' %-10s' "${cell[$l,$t]}"; done
	echo
done

if [ "$mode" = test ]; then
	# The same traffic must give the same records whatever the tier: the byte
	# counts of each case, side by side (the counters are shared by every tier,
	# so any difference is a finding).
	echo
	echo "Bytes per case and tier (client bytes_out / server bytes_in)"
	for l in "${labels[@]}"; do
		f=$work/$l.log.txt
		[ -f "$f" ] || continue
		sed -n 's/^PFVM e2e PASS tier=\([a-z]*\) \([a-z0-9]*\) \(client\|server\):.* bytes_\(in\|out\) \([0-9]*\).*/\1 \2 \3 \5/p' "$f" |
			awk -v k="$l" '{ c = $2 " " $3; v[c] = v[c] sprintf(" %s=%s", $1, $4)
					if (!((c, $4) in seen)) { seen[c, $4] = 1; n[c]++ } }
				END { for (c in v) printf "%-8s %-12s%s  %s\n", k, c, v[c], n[c] == 1 ? "same" : "DIFFERENT" }' | sort
	done
else
	echo
	echo "Ping-pong over loopback (round trips/s, both ends on one vCPU) with each tier, as a"
	echo "ratio to the run without the agent just before it (median of $rounds pairs, min-max),"
	echo "and, in the first round, agent CPU (utime+stime) per 1,000 TCP connections and the"
	echo "BPF time (kernel.bpf_stats, every program) per round trip and per connection, in a"
	echo "run of their own; TCG emulation, so compare within a kernel"
	printf '%-8s %-11s %10s %10s %7s %11s %13s %10s %12s\n' kernel tier "no agent" "agent" ratio "min-max" "cpu ms/1000" "bpf ns/rt" "bpf us/conn"
	for l in "${labels[@]}"; do
		f=$work/$l.log.txt
		[ -f "$f" ] || continue
		# Pairs of lines: "tier=none ..." then "tier=T ...".
		sed -n 's/^PFVM bench round=[0-9]* BENCH //p' "$f" | awk -v k="$l" '
			function med(a, n,   i, j, t) {
				for (i = 2; i <= n; i++)
					for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
				return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
			}
			{
				for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
				if (v["tier"] == "none") { base = v["pingpong_rate"]; next }
				t = v["tier"]
				if (!(t in n)) order[++nt] = t
				n[t]++
				if (base > 0) { ratio[t, n[t]] = v["pingpong_rate"] / base }
				b[t, n[t]] = base; r[t, n[t]] = v["pingpong_rate"]
				if (v["conns"] > 0) {
					cpu[t] = v["agent_cpu_ms_per_1000"]
					nsrt[t] = v["bpf_ns_per_rt"]
					usconn[t] = sprintf("%.1f", v["bpf_ns_per_conn"] / 1000)
				}
			}
			END {
				for (i = 1; i <= nt; i++) {
					t = order[i]; lo = 1e9; hi = 0
					for (j = 1; j <= n[t]; j++) {
						x[j] = ratio[t, j]; y[j] = b[t, j]; z[j] = r[t, j]
						if (x[j] < lo) lo = x[j]
						if (x[j] > hi) hi = x[j]
					}
					printf "%-8s %-11s %10.0f %10.0f %7.2f %5.2f-%-5.2f %13s %10s %12s\n", k, t, med(y, n[t]), med(z, n[t]), med(x, n[t]), lo, hi, (t in cpu) ? cpu[t] : "?", (t in nsrt) ? nsrt[t] : "?", (t in usconn) ? usconn[t] : "?"
				}
			}'
	done
fi
echo
if [ ${#download_fail[@]} -gt 0 ]; then
	echo "VM stage: download failure for kernel(s) ${download_fail[*]}: the network or the mirror, not procflow; those kernels were not tested"
fi
if [ "$mode" = test ]; then
	np=0 nf=0
	for l in "${labels[@]}"; do
		for t in "${all_tiers[@]}"; do
			case ${cell[$l,$t]} in PASS) np=$((np + 1)) ;; -) ;; *) nf=$((nf + 1)) ;; esac
		done
	done
	echo "VM stage cells: $np passed, $nf failed"
fi
echo "VM stage ($mode): $(($(date +%s) - start)) s, $([ $fail -eq 0 ] && echo PASS || echo FAIL)"
exit $fail
