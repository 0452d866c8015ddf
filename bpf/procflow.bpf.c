// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * procflow's kernel side: who owns each socket, and what each flow carried.
 *
 * Three concerns, all feeding the same maps and the same ring buffer:
 *
 *   process identity  scheduler tracepoints (exec, fork, exit) -> events
 *   socket ownership  hooks that run in the owning process's context
 *                     (socket(), connect(), listen(), accept(), UDP
 *                     sendmsg/recvmsg) -> socks map, keyed by socket cookie
 *   flow counters     cgroup_skb ingress/egress on the root cgroup ->
 *                     flows map, keyed by (cookie, local, remote)
 *
 * A hook tier is the set of programs that fill "socket ownership"; the
 * agent picks it by probing and turns the others off with autoload. This
 * file holds the tier that needs neither kprobes nor fentry
 * ("tracepoint"): tracepoints, BTF tracepoints, cgroup hooks and an
 * iterator; sock_tiers.bpf.h holds the "fentry" and "kprobe" tiers. The
 * BPF side only collects; user space joins and formats.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "procflow/abi.h"
#include "core_fixes.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define PF_S_IFMT 00170000
#define PF_S_IFSOCK 0140000
#define PF_TCP_FIN 0x01
#define PF_TCP_SYN 0x02
#define PF_TCP_RST 0x04
#define PF_TCP_ACK 0x10

/* Set by the agent before load. */
const volatile __u32 cfg_args_max = PF_ARGS_DEFAULT;
volatile __u8 cfg_include_loopback = 0; /* .bss, not rodata: a reload sets it live */
/* 1 in the tracepoint tier: inet_sock_set_state also claims owners (at
 * connect and listen). The other tiers claim in their own hooks and use
 * it only for role, completion and TCP figures. */
const volatile __u8 cfg_tcp_state_claims = 1;
/*
 * Features an older verifier may refuse, turned off by the loader when the
 * object does not load with them (the verifier skips code behind a false
 * read-only constant): the in-kernel path walk for relative exec paths
 * (too many states for 5.10/6.1 verifiers), and TCP counters in socket
 * storage (bpf_sk_storage_get() from a BTF tracepoint needs v5.11).
 */
const volatile __u8 cfg_path_walk = 1;
const volatile __u8 cfg_sk_storage = 1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PF_RINGBUF_BYTES);
} events SEC(".maps");

/* Plain hashes, not LRU: an evicted entry would be a flow or an owner lost
 * without a trace. When full, the update fails and is counted; the agent
 * deletes entries once their flows have been written. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PF_FLOWS_MAX);
	__type(key, struct pf_flow_key);
	__type(value, struct pf_flow_val);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PF_SOCKS_MAX);
	__type(key, __u64);
	__type(value, struct pf_sock_val);
} socks SEC(".maps");

/* TCP counters live with the socket: no bound to reach, freed with it. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pf_sk_flow);
} sk_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* An exec event is ~36 KiB: built here, never on the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_exec_event);
} exec_scratch SEC(".maps");

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += 1; /* per-CPU slot: no other writer */
}

/* ---- process identity ------------------------------------------------- */

/*
 * Wake the agent only when the ring buffer is a quarter full; otherwise
 * it drains the buffer on its own timer (every 100 ms). A wake-up per
 * event costs an interrupt-work round trip, which in a VM is a VM exit:
 * about 10 us per fork, exec and exit, measured here.
 */
static __always_inline __u64 rb_flags(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >
	    bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 4)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/*
 * The components of @f's path, leaf first, each NUL-terminated, into @buf
 * (PF_PATH_MAX + 256 bytes of room). Walks the dentry tree up, crossing
 * mount points, as d_path() does. Returns the bytes written, 0 when the
 * path could not be read whole. Deeper paths than PF_PATH_DEPTH come back
 * unresolved (left relative): 24 turns keep the verifier well under its
 * one-million-instruction limit; 40 do not.
 */
#define PF_PATH_DEPTH 24
static __always_inline __u32 path_components(struct file *f, char *buf)
{
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct mount *mnt = (void *)vm - bpf_core_field_offset(struct mount, mnt);
	__u32 off = 0;

	for (int i = 0; i < PF_PATH_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		const unsigned char *name;
		long n;

		if (d == BPF_CORE_READ(vm, mnt_root)) {
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

			if (up == mnt)
				return off; /* the root of the root mount */
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vm = (void *)up + bpf_core_field_offset(struct mount, mnt);
			continue;
		}
		if (d == parent)
			return off;
		if (off > PF_PATH_MAX - 256)
			return 0;
		name = BPF_CORE_READ(d, d_name.name);
		n = bpf_probe_read_kernel_str(buf + off, 256, name);
		if (n <= 0)
			return 0;
		/* The mask changes nothing (off + n <= PF_PATH_MAX) but gives
		 * off the same range at every turn, so the verifier sees the
		 * paths through one turn as equal and prunes them. */
		off = (off + n) & (2 * PF_PATH_MAX - 1);
		d = parent;
	}
	return 0; /* deeper than PF_PATH_DEPTH: a partial path would mislead */
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct pf_exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	struct mm_struct *mm;
	unsigned long arg_start, arg_end, len;
	long n;
	__u32 path_len, size;

	if (!e)
		return 0;
	e->hdr.ts_ns = bpf_ktime_get_boot_ns();
	e->hdr.type = PF_EV_EXEC;
	e->hdr.pid = BPF_CORE_READ(p, tgid);
	e->start_ns = pf_task_start_ns(BPF_CORE_READ(p, group_leader));
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->flags = 0;
	e->exec_id = pf_task_exec_id(p);
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* The path as passed to execve (bprm->filename): for a script it is
	 * the script, not the interpreter, which is what a user asks about. */
	n = bpf_probe_read_kernel_str(e->data, PF_PATH_MAX, BPF_CORE_READ(bprm, filename));
	path_len = n > 0 ? n - 1 : 0;
	if (n == PF_PATH_MAX)
		e->flags |= PF_EXEC_PATH_TRUNC;
	path_len &= PF_PATH_MAX - 1;

	/* The new image's argument area is in place and resident here: it was
	 * just copied in by the exec itself. */
	mm = BPF_CORE_READ(p, mm);
	arg_start = BPF_CORE_READ(mm, arg_start);
	arg_end = BPF_CORE_READ(mm, arg_end);
	len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len > cfg_args_max) {
		len = cfg_args_max;
		e->flags |= PF_EXEC_ARGS_TRUNC;
	}
	if (len > PF_ARGS_CAP) {
		len = PF_ARGS_CAP;
		e->flags |= PF_EXEC_ARGS_TRUNC;
	}
	if (bpf_probe_read_user(e->data + path_len, len, (void *)arg_start))
		len = 0;
	e->path_len = path_len;
	e->args_len = len;

	/* A relative path ("./prog") means nothing without the process's
	 * working directory, and execveat()/fexecve() name the file
	 * "/dev/fd/N[/name]": send the kernel's resolution of the file. */
	e->exe_len = 0;
	if (cfg_path_walk &&
	    (e->data[0] != '/' || (path_len >= 8 && e->data[1] == 'd' && e->data[2] == 'e' &&
				   e->data[3] == 'v' && e->data[4] == '/' && e->data[5] == 'f' &&
				   e->data[6] == 'd' && e->data[7] == '/'))) {
		__u32 off = path_len + len;

		if (off <= PF_PATH_MAX + PF_ARGS_CAP)
			e->exe_len = path_components(BPF_CORE_READ(bprm, file), e->data + off);
	}
	size = offsetof(struct pf_exec_event, data) + path_len + len + e->exe_len;
	if (size > sizeof(*e))
		return 0;
	if (bpf_ringbuf_output(&events, e, size, rb_flags()))
		stat_inc(PF_STAT_RB_DROPS);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(pf_fork, struct task_struct *parent, struct task_struct *child)
{
	struct pf_fork_event *e;

	/* A new thread is not a new process: its flows belong to the group. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(PF_STAT_RB_DROPS);
		return 0;
	}
	e->hdr.ts_ns = bpf_ktime_get_boot_ns();
	e->hdr.type = PF_EV_FORK;
	e->hdr.pid = BPF_CORE_READ(child, tgid);
	e->start_ns = pf_task_start_ns(child);
	e->parent_start_ns = pf_task_start_ns(BPF_CORE_READ(parent, group_leader));
	e->ppid = BPF_CORE_READ(parent, tgid);
	e->exec_id = pf_task_exec_id(child);
	BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(pf_exit, struct task_struct *p)
{
	struct pf_exit_event *e;

	/* Only the last thread of a group ends the process. signal->live is
	 * decremented before this tracepoint fires. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(PF_STAT_RB_DROPS);
		return 0;
	}
	e->hdr.ts_ns = bpf_ktime_get_boot_ns();
	e->hdr.type = PF_EV_EXIT;
	e->hdr.pid = BPF_CORE_READ(p, tgid);
	e->start_ns = pf_task_start_ns(BPF_CORE_READ(p, group_leader));
	BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

/* ---- socket ownership ----------------------------------------------------- */

/*
 * The current thread group uses the socket @cookie in process context:
 * record it as the owner. Only call this from hooks that run in the
 * process that made the call (never from softirq paths, where "current"
 * is whatever task was interrupted).
 */
static __always_inline void claim(__u64 cookie, __u64 netns, __u32 how)
{
	__u64 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pf_sock_val *v, nv = {};
	__u32 exec_id;

	if (!cookie || !tgid)
		return;
	exec_id = pf_task_exec_id((struct task_struct *)bpf_get_current_task());
	v = bpf_map_lookup_elem(&socks, &cookie);
	if (v) {
		if (v->tgid == tgid && v->exec_id == exec_id)
			return;
		/* A socket passed to another process (fork, SCM_RIGHTS) now
		 * belongs to the one using it; one kept across an exec, to the
		 * new program (same PID, new exec counter: the claim time then
		 * falls in the new program's identity). */
		v->tgid = tgid;
		v->ts_ns = bpf_ktime_get_boot_ns();
		v->claim = how;
		v->exec_id = exec_id;
		if (!v->netns)
			v->netns = netns;
		bpf_get_current_comm(v->comm, sizeof(v->comm));
		return;
	}
	nv.tgid = tgid;
	nv.ts_ns = bpf_ktime_get_boot_ns();
	nv.netns = netns;
	nv.claim = how;
	nv.exec_id = exec_id;
	/* Made at socket(): every flow of the socket comes after it, so
	 * PF_SOCK_FLOWS on it says whether any flow refers to the socket. */
	nv.flags = how == PF_CLAIM_CREATE ? PF_SOCK_BORN : 0;
	bpf_get_current_comm(nv.comm, sizeof(nv.comm));
	if (bpf_map_update_elem(&socks, &cookie, &nv, BPF_NOEXIST) == -7 /* E2BIG */)
		stat_inc(PF_STAT_SOCKS_FULL);
}

/*
 * The socket's last file reference is gone (close(), or its holder
 * exited), in every tier. Its entry must not outlive it: the agent deletes
 * entries with closed_ns set once their flows are written, and an entry
 * no flow refers to goes at once, so that a loop of socket()+close() (a
 * port probe, a program's address-family probe, a connect() that failed
 * before sending anything) cannot fill the map between two flushes.
 *
 * A UDP socket has no state machine: it is closed here. A TCP socket in
 * any state but CLOSE goes on (FIN_WAIT, LAST_ACK...) and is closed by
 * inet_sock_set_state; one in CLOSE never changes state again, so this
 * is its close. A TCP entry made at socket() that reaches here in CLOSE
 * without closed_ns never left CLOSE (the tracepoint sets closed_ns on the
 * way back to it), so it never carried a packet.
 */
static __always_inline void sock_released(__u64 cookie, __u32 proto, __u32 state)
{
	struct pf_sock_val *v;

	if (proto == IPPROTO_TCP && state != TCP_CLOSE)
		return;
	v = bpf_map_lookup_elem(&socks, &cookie);
	if (!v || v->closed_ns)
		return;
	if ((v->flags & (PF_SOCK_BORN | PF_SOCK_FLOWS)) == PF_SOCK_BORN) {
		bpf_map_delete_elem(&socks, &cookie);
		return;
	}
	v->closed_ns = bpf_ktime_get_boot_ns();
}

static __always_inline int inet_l4(struct bpf_sock *sk)
{
	return (sk->family == AF_INET || sk->family == AF_INET6) &&
	       (sk->protocol == IPPROTO_TCP || sk->protocol == IPPROTO_UDP);
}

SEC("cgroup/sock_create")
int pf_sock_create(struct bpf_sock *sk)
{
	if (inet_l4(sk))
		claim(bpf_get_socket_cookie(sk), bpf_get_netns_cookie(sk), PF_CLAIM_CREATE);
	return 1;
}

/* connect() and UDP sendmsg/recvmsg: all in the calling process. The hooks
 * never change the address; they return 1 (allow). */
#define PF_SOCK_ADDR_HOOK(name, sec, how)                                                          \
	SEC(sec)                                                                                   \
	int name(struct bpf_sock_addr *ctx)                                                        \
	{                                                                                          \
		claim(bpf_get_socket_cookie(ctx), bpf_get_netns_cookie(ctx), how);                 \
		return 1;                                                                          \
	}

PF_SOCK_ADDR_HOOK(pf_connect4, "cgroup/connect4", PF_CLAIM_CONNECT)
PF_SOCK_ADDR_HOOK(pf_connect6, "cgroup/connect6", PF_CLAIM_CONNECT)
PF_SOCK_ADDR_HOOK(pf_sendmsg4, "cgroup/sendmsg4", PF_CLAIM_UDP_MSG)
PF_SOCK_ADDR_HOOK(pf_sendmsg6, "cgroup/sendmsg6", PF_CLAIM_UDP_MSG)
PF_SOCK_ADDR_HOOK(pf_recvmsg4, "cgroup/recvmsg4", PF_CLAIM_UDP_MSG)
PF_SOCK_ADDR_HOOK(pf_recvmsg6, "cgroup/recvmsg6", PF_CLAIM_UDP_MSG)

/*
 * close() of a socket's last file reference, in the closing process (the
 * release runs from the task's own file-put work, never from softirq).
 * See sock_released() for what ends here.
 *
 * A socket still without an owner here was accepted without an address
 * buffer (so getpeername never ran) by the process closing it: a pre-fork
 * child that served one connection and is about to exit. It is the owner.
 * A socket with an owner keeps it: the closer of an inherited socket is
 * not the process that used it.
 */
SEC("cgroup/sock_release")
int pf_sock_release(struct bpf_sock *sk)
{
	struct pf_sock_val *v;
	__u64 cookie;

	if (!inet_l4(sk))
		return 1;
	cookie = bpf_get_socket_cookie(sk);
	v = bpf_map_lookup_elem(&socks, &cookie);
	if (!v || !v->tgid) {
		claim(cookie, bpf_get_netns_cookie(sk), PF_CLAIM_RELEASE);
		v = bpf_map_lookup_elem(&socks, &cookie);
	}
	sock_released(cookie, sk->protocol, sk->state);
	return 1;
}

/*
 * accept() returns a socket the kernel created in softirq context, where no
 * process is known; the process that accepts it is its owner. accept() with
 * an address buffer (what nearly every server passes) asks the new socket
 * for its peer's name before it returns, which runs the cgroup getpeername
 * hook in the accepting process, with the accepted socket. An accept
 * without an address buffer is found by the socket iterator at the next
 * flush while the socket is open, or by cgroup/sock_release when it is
 * closed.
 *
 * Syscall tracepoints would see every accept, but enabling any of them puts
 * every syscall of every process on the slow path (about 100 ns each here).
 */
PF_SOCK_ADDR_HOOK(pf_getpeername4, "cgroup/getpeername4", PF_CLAIM_ACCEPT)
PF_SOCK_ADDR_HOOK(pf_getpeername6, "cgroup/getpeername6", PF_CLAIM_ACCEPT)

static __always_inline struct pf_sock_val *sock_entry(__u64 cookie, __u64 netns)
{
	struct pf_sock_val *v = bpf_map_lookup_elem(&socks, &cookie), nv = {};

	if (v)
		return v;
	nv.netns = netns;
	if (bpf_map_update_elem(&socks, &cookie, &nv, BPF_NOEXIST) == -7)
		stat_inc(PF_STAT_SOCKS_FULL);
	return bpf_map_lookup_elem(&socks, &cookie);
}

/*
 * The socket-local counters die with the socket: at close, copy them into
 * the flows map, where the agent finds them at the next flush.
 */
static __always_inline void save_sk_flow(struct sock *sk)
{
	struct pf_sk_flow *f = bpf_sk_storage_get(&sk_flows, sk, 0, 0);
	struct pf_flow_key key = {};
	struct pf_flow_val val = {};

	if (!f || !f->cookie || f->skip)
		return;
	key.cookie = f->cookie;
	__builtin_memcpy(key.laddr, f->laddr, 16);
	__builtin_memcpy(key.raddr, f->raddr, 16);
	key.lport = f->lport;
	key.rport = f->rport;
	key.proto = f->proto;
	val.bytes_in = f->bytes_in;
	val.bytes_out = f->bytes_out;
	val.pkts_in = f->pkts_in;
	val.pkts_out = f->pkts_out;
	val.first_ns = f->first_ns;
	val.last_ns = bpf_ktime_get_boot_ns();
	val.role = f->role;
	val.flags = PF_FLOW_CLOSED;
	if (bpf_map_update_elem(&flows, &key, &val, BPF_ANY) == -7)
		stat_inc(PF_STAT_FLOWS_FULL);
	/* The socket may outlive the connection (its fd still open): the
	 * iterator must not report these counters again, also when the copy
	 * failed (the agent would take them for a new flow and count them
	 * twice). A flow whose copy failed is never read again; the agent
	 * forgets it after two reads and logs it (expire_unseen()). */
	f->skip = 2;
}

/*
 * An accepted socket is created in softirq and never passes
 * cgroup/sock_create, so its cookie would stay 0 until its first counted
 * packet. The passive-established callback runs before the socket turns
 * ESTABLISHED (and so before accept() can return it): generate the cookie
 * here, so the state tracepoint and every tier's accept hook can read it.
 * Shared by every tier; always returns 1 (no effect on the connection).
 */
SEC("sockops")
int pf_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		bpf_get_socket_cookie(skops);
	return 1;
}

/*
 * The TCP state machine: the side that sends the SYN is the source. Two
 * transitions run in the process that caused them (CLOSE->SYN_SENT in
 * connect(), ->LISTEN in listen()) and claim the owner; the others can run
 * in softirq and only record the role and the close.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pf_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct pf_sock_val *v;
	struct tcp_sock *tp;
	__u64 cookie, netns;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	/* Read, not generated: bpf_get_socket_cookie() is not offered to
	 * tracing programs before v5.12. cgroup/sock_create generated it for
	 * sockets made by socket(), pf_sockops for accepted ones. */
	cookie = pf_sock_cookie(sk);
	if (!cookie)
		return 0;
	netns = pf_net_cookie(sk->__sk_common.skc_net.net);

	if (newstate == TCP_SYN_SENT) {
		if (cfg_tcp_state_claims)
			claim(cookie, netns, PF_CLAIM_CONNECT);
		v = bpf_map_lookup_elem(&socks, &cookie);
		if (v)
			v->role = PF_ROLE_SRC;
	} else if (newstate == TCP_LISTEN) {
		if (cfg_tcp_state_claims)
			claim(cookie, netns, PF_CLAIM_LISTEN);
		v = bpf_map_lookup_elem(&socks, &cookie);
		if (v) {
			v->listener = 1;
			v->role = PF_ROLE_DST;
			v->lport = sk->__sk_common.skc_num;
		}
	} else if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		v = sock_entry(cookie, netns);
		if (v)
			v->role = PF_ROLE_DST;
	} else if (newstate == TCP_CLOSE) {
		if (cfg_sk_storage)
			save_sk_flow((struct sock *)sk);
		v = bpf_map_lookup_elem(&socks, &cookie);
		if (!v)
			return 0;
		v->closed_ns = bpf_ktime_get_boot_ns();
		/* TCP health at the end of the connection, in true units. */
		tp = (struct tcp_sock *)sk;
		v->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
		v->min_rtt_us = BPF_CORE_READ(tp, rtt_min.s[0].v);
		v->snd_cwnd = BPF_CORE_READ(tp, snd_cwnd);
		v->mss = BPF_CORE_READ(tp, mss_cache);
		v->total_retrans = BPF_CORE_READ(tp, total_retrans);
		v->lost_out = BPF_CORE_READ(tp, lost_out);
	}
	return 0;
}

/*
 * Sockets that existed before the agent: the agent runs this iterator over
 * every task's files at start-up (and when it meets a socket it has no
 * owner for). The file's holder is the owner.
 */
SEC("iter/task_file")
int pf_iter_sockets(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct pf_sock_val *v, nv = {};
	struct socket *sock;
	struct sock *sk;
	__u64 cookie;
	__u16 family;
	__u8 proto;

	if (!task || !file)
		return 0;
	/* No helpers here (bpf_sock_from_file is v5.11, bpf_get_socket_cookie
	 * for tracing programs v5.12): a socket's file has a socket inode and
	 * its struct socket as private data; the cookie is read, and a socket
	 * without one has carried no counted packet yet (the counters
	 * generate it; the next flush that meets its flow runs us again). */
	if ((BPF_CORE_READ(file, f_inode, i_mode) & PF_S_IFMT) != PF_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	proto = BPF_CORE_READ(sk, sk_protocol);
	if ((family != AF_INET && family != AF_INET6) ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return 0;
	cookie = pf_sock_cookie(sk);
	if (!cookie)
		return 0;
	v = bpf_map_lookup_elem(&socks, &cookie);
	if (v && v->tgid)
		return 0;
	if (v) {
		v->tgid = task->tgid;
		v->ts_ns = bpf_ktime_get_boot_ns();
		v->claim = PF_CLAIM_ITER;
		v->exec_id = pf_task_exec_id(task);
		BPF_CORE_READ_STR_INTO(&v->comm, task, comm);
		return 0;
	}
	nv.tgid = task->tgid;
	nv.ts_ns = bpf_ktime_get_boot_ns();
	nv.claim = PF_CLAIM_ITER;
	nv.exec_id = pf_task_exec_id(task);
	nv.netns = pf_net_cookie(BPF_CORE_READ(sk, __sk_common.skc_net.net));
	if (proto == IPPROTO_TCP && BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_LISTEN) {
		nv.listener = 1;
		nv.role = PF_ROLE_DST;
		nv.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	}
	BPF_CORE_READ_STR_INTO(&nv.comm, task, comm);
	if (bpf_map_update_elem(&socks, &cookie, &nv, BPF_NOEXIST) == -7)
		stat_inc(PF_STAT_SOCKS_FULL);
	return 0;
}

/* The agent reads the live TCP counters through this iterator: one
 * fixed-size record per socket, in the seq_file the agent reads. */
SEC("iter/bpf_sk_storage_map")
int pf_iter_sk_flows(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct pf_sk_flow *f = ctx->value;

	if (!ctx->sk || !f || !f->cookie || f->skip)
		return 0;
	bpf_seq_write(ctx->meta->seq, f, sizeof(*f));
	return 0;
}

#include "sock_tiers.bpf.h"

/* ---- flow counters ---------------------------------------------------------- */

static __always_inline int is_loopback(const __u8 a[16])
{
	/* ::ffff:127.0.0.0/104 or ::1 */
	if (a[10] == 0xff && a[11] == 0xff && a[12] == 127)
		return 1;
	for (int i = 0; i < 15; i++)
		if (a[i])
			return 0;
	return a[15] == 1;
}

static __always_inline void map_v4(__u8 out[16], __u32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

struct pf_pkt {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;
	__u16 rport;
	__u32 hdrlen; /* IP + transport header */
	__u8 l4;
	__u8 tcpflags;
};

/*
 * Parse the IP and TCP/UDP headers of @skb into @p, local side first.
 * Returns 0, or -1 for a packet that is not the socket's own protocol (an
 * ICMP error), a non-first fragment, or an IPv6 extension header chain.
 */
static __always_inline int parse(struct __sk_buff *skb, struct bpf_sock *sk, int egress,
				 struct pf_pkt *p)
{
	__u8 saddr[16], daddr[16];
	__u16 ports[2];
	__u32 hdrlen;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return -1;
		/* A non-first fragment has no ports: nothing to key it by. */
		if (ip.frag_off & bpf_htons(0x1fff))
			return -1;
		p->l4 = ip.protocol;
		hdrlen = ip.ihl * 4;
		map_v4(saddr, ip.saddr);
		map_v4(daddr, ip.daddr);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return -1;
		p->l4 = ip6.nexthdr; /* extension headers: not counted (rare on sockets) */
		hdrlen = sizeof(ip6);
		__builtin_memcpy(saddr, &ip6.saddr, 16);
		__builtin_memcpy(daddr, &ip6.daddr, 16);
	} else {
		return -1;
	}
	/* ICMP errors are delivered to the socket too; they are not the flow. */
	if (p->l4 != sk->protocol)
		return -1;
	if (bpf_skb_load_bytes(skb, hdrlen & 0x3f, ports, sizeof(ports)))
		return -1;
	p->tcpflags = 0;
	if (p->l4 == IPPROTO_TCP) {
		__u8 doff_flags[2];

		if (bpf_skb_load_bytes(skb, (hdrlen & 0x3f) + 12, doff_flags, 2))
			return -1;
		p->tcpflags = doff_flags[1];
		hdrlen += (doff_flags[0] >> 4) * 4;
	} else {
		hdrlen += 8;
	}
	p->hdrlen = hdrlen;
	if (egress) {
		__builtin_memcpy(p->laddr, saddr, 16);
		__builtin_memcpy(p->raddr, daddr, 16);
		p->lport = bpf_ntohs(ports[0]);
		p->rport = bpf_ntohs(ports[1]);
	} else {
		__builtin_memcpy(p->laddr, daddr, 16);
		__builtin_memcpy(p->raddr, saddr, 16);
		p->lport = bpf_ntohs(ports[1]);
		p->rport = bpf_ntohs(ports[0]);
	}
	return 0;
}

/* The IP+TCP header length of this GSO/GRO packet (only read when it
 * stands for several packets; the SYN's options make the first one's
 * length wrong for data). */
static __always_inline __u32 tcp_hdrlen(struct __sk_buff *skb)
{
	__u8 b[2];
	__u32 ip = skb->protocol == bpf_htons(ETH_P_IP) ? 20 : 40;

	if (ip == 20) {
		if (bpf_skb_load_bytes(skb, 0, b, 1))
			return 52;
		ip = (b[0] & 0xf) * 4;
	}
	if (bpf_skb_load_bytes(skb, (ip & 0x3f) + 12, b, 1))
		return ip + 32;
	return ip + (b[0] >> 4) * 4;
}

/*
 * A TCP packet on a connected socket: count it in the socket's own
 * storage. Returns 0 when counted (or deliberately left out), -1 to fall
 * back to the flows map.
 */
static __always_inline int count_tcp(struct __sk_buff *skb, struct bpf_sock *sk, int egress)
{
	struct pf_sk_flow *f = bpf_sk_storage_get(&sk_flows, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	__u32 segs;
	__u64 bytes;

	if (!f)
		return -1;
	if (!f->cookie) {
		struct pf_sock_val *s;
		struct pf_pkt p;
		__u64 cookie;

		/* The first packet: fill the tuple and the role once. */
		if (parse(skb, sk, egress, &p))
			return 0;
		__builtin_memcpy(f->laddr, p.laddr, 16);
		__builtin_memcpy(f->raddr, p.raddr, 16);
		f->lport = p.lport;
		f->rport = p.rport;
		f->proto = IPPROTO_TCP;
		f->skip = !cfg_include_loopback && (is_loopback(p.laddr) || is_loopback(p.raddr));
		f->first_ns = bpf_ktime_get_boot_ns();
		cookie = bpf_get_socket_cookie(skb);
		if ((p.tcpflags & (PF_TCP_SYN | PF_TCP_ACK)) == PF_TCP_SYN) {
			f->role = egress ? PF_ROLE_SRC : PF_ROLE_DST;
		} else {
			s = bpf_map_lookup_elem(&socks, &cookie);
			f->role = s ? s->role : PF_ROLE_UNKNOWN;
		}
		f->cookie = cookie;
	}
	if (f->skip)
		return 0;
	/* A GSO (egress) or GRO (ingress) skb stands for gso_segs packets on
	 * the wire, each with its own headers. */
	segs = skb->gso_segs;
	bytes = skb->len;
	if (segs > 1)
		bytes += (__u64)(segs - 1) * tcp_hdrlen(skb);
	else
		segs = 1;
	if (egress) {
		__sync_fetch_and_add(&f->bytes_out, bytes);
		__sync_fetch_and_add(&f->pkts_out, segs);
	} else {
		__sync_fetch_and_add(&f->bytes_in, bytes);
		__sync_fetch_and_add(&f->pkts_in, segs);
	}
	return 0;
}

/*
 * Count one packet (or one GSO/GRO super-packet) at the IP layer. The skb
 * data starts at the network header in cgroup_skb programs, for ingress and
 * egress alike, so skb->len counts the IP header as conntrack does.
 *
 * TCP connections count in socket storage (the hot path: no parsing, no
 * hash lookup after the first packet). Handshakes on a listener and UDP,
 * whose unconnected sockets talk to many peers, count in the flows map,
 * keyed by socket and peer.
 */
static __always_inline int count(struct __sk_buff *skb, int egress)
{
	struct bpf_sock *sk = skb->sk;
	struct pf_flow_key key = {};
	struct pf_flow_val *v;
	struct pf_pkt p;
	__u32 segs;
	__u64 bytes, now;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	if (cfg_sk_storage && sk->protocol == IPPROTO_TCP && sk->state != TCP_LISTEN) {
		if (!count_tcp(skb, sk, egress))
			return 1;
	} else if (sk->protocol != IPPROTO_UDP && sk->protocol != IPPROTO_TCP) {
		return 1;
	}
	if (parse(skb, sk, egress, &p))
		return 1;
	__builtin_memcpy(key.laddr, p.laddr, 16);
	__builtin_memcpy(key.raddr, p.raddr, 16);
	key.lport = p.lport;
	key.rport = p.rport;
	if (!cfg_include_loopback && (is_loopback(key.laddr) || is_loopback(key.raddr)))
		return 1;
	key.cookie = bpf_get_socket_cookie(skb);
	key.proto = p.l4;

	segs = skb->gso_segs;
	if (!segs)
		segs = 1;
	bytes = skb->len + (__u64)(segs - 1) * p.hdrlen;
	now = bpf_ktime_get_boot_ns();

	v = bpf_map_lookup_elem(&flows, &key);
	if (!v) {
		struct pf_flow_val nv = {};
		struct pf_sock_val *s = bpf_map_lookup_elem(&socks, &key.cookie);

		/* Before the flow exists: a release that sees no flag finds
		 * no flow referring to the socket (see sock_released). Only
		 * ever set, so a plain store is enough. */
		if (s && !(s->flags & PF_SOCK_FLOWS))
			s->flags |= PF_SOCK_FLOWS;
		nv.first_ns = now;
		if (p.l4 == IPPROTO_TCP && sk->state == TCP_LISTEN) {
			/* Handshake packets are delivered to the listener; the
			 * agent folds them into the accepted connection. */
			nv.flags = PF_FLOW_LISTENER;
			nv.role = PF_ROLE_DST;
		} else if (p.l4 == IPPROTO_TCP &&
			   (p.tcpflags & (PF_TCP_SYN | PF_TCP_ACK)) == PF_TCP_SYN) {
			nv.role = egress ? PF_ROLE_SRC : PF_ROLE_DST;
		} else if (p.l4 == IPPROTO_TCP) {
			nv.role = s ? s->role : PF_ROLE_UNKNOWN;
		} else {
			/* UDP: whoever sent the first datagram started it. */
			nv.role = egress ? PF_ROLE_SRC : PF_ROLE_DST;
		}
		if (bpf_map_update_elem(&flows, &key, &nv, BPF_NOEXIST) == -7) {
			stat_inc(PF_STAT_FLOWS_FULL);
			return 1;
		}
		v = bpf_map_lookup_elem(&flows, &key);
		if (!v)
			return 1;
	}
	if (egress) {
		__sync_fetch_and_add(&v->bytes_out, bytes);
		__sync_fetch_and_add(&v->pkts_out, segs);
	} else {
		__sync_fetch_and_add(&v->bytes_in, bytes);
		__sync_fetch_and_add(&v->pkts_in, segs);
	}
	v->last_ns = now;
	if (p.tcpflags & (PF_TCP_FIN | PF_TCP_RST))
		v->flags |= PF_FLOW_FIN;
	return 1;
}

SEC("cgroup_skb/egress")
int pf_skb_egress(struct __sk_buff *skb)
{
	return count(skb, 1);
}

SEC("cgroup_skb/ingress")
int pf_skb_ingress(struct __sk_buff *skb)
{
	return count(skb, 0);
}
