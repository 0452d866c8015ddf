/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI shared by the BPF programs (bpf/) and user space (agent/, lib/).
 *
 * Only fixed-width fields, widest first, so the layout is the same for
 * clang -target bpf and for the host compiler. Addresses are 16-byte fields;
 * IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) so one key type serves both
 * families. Every limit that sizes a map or a record lives here.
 */
#ifndef PROCFLOW_ABI_H
#define PROCFLOW_ABI_H

#ifdef __bpf__
/* vmlinux.h provides __u8 .. __u64 on the BPF side. */
#else
#include <linux/types.h>
#endif

#define PF_COMM_LEN 16

/* An exec event carries the path as passed to execve and the raw argument
 * area (NUL-separated argv, argv[0] included). PF_PATH_MAX bounds the path,
 * PF_ARGS_CAP is the compile-time cap of the configurable argument bound
 * (the run-time default is PF_ARGS_DEFAULT). A per-CPU map value, which
 * holds one event while it is built, is limited to 32 KiB by the kernel. */
#define PF_PATH_MAX 4096
#define PF_ARGS_CAP 16384
#define PF_ARGS_DEFAULT 4096
#define PF_ARGC_DEFAULT 64

/* Map bounds: the defaults of maxFlows and maxSockets, which the agent sets
 * before load. Sized for 100,000 live TCP connections with both ends on this
 * host: 200,000 sockets with an owner each, and 200,000 final copies in flows
 * when they all close within one interval, with room for the rest of the
 * node. Preallocated: ~170 B of kernel memory per entry, 42 MiB per map. */
#define PF_FLOWS_MAX 262144 /* flow counters (per socket and peer) */
#define PF_SOCKS_MAX 262144 /* socket owners */
#define PF_RINGBUF_BYTES (8u << 20)
/* Live TCP connections one iterator read() hands over through the sk_reads
 * array (200 B each, 3.1 MiB): the iterator goes back to the start of its
 * bucket at every read(), so each read() walks this many sockets, not the
 * 341 a 32 KiB seq_file page holds. */
#define PF_SK_READS_MAX 16384

enum pf_event_type {
	PF_EV_EXEC = 1,
	PF_EV_FORK = 2,
	PF_EV_EXIT = 3,
};

/* Exec event flags. */
#define PF_EXEC_ARGS_TRUNC (1u << 0) /* the argument area was longer than the bound */
#define PF_EXEC_PATH_TRUNC (1u << 1)

struct pf_event_hdr {
	__u64 ts_ns; /* bpf_ktime_get_boot_ns() at the event */
	__u32 type;  /* enum pf_event_type */
	__u32 pid;   /* thread-group id (the PID users see) */
};

/* Variable length: data[] holds path_len bytes of path (no NUL), then
 * args_len bytes of the argument area, then exe_len bytes of the
 * executable's path components, leaf first, each NUL-terminated (only for
 * a relative path: the kernel's own resolution of it, from the dentry
 * tree, since the process may be gone before user space could look).
 * Only the used bytes of data[] are sent. */
struct pf_exec_event {
	struct pf_event_hdr hdr;
	__u64 start_ns;  /* group leader's start_boottime: with pid, the identity */
	__u64 cgroup_id;
	__u32 ppid;
	__u32 uid;
	__u32 path_len;
	__u32 args_len;
	__u32 exe_len;
	__u32 flags;   /* PF_EXEC_* */
	__u32 exec_id; /* the task's self_exec_id after this exec */
	char comm[PF_COMM_LEN];
	char data[PF_PATH_MAX + PF_ARGS_CAP + PF_PATH_MAX + 256];
};

struct pf_fork_event {
	struct pf_event_hdr hdr; /* pid: the child */
	__u64 start_ns;		 /* child's start_boottime */
	__u64 parent_start_ns;
	__u32 ppid;
	__u32 exec_id; /* the child's self_exec_id (the parent's, copied) */
	char comm[PF_COMM_LEN];
};

struct pf_exit_event {
	struct pf_event_hdr hdr;
	__u64 start_ns;
	char comm[PF_COMM_LEN];
};

/* Which side started a flow: reporter "src" or "dst". */
enum pf_role {
	PF_ROLE_UNKNOWN = 0,
	PF_ROLE_SRC = 1,
	PF_ROLE_DST = 2,
};

/* Flow counters, one entry per (socket, local address, peer). A socket
 * cookie is unique for the kernel's lifetime, so it also separates network
 * namespaces; the agent maps it to a namespace through the socket map. */
struct pf_flow_key {
	__u64 cookie;
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport; /* host byte order */
	__u16 rport;
	__u8 proto; /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad[3];
};

/* Flow value flags. */
#define PF_FLOW_LISTENER (1u << 0) /* counted on a listening socket (handshake) */
#define PF_FLOW_FIN (1u << 1)	   /* a FIN or RST was seen */
#define PF_FLOW_CLOSED (1u << 2)   /* final counters of a closed TCP socket */

struct pf_flow_val {
	__u64 bytes_in; /* IP layer, headers included; updated atomically */
	__u64 bytes_out;
	__u64 pkts_in;
	__u64 pkts_out;
	__u64 first_ns;
	/* A packet's time in the flow's latest jiffy (the kernel's tick), not
	 * always the last packet's: one clock read per flow per tick, not per
	 * packet (last_jiffy, its low 32 bits, tells when to read again). */
	__u64 last_ns;
	__u16 role;  /* enum pf_role, decided when the entry is created */
	__u16 flags; /* PF_FLOW_* */
	__u32 last_jiffy;
};

/* A socket's owner as a claim hook last confirmed it in the socks map
 * (thread group, exec counter), kept with the socket so that the next
 * message by the same program skips the socks lookup. Kernel side only. */
struct pf_sk_owner {
	__u32 tgid;
	__u32 exec_id;
};

/*
 * Per-socket counters for a TCP connection, kept in socket-local storage:
 * a TCP socket has one 4-tuple, so no header needs parsing and no hash
 * lookup is needed. When the connection closes, the counters are copied
 * into the flows map (PF_FLOW_CLOSED), since the storage dies with the
 * socket. The agent reads live entries with an iterator, whose records
 * have this layout too.
 *
 * Two ways to fill it (tcpCounting). "socket": the state tracepoint makes
 * the entry when the connection starts (connect(): SYN_SENT; accepted:
 * SYN_RECV->ESTABLISHED), and the counters are computed from the kernel's
 * own per-socket counters whenever they are read; the stored counters are
 * then the baseline of a connection older than the agent (0 otherwise).
 * "packet": cgroup_skb adds every packet, and the tuple comes from the
 * first packet.
 */
struct pf_sk_flow {
	__u64 cookie; /* 0 until the entry is filled */
	__u64 bytes_in;
	__u64 bytes_out;
	__u64 pkts_in;
	__u64 pkts_out;
	__u64 first_ns;
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;
	__u16 rport;
	__u8 proto;
	__u8 skip; /* 1: loopback, left out; 2: closed, counters saved */
	__u16 role;
	/* "socket" counting, accepted side: SYN-ACKs the request socket sent
	 * (1 + retransmissions), which are not in the child's own counters. */
	__u32 synacks;
	__u8 adopted; /* "socket" counting: older than the agent, handshake not counted */
	__u8 pad[3];
	/* fentry tier: the owner its message hooks last confirmed (see
	 * own_sock()); zero from the connection's start until then. */
	struct pf_sk_owner owner;
};

/* Where an owner claim came from, most trusted last. */
enum pf_claim {
	PF_CLAIM_NONE = 0,
	PF_CLAIM_ITER = 1,	   /* found by the task_file iterator */
	PF_CLAIM_CREATE = 2,	   /* socket() */
	PF_CLAIM_CONNECT = 3,	   /* connect() */
	PF_CLAIM_UDP_MSG = 4,	   /* sendmsg()/recvmsg() on UDP */
	PF_CLAIM_LISTEN = 5,	   /* listen() */
	PF_CLAIM_ACCEPT = 6,	   /* accept() (tracepoint tier: through the getpeername hook) */
	PF_CLAIM_TCP_MSG = 7,	   /* sendmsg()/recvmsg() on TCP (fentry, kprobe tiers) */
	PF_CLAIM_RELEASE = 8,	   /* close() of a socket nobody claimed (tracepoint tier) */
};

/* One entry per socket, keyed by socket cookie: who owns it (a process
 * context hook saw this thread group use it at ts_ns), its namespace, its
 * TCP role and when it closed, and TCP health figures sampled at close. */
struct pf_sock_val {
	__u64 ts_ns;	 /* when the owner was last claimed */
	__u64 netns;	 /* network namespace cookie, 0 if unknown */
	__u64 closed_ns; /* 0 while open */
	__u32 tgid;	 /* 0 if no owner seen yet */
	__u32 claim;	 /* enum pf_claim */
	__u32 role;	 /* enum pf_role (TCP: from the state machine) */
	__u32 listener;	 /* 1 for a listening socket */
	/* TCP health at close (or last sample), true units. */
	__u32 srtt_us;
	__u32 min_rtt_us;
	__u32 snd_cwnd;
	__u32 mss;
	__u32 total_retrans;
	__u32 lost_out;
	__u32 lport; /* listening sockets: the port */
	/* The owner's self_exec_id at the claim: which program of the owner
	 * (a process that exec'd after the claim keeps the old one's). Lets
	 * user space see that an identity is stale because its exec event
	 * was lost, rather than name the program the process ran before. */
	__u32 exec_id;
	__u32 flags; /* PF_SOCK_* */
	char comm[PF_COMM_LEN];
	/* UDP: 1 once a message hook (the tracepoint tier's sendmsg and
	 * recvmsg, the fentry tier's send and receive) confirmed the owner:
	 * the next one keeps the owner in socket storage. Kernel side only;
	 * it fills what was the struct's tail padding. */
	__u32 msg_claims;
};

/* One live connection as the storage iterator hands it over (the sk_reads
 * array): its counters and, looked up in the kernel at the same moment,
 * its socket's socks entry (has_sock 0: none), so that the agent need not
 * ask for it with a system call per connection. */
struct pf_sk_read {
	struct pf_sk_flow f;
	struct pf_sock_val s;
	__u32 has_sock;
	__u32 pad;
};

/* Socket entry flags: together they tell, at release, whether anything
 * can still refer to the entry. */
#define PF_SOCK_BORN  (1u << 0) /* the entry was made at socket(): no flow predates it */
#define PF_SOCK_FLOWS (1u << 1) /* a flows map entry was made for this socket */

/* Counters of what the kernel side could not do, one slot each in a
 * per-CPU array. */
enum pf_stat {
	PF_STAT_RB_DROPS = 0,	   /* ring buffer full: event lost */
	PF_STAT_FLOWS_FULL = 1,	   /* flow map full or busy: packet not counted */
	PF_STAT_SOCKS_FULL = 2,	   /* socket map full or busy: owner not recorded */
	PF_STAT_ACCEPT_MISS = 3,   /* accept() returned a socket we could not read */
	PF_STAT_FINAL_LOST = 4,	   /* a closed connection's final counters not saved */
	PF_STAT_CLOSE_RESCUED = 5, /* a close the state hook missed, saved at destruction */
	PF_STAT_MAX = 8,
};

#endif /* PROCFLOW_ABI_H */
