// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The fixed cost of an attached cgroup_skb program: one program that passes every
 * packet and does nothing else. bench/run.sh attaches it to the root cgroup's
 * ingress and egress hooks (mode "emptyskb") so the overhead rows show what any
 * per-packet cgroup_skb program costs before it executes a single instruction of
 * its own: the hook's call path, the program dispatch, the socket lookup of the
 * packet's cgroup. Section "cgroup/skb" sets no expected attach type, so the one
 * program attaches to both directions.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/skb")
int pf_bench_skb_pass(struct __sk_buff *skb)
{
	return 1;
}
