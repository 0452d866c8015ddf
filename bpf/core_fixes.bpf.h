/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every kernel-version difference the BPF side reads through lives here,
 * as ___flavour structs checked with bpf_core_field_exists(). Never
 * LINUX_VERSION_CODE: a distribution kernel's version says little about
 * its backports.
 */
#ifndef PF_CORE_FIXES_BPF_H
#define PF_CORE_FIXES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/*
 * struct net::net_cookie was an atomic64_t generated on first use
 * (v5.7, "net: Introduce netns_cookie"), and became a plain u64 set when
 * the namespace is created (v5.12, "net: Remove the atomic64 from
 * net_cookie"). bpf_get_netns_cookie() returns the same value, so the
 * cgroup hooks and the tracing hooks agree on it.
 */
struct net___atomic_cookie {
	atomic64_t net_cookie;
} __attribute__((preserve_access_index));

static __always_inline __u64 pf_net_cookie(const struct net *net)
{
	if (!net)
		return 0;
	if (bpf_core_field_exists(((struct net___atomic_cookie *)0)->net_cookie.counter))
		return BPF_CORE_READ((struct net___atomic_cookie *)net, net_cookie.counter);
	return BPF_CORE_READ(net, net_cookie);
}

/*
 * The same from a typed (BTF) pointer, as BTF tracepoints and iterators get:
 * a direct load where net_cookie is a plain u64, no probe-read helper call.
 */
static __always_inline __u64 pf_net_cookie_btf(const struct net *net)
{
	if (!net)
		return 0;
	if (bpf_core_field_exists(((struct net___atomic_cookie *)0)->net_cookie.counter))
		return BPF_CORE_READ((struct net___atomic_cookie *)net, net_cookie.counter);
	return net->net_cookie;
}

/*
 * task_struct::start_boottime (v5.5, "proc: use boottime for process start
 * time"); older kernels call it real_start_time. It is the clock of
 * /proc/<pid>/stat's starttime, so identities from exec events and from
 * /proc scans compare.
 */
struct task_struct___real_start {
	u64 real_start_time;
} __attribute__((preserve_access_index));

/*
 * task_struct::self_exec_id counts the execs of a task's line: copied at
 * fork and clone, incremented by each exec. It tells one program of a
 * process from the next even when the exec event was lost. u32 until v5.7
 * ("signal: Extend exec_id to 64bits"), u64 since: the low 32 bits (read
 * first on little-endian, the only byte order procflow builds for) are
 * enough to tell consecutive programs apart.
 */
static __always_inline __u32 pf_task_exec_id(const struct task_struct *task)
{
	return (__u32)BPF_CORE_READ(task, self_exec_id);
}

static __always_inline __u64 pf_task_start_ns(const struct task_struct *task)
{
	if (bpf_core_field_exists(task->start_boottime))
		return BPF_CORE_READ(task, start_boottime);
	return BPF_CORE_READ((struct task_struct___real_start *)task, real_start_time);
}

/*
 * tcp_sock::snd_cwnd was renamed tcp_snd_cwnd-accessor-only in v5.19 (the
 * field itself kept its name, but is read through tcp_snd_cwnd()); the
 * field name is stable, nothing to fix. mss_cache, srtt_us, total_retrans
 * and lost_out are stable since before v5.4.
 */

/*
 * The socket cookie as the kernel stores it, for hooks that cannot call
 * bpf_get_socket_cookie() (kprobes; fentry before v5.12). 0 until some
 * hook generated it; see sock_tiers.bpf.h for who does.
 */
static __always_inline __u64 pf_sock_cookie(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
}

/*
 * inet_csk_accept(sk, flags, err, kern) became inet_csk_accept(sk, arg)
 * with struct proto_accept_arg in v6.10 ("net: have do_accept() take a
 * struct proto_accept_arg argument"). An fexit program finds the return
 * value after the arguments: ctx[4] before, ctx[2] after. The check is a
 * load-time constant, so the verifier only walks the branch that applies.
 */
static __always_inline struct sock *pf_csk_accept_ret(unsigned long long *ctx)
{
	struct sock *sk;

	/* The barriers keep the two loads apart: one load from a computed
	 * offset would be a variable context access, which the verifier
	 * rejects. */
	if (bpf_core_type_exists(struct proto_accept_arg)) {
		sk = (struct sock *)ctx[2];
		barrier_var(sk);
	} else {
		sk = (struct sock *)ctx[4];
		barrier_var(sk);
	}
	return sk;
}

#endif
