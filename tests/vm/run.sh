#!/usr/bin/env bash
# The VM stage: boot each kernel of kernels.txt under qemu (software
# emulation: KVM guests hang in the firmware on these hosts) with an
# initramfs holding procflow, the guest end-to-end test and the ping-pong;
# run the test once per hook tier the kernel offers; print a kernel-by-tier
# table and the measurements; exit 1 if any cell fails.
#
#   tests/vm/run.sh BUILD_DIR
#
# Environment: PF_VM_KERNELS (a kernels file, default tests/vm/kernels.txt),
# PF_VM_BENCH_SECS (seconds per ping-pong run, default 2), PF_VM_BENCH_ROUNDS
# (ping-pong pairs per tier, default 3; 0 skips the measurements),
# PF_VM_BENCH_CONNS (connections for the CPU figure, default 1000),
# PF_VM_TIMEOUT (seconds per guest, default 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
kernels=${PF_VM_KERNELS:-$here/kernels.txt}
secs=${PF_VM_BENCH_SECS:-2}
rounds=${PF_VM_BENCH_ROUNDS:-3}
conns=${PF_VM_BENCH_CONNS:-1000}
timeout_s=${PF_VM_TIMEOUT:-300}
cache=$build/vm-cache
work=$build/vm-stage
all_tiers=(fentry kprobe tracepoint)
start=$(date +%s)

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
printf 'BENCH_SECS=%s\nBENCH_CONNS=%s\nBENCH_ROUNDS=%s\n' "$secs" "$conns" "$rounds" \
	>"$root/pfvm.conf"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.cpio.gz"

# ---- one guest per kernel -------------------------------------------------
declare -A cell
labels=()
fail=0
while read -r label suite regex expect; do
	case $label in '' | '#'*) continue ;; esac
	labels+=("$label")
	vmlinuz=$("$here/fetch-kernel.sh" "$cache" "$suite" "$regex") || {
		echo "vm: cannot fetch the $label kernel" >&2
		for t in "${all_tiers[@]}"; do cell[$label,$t]="NO-KERNEL"; done
		fail=1
		continue
	}
	log=$work/$label.log
	t0=$(date +%s)
	echo "== vm $label: $(basename "$(dirname "$vmlinuz")")"
	timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 -nographic \
		-no-reboot -kernel "$vmlinuz" -initrd "$work/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1" </dev/null >"$log" 2>&1 || true
	tr -d '\r' <"$log" >"$log.txt"
	grep '^PFVM \(e2e \(PASS\|FAIL\)\|tiers\|done\|kernel\)' "$log.txt" | sed 's/^PFVM /   /' || true
	offered=$(sed -n 's/^PFVM tiers//p' "$log.txt")
	for t in "${all_tiers[@]}"; do
		if grep -q "^PFVM e2e RESULT tier=$t PASS" "$log.txt"; then
			cell[$label,$t]=PASS
		elif grep -q "^PFVM e2e RESULT tier=$t FAIL" "$log.txt"; then
			cell[$label,$t]=FAIL
		elif [[ ",$expect," == *",$t,"* ]]; then
			# Expected here but not offered, or the guest never got to it.
			cell[$label,$t]=$([[ " $offered " == *" $t "* ]] && echo "FAIL" || echo "UNUSABLE")
		else
			cell[$label,$t]="-"
		fi
		case ${cell[$label,$t]} in PASS | -) ;; *) fail=1 ;; esac
	done
	grep -q '^PFVM done' "$log.txt" || { echo "vm $label: the guest did not finish (see $log.txt)"; fail=1; }
	echo "   guest time: $(($(date +%s) - t0)) s (log: $log.txt)"
done <"$kernels"

# ---- the report ------------------------------------------------------------
echo
echo "VM stage: end-to-end test per kernel and hook tier"
printf '%-10s' kernel; printf ' %-10s' "${all_tiers[@]}"; echo
for l in "${labels[@]}"; do
	printf '%-10s' "$l"
	for t in "${all_tiers[@]}"; do printf ' %-10s' "${cell[$l,$t]}"; done
	echo
done
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

if [ "$rounds" -gt 0 ]; then
	echo
	echo "Ping-pong over loopback (round trips/s, both ends on one vCPU) with each tier, as a"
	echo "ratio to the run without the agent just before it (median of $rounds pairs), and agent"
	echo "CPU (utime+stime) per 1,000 TCP connections; TCG emulation, so compare within a kernel"
	printf '%-8s %-11s %10s %10s %7s %13s\n' kernel tier "no agent" "agent" ratio "cpu ms/1000"
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
				if (v["conns"] > 0) cpu[t] = v["agent_cpu_ms_per_1000"]
			}
			END {
				for (i = 1; i <= nt; i++) {
					t = order[i]
					for (j = 1; j <= n[t]; j++) { x[j] = ratio[t, j]; y[j] = b[t, j]; z[j] = r[t, j] }
					printf "%-8s %-11s %10.0f %10.0f %7.2f %13s\n", k, t, med(y, n[t]), med(z, n[t]), med(x, n[t]), (t in cpu) ? cpu[t] : "?"
				}
			}'
	done
fi
echo
echo "VM stage: $(($(date +%s) - start)) s, $([ $fail -eq 0 ] && echo PASS || echo FAIL)"
exit $fail
