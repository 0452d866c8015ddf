#!/bin/busybox sh
# /init of the VM stage's initramfs. In MODE=test it runs the end-to-end test
# once per hook tier this kernel offers (as `procflow check` reports them);
# in MODE=bench it runs the measurements instead (make vm-bench). Then it
# powers off. Every line meant for the host starts with "PFVM "; the host
# reads them from the serial console as they come.
#
# Before each step the guest prints a heartbeat, "PFVM step NAME [tier=T]";
# the host gives every step a time limit of its own (tests/vm/run.sh), so a
# guest that hangs is stopped and named by its step, kernel and tier.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /run && mount -t tmpfs run /run
mkdir -p /sys/fs/cgroup /sys/fs/bpf
mount -t cgroup2 none /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
ip link set lo up
hostname pfvm

# Set by the host in /pfvm.conf: MODE, BENCH_SECS, BENCH_CONNS, BENCH_ROUNDS.
. /pfvm.conf
say() { echo "PFVM $*"; }
step() { say "step $*"; }
t0=$(cut -d' ' -f1 /proc/uptime)
say "kernel $(uname -r)"
step check
/bin/procflow check >/tmp/check 2>/dev/null
sed 's/^/PFVM check /' /tmp/check
# The "tiers" block of check: "  NAME  usable ..." or "  NAME  not usable (...)"
tiers=$(awk '/^tiers/ { f = 1; next } f && NF == 0 { f = 0 } f && $2 == "usable" { print $1 }' /tmp/check)
say "tiers" $tiers
if [ "$MODE" = test ]; then
	for t in $tiers; do
		step e2e tier=$t
		/bin/pf_vm_e2e e2e /bin/procflow "$t" "/tmp/e2e-$t" 7000 2>&1 | sed 's/^/PFVM e2e /'
	done
	say "e2e_seconds $(awk -v t0="$t0" '{ print $1 - t0 }' /proc/uptime)"
fi
# Each tier's ping-pong is measured right after one without the agent, in
# BENCH_ROUNDS rounds; the host takes the median of the ratios. The agent's
# CPU per connection is measured in the first round.
if [ "$MODE" = bench ]; then
	r=1
	while [ "$r" -le "$BENCH_ROUNDS" ]; do
		for t in $tiers; do
			step bench tier=$t round=$r
			n=0
			[ "$r" -eq 1 ] && n=$BENCH_CONNS
			for run in none "$t"; do
				c=0
				[ "$run" != none ] && c=$n
				/bin/pf_vm_e2e bench /bin/procflow "$run" /bin/pf_pingpong 7100 \
					"$BENCH_SECS" "$c" 2>&1 | sed "s/^/PFVM bench round=$r /"
			done
		done
		r=$((r + 1))
	done
fi
say "done $(awk -v t0="$t0" '{ print $1 - t0 }' /proc/uptime)"
poweroff -f
