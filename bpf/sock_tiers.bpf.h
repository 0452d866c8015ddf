/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The "fentry" and "kprobe" socket-ownership tiers. Included by
 * procflow.bpf.c after claim(): they fill the same socks entries (owner
 * tgid, claim time, netns cookie, role, task name) as the tracepoint tier,
 * so nothing after the loader knows which tier ran.
 *
 * Every hook is a twin: an fentry/fexit program and a kprobe/kretprobe
 * program that call one static body with the kernel's struct sock. The
 * agent loads one twin set (autoload) after a trial attach.
 *
 * Hooks, all in the process that makes the call:
 *   tcp_v4_connect, tcp_v6_connect     connect(): owner, role source
 *   inet_listen                        listen(): owner, listener, role dest
 *   inet_csk_accept (return)           accept(): the new socket's owner
 *   tcp_sendmsg, tcp_cleanup_rbuf      TCP send and receive
 *   udp_sendmsg, udp_recvmsg,          UDP send and receive
 *   udpv6_sendmsg, udpv6_recvmsg
 *   inet_release                       close(): see sock_released()
 *
 * The socket cookie. A kprobe cannot call bpf_get_socket_cookie() (its
 * argument is not a BTF pointer), and fentry can only from v5.12 ("bpf:
 * Expose bpf_get_socket_cookie to tracing programs"), so both twins read
 * sk->__sk_common.skc_cookie, which is 0 until something generates it.
 * Generation is left to hooks every tier shares: cgroup/sock_create for
 * every socket() (and its netns cookie), inet_sock_set_state's
 * ->SYN_RECV for accepted sockets (pf_sockops before v5.12), and the cgroup_skb counters
 * for any socket that carries a packet. A hook that still meets a zero
 * cookie does nothing; for accept() that is counted (PF_STAT_ACCEPT_MISS)
 * and the task_file iterator finds the owner at the next flush.
 */
#ifndef PF_SOCK_TIERS_BPF_H
#define PF_SOCK_TIERS_BPF_H

/*
 * Where the fentry tier keeps the owner a claim confirmed, with the socket
 * (see sk_owners): a TCP connection's storage entry, which it has from its
 * start; a UDP socket's sk_owners entry, made only with @create (at its
 * second message claim: a socket used once allocates nothing). NULL: none.
 */
static __always_inline struct pf_sk_owner *owner_slot(struct sock *sk, int create)
{
	struct pf_sk_flow *f;

	if (sk->sk_protocol == IPPROTO_TCP) {
		f = bpf_sk_storage_get(&sk_flows, sk, 0, 0);
		return f && f->cookie ? &f->owner : NULL;
	}
	return bpf_sk_storage_get(&sk_owners, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

/*
 * Claim @sk for the current thread group; @role and @listener are set when
 * the hook knows them (connect, listen, accept). Nearly every call is a
 * send or receive by the socket's owner: with @btf (an fentry program
 * whose @sk is a typed pointer, so socket storage may be asked) it is
 * answered from the owner kept with the socket; otherwise by one lookup in
 * socks, before the netns cookie (two probe reads) or the task name is
 * read. An owner confirmed in socks is then kept with the socket.
 */
static __always_inline void own_sock(struct sock *sk, __u32 how, __u32 role, int btf)
{
	int msg = how == PF_CLAIM_TCP_MSG || how == PF_CLAIM_UDP_MSG;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, exec_id;
	int keep = btf && cfg_sk_storage;
	struct pf_sk_owner *o = NULL;
	struct pf_sock_val *v;
	__u64 cookie;

	if (!sk || !tgid)
		return;
	exec_id = current_exec_id();
	if (keep) {
		o = owner_slot(sk, 0);
		if (msg && o && o->tgid == tgid && o->exec_id == exec_id)
			return;
	}
	cookie = pf_sock_cookie(sk);
	if (!cookie) {
		if (how == PF_CLAIM_ACCEPT)
			stat_inc(PF_STAT_ACCEPT_MISS);
		return;
	}
	v = bpf_map_lookup_elem(&socks, &cookie);
	if (!v || v->tgid != tgid || v->exec_id != exec_id) {
		/* In place, or a new entry, looked up after it. */
		if (!claim_at(v, cookie, pf_net_cookie(BPF_CORE_READ(sk, __sk_common.skc_net.net)),
			      how, PF_ROLE_UNKNOWN))
			return;
		if (!v)
			v = bpf_map_lookup_elem(&socks, &cookie);
		if (!v)
			return;
	}
	if (role != PF_ROLE_UNKNOWN) {
		v->role = role;
		if (how == PF_CLAIM_LISTEN)
			v->listener = 1;
	}
	if (!keep)
		return;
	/* A connect() that changed the owner updates a slot the socket has;
	 * only UDP messages make one (a TCP connection's is its storage). */
	if (!o) {
		if (!msg || sk->sk_protocol == IPPROTO_TCP || !keep_owner_now(v))
			return;
		o = owner_slot(sk, 1);
		if (!o)
			return;
	}
	o->tgid = tgid;
	o->exec_id = exec_id;
}

/* close(): see sock_released(). TCP connections that go on after it are
 * closed by inet_sock_set_state (shared by every tier). */
static __always_inline void release_sock_of(struct socket *sock)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u64 cookie;
	__u8 proto;

	if (!sk)
		return;
	proto = BPF_CORE_READ(sk, sk_protocol);
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return;
	cookie = pf_sock_cookie(sk);
	if (!cookie)
		return;
	sock_released(cookie, proto, BPF_CORE_READ(sk, __sk_common.skc_state));
}

/* Hooks whose first argument is the struct sock. */
#define PF_SK_TWINS(fn, how, role)                                                                 \
	SEC("fentry/" #fn)                                                                         \
	int BPF_PROG(pf_fe_##fn, struct sock *sk)                                                  \
	{                                                                                          \
		own_sock(sk, how, role, 1);                                                        \
		return 0;                                                                          \
	}                                                                                          \
	SEC("kprobe/" #fn)                                                                         \
	int BPF_KPROBE(pf_kp_##fn, struct sock *sk)                                                \
	{                                                                                          \
		own_sock(sk, how, role, 0);                                                        \
		return 0;                                                                          \
	}

PF_SK_TWINS(tcp_v4_connect, PF_CLAIM_CONNECT, PF_ROLE_SRC)
PF_SK_TWINS(tcp_v6_connect, PF_CLAIM_CONNECT, PF_ROLE_SRC)
PF_SK_TWINS(tcp_sendmsg, PF_CLAIM_TCP_MSG, PF_ROLE_UNKNOWN)
PF_SK_TWINS(tcp_cleanup_rbuf, PF_CLAIM_TCP_MSG, PF_ROLE_UNKNOWN)
PF_SK_TWINS(udp_sendmsg, PF_CLAIM_UDP_MSG, PF_ROLE_UNKNOWN)
PF_SK_TWINS(udp_recvmsg, PF_CLAIM_UDP_MSG, PF_ROLE_UNKNOWN)
PF_SK_TWINS(udpv6_sendmsg, PF_CLAIM_UDP_MSG, PF_ROLE_UNKNOWN)
PF_SK_TWINS(udpv6_recvmsg, PF_CLAIM_UDP_MSG, PF_ROLE_UNKNOWN)

/* listen() and close() take the struct socket. */
SEC("fentry/inet_listen")
int BPF_PROG(pf_fe_inet_listen, struct socket *sock)
{
	own_sock(BPF_CORE_READ(sock, sk), PF_CLAIM_LISTEN, PF_ROLE_DST, 0);
	return 0;
}

SEC("kprobe/inet_listen")
int BPF_KPROBE(pf_kp_inet_listen, struct socket *sock)
{
	own_sock(BPF_CORE_READ(sock, sk), PF_CLAIM_LISTEN, PF_ROLE_DST, 0);
	return 0;
}

SEC("fentry/inet_release")
int BPF_PROG(pf_fe_inet_release, struct socket *sock)
{
	release_sock_of(sock);
	return 0;
}

SEC("kprobe/inet_release")
int BPF_KPROBE(pf_kp_inet_release, struct socket *sock)
{
	release_sock_of(sock);
	return 0;
}

/* accept(): the new socket is the return value. An fexit program reads it
 * after the arguments, whose number changed (core_fixes.bpf.h). */
SEC("fexit/inet_csk_accept")
int BPF_PROG(pf_fe_inet_csk_accept)
{
	own_sock(pf_csk_accept_ret(ctx), PF_CLAIM_ACCEPT, PF_ROLE_DST, 0);
	return 0;
}

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(pf_kp_inet_csk_accept, struct sock *newsk)
{
	own_sock(newsk, PF_CLAIM_ACCEPT, PF_ROLE_DST, 0);
	return 0;
}

#endif
