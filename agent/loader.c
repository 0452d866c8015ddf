// SPDX-License-Identifier: BSD-2-Clause
/*
 * Loading the kernel side: the skeleton lifecycle (open, configure, load,
 * attach) and the hook tiers.
 *
 * A tier is the set of programs that decide who owns a socket. Every tier
 * shares the process-identity programs (scheduler tracepoints) and the flow
 * counters (cgroup_skb), and fills the same maps, so nothing after the
 * loader knows which tier runs. Three tiers, in order of preference:
 * "fentry" (BPF trampolines, the cheapest per call), "kprobe", and
 * "tracepoint", which needs neither: BTF and syscall tracepoints and
 * cgroup socket hooks. The choice is a trial: open, load and attach the
 * whole tier; the first that succeeds runs, and a tier that fails anywhere
 * is torn down before the next is tried (never half-attached).
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "procflow.skel.h"
#include "procflow/abi.h"

/* What each program is for, in `check` and in error messages. */
struct pf_hook {
	const char *prog; /* program name in the skeleton */
	const char *hook; /* what it attaches to */
	const char *tier; /* NULL: used by every tier */
	bool cgroup;	  /* attached to the cgroup v2 root */
	bool iter;	  /* an iterator: attached on demand */
	bool udp;	  /* UDP counters replacing the cgroup_skb pair where they attach */
};

#define PF_TWINS(fn, what)                                                                         \
	{"pf_fe_" #fn, "fentry/" what, "fentry", false, false, false},                             \
	{                                                                                          \
		"pf_kp_" #fn, "kprobe/" what, "kprobe", false, false, false                        \
	}

static const struct pf_hook hooks[] = {
    {"pf_exec", "tp_btf/sched_process_exec", NULL, false, false, false},
    {"pf_fork", "tp_btf/sched_process_fork", NULL, false, false, false},
    {"pf_exit", "tp_btf/sched_process_exit", NULL, false, false, false},
    {"pf_skb_egress", "cgroup_skb/egress", NULL, true, false, false},
    {"pf_skb_ingress", "cgroup_skb/ingress", NULL, true, false, false},
    /* Shared: they generate socket cookies (kprobes cannot; tracing
     * programs cannot before v5.12), for socket() and accepted sockets. */
    {"pf_sock_create", "cgroup/sock_create", NULL, true, false, false},
    {"pf_sockops", "sockops (accepted sockets' cookies, before v5.12)", NULL, true, false, false},
    {"pf_tcp_state", "tp_btf/inet_sock_set_state", NULL, false, false, false},
    {"pf_tcp_destroy", "tp_btf/tcp_destroy_sock (closes the state hook missed)", NULL, false, false,
     false},
    {"pf_iter_sockets", "iter/task_file", NULL, false, true, false},
    {"pf_sock_release", "cgroup/sock_release", "tracepoint", true, false, false},
    {"pf_connect4", "cgroup/connect4", "tracepoint", true, false, false},
    {"pf_connect6", "cgroup/connect6", "tracepoint", true, false, false},
    {"pf_sendmsg4", "cgroup/sendmsg4", "tracepoint", true, false, false},
    {"pf_sendmsg6", "cgroup/sendmsg6", "tracepoint", true, false, false},
    {"pf_recvmsg4", "cgroup/recvmsg4", "tracepoint", true, false, false},
    {"pf_recvmsg6", "cgroup/recvmsg6", "tracepoint", true, false, false},
    {"pf_getpeername4", "cgroup/getpeername4 (accept)", "tracepoint", true, false, false},
    {"pf_getpeername6", "cgroup/getpeername6 (accept)", "tracepoint", true, false, false},
    {"pf_iter_sk_flows", "iter/bpf_sk_storage_map", NULL, false, true, false},
    PF_TWINS(tcp_v4_connect, "tcp_v4_connect"),
    PF_TWINS(tcp_v6_connect, "tcp_v6_connect"),
    PF_TWINS(inet_listen, "inet_listen"),
    {"pf_fe_inet_csk_accept", "fexit/inet_csk_accept", "fentry", false, false, false},
    {"pf_kp_inet_csk_accept", "kretprobe/inet_csk_accept", "kprobe", false, false, false},
    PF_TWINS(tcp_sendmsg, "tcp_sendmsg"),
    PF_TWINS(tcp_cleanup_rbuf, "tcp_cleanup_rbuf"),
    PF_TWINS(udp_sendmsg, "udp_sendmsg"),
    PF_TWINS(udp_recvmsg, "udp_recvmsg"),
    PF_TWINS(udpv6_sendmsg, "udpv6_sendmsg"),
    PF_TWINS(udpv6_recvmsg, "udpv6_recvmsg"),
    PF_TWINS(inet_release, "inet_release"),
    {"pf_fe_udp_send_skb", "fentry/udp_send_skb (UDP counters)", "fentry", false, false, true},
    {"pf_fe_udp_v6_send_skb", "fentry/udp_v6_send_skb (UDP counters)", "fentry", false, false,
     true},
    {"pf_fe_udp_enqueue", "fentry/__udp_enqueue_schedule_skb (UDP counters)", "fentry", false,
     false, true},
};
#define PF_NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

/* In order of preference: fentry is the cheapest per call, kprobes next;
 * the tracepoint tier needs neither. */
static const char *const tiers[] = {"fentry", "kprobe", "tracepoint"};
#define PF_NTIERS (sizeof(tiers) / sizeof(tiers[0]))

/* The program libbpf last said it could not load, to name it in one line. */
static char failed_prog[64];

__attribute__((format(printf, 2, 0))) static int libbpf_print(enum libbpf_print_level level,
							      const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && !failed_prog[0]) {
		char msg[256];
		const char *q;
		va_list aq;

		va_copy(aq, ap);
		vsnprintf(msg, sizeof(msg), fmt, aq);
		va_end(aq);
		/* "prog 'NAME': ..." */
		q = strstr(msg, "prog '");
		if (q && sscanf(q + 6, "%63[^']", failed_prog) != 1)
			failed_prog[0] = 0;
	}
	if (level == LIBBPF_DEBUG || (!pf_verbose && level == LIBBPF_INFO))
		return 0;
	if (!pf_verbose)
		return 0; /* failures are reported by the agent in one line */
	return vfprintf(stderr, fmt, ap);
}

int pf_cgroup2_root(char *buf, size_t bufsz)
{
	/* /proc/self/mountinfo: "id parent maj:min root mountpoint opts ... - fstype src opts" */
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char mnt[512], root[512], *sep = strstr(line, " - ");

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %511s %511s", root, mnt) != 2)
			continue;
		/* Only the hierarchy's own root sees every process. */
		if (strcmp(root, "/"))
			continue;
		if (snprintf(buf, bufsz, "%s", mnt) < (int)bufsz) {
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Links are kept so stop() can destroy them: detaching is destroying the
 * link, and a link also goes away when the agent dies, so a crash never
 * leaves hooks behind. */
static int keep_link(struct pf_loader *l, struct bpf_link *link)
{
	if (l->nlinks >= PF_MAX_LINKS) {
		bpf_link__destroy(link);
		return -E2BIG;
	}
	l->links[l->nlinks++] = link;
	return 0;
}

static struct bpf_program *find_prog(struct procflow_bpf *skel, const char *name)
{
	return bpf_object__find_program_by_name(skel->obj, name);
}

static const char *hook_of_prog(const char *prog)
{
	for (size_t i = 0; i < PF_NHOOKS; i++)
		if (!strcmp(hooks[i].prog, prog))
			return hooks[i].hook;
	return prog;
}

static bool hook_in_tier(const struct pf_hook *h, const char *tier)
{
	return !h->tier || !strcmp(h->tier, tier);
}

static int attach_one(struct pf_loader *l, const struct pf_hook *h)
{
	struct bpf_program *p = find_prog(l->skel, h->prog);
	struct bpf_link *link;

	if (!p)
		return -ENOENT;
	if (h->iter)
		return 0; /* attached when run */
	if (h->cgroup)
		link = bpf_program__attach_cgroup(p, l->cgroup_fd);
	else
		link = bpf_program__attach(p);
	if (!link)
		return -errno;
	return keep_link(l, link);
}

static void destroy_links(struct pf_loader *l)
{
	while (l->nlinks > 0)
		bpf_link__destroy(l->links[--l->nlinks]);
}

static const char *errmsg(int err)
{
	static char buf[128];

	if (err == -ENOENT)
		return "not found (for a kprobe: the kernel has no kprobes, CONFIG_KPROBES, or no "
		       "such function)";
	if (err == -EPERM && geteuid() == 0)
		return "operation not permitted by this kernel (as root: lockdown or a missing "
		       "kernel feature)";
	if (err == -EACCES && geteuid() == 0)
		return "rejected by the kernel's verifier (procflow -v shows its log)";
	if (err == -EPERM || err == -EACCES)
		return "permission denied: procflow needs root (CAP_BPF, CAP_PERFMON, "
		       "CAP_NET_ADMIN "
		       "and CAP_SYS_ADMIN)";
	libbpf_strerror(err, buf, sizeof(buf));
	return buf;
}

/*
 * One try at a tier: open, configure, load, attach. On failure everything
 * is torn down and *failed names the hook that failed.
 */
/*
 * Load variants, best first: each later one turns off a feature an older
 * verifier refuses (see cfg_path_walk and cfg_sk_storage in the BPF
 * program). A load that fails is retried with the next; an attach that
 * fails is not (no variant changes what attaches).
 */
static const struct pf_variant {
	bool path_walk;
	bool sk_storage;
	bool tp_cookie; /* accepted sockets' cookies from the state tracepoint, no sockops */
} variants[] = {
    {true, true, true},
    {false, true, true},
    {false, true, false},
    {false, false, false},
};
#define PF_NVARIANTS (sizeof(variants) / sizeof(variants[0]))

/* The state tracepoint makes accepted sockets' cookies itself (v5.12+). */
static bool sockops_unused(const struct pf_hook *h, const struct pf_variant *var)
{
	return var->tp_cookie && h && !strcmp(h->prog, "pf_sockops");
}

/* bpf_get_current_task_btf() is allowed in every program type that claims
 * sockets (cgroup programs: recent kernels only). Asked once. Tracing
 * programs cannot be probed this way (they need an attach target); they
 * have it since v5.11, before any cgroup program had it. */
static bool task_btf_everywhere(void)
{
	static const enum bpf_prog_type types[] = {
	    BPF_PROG_TYPE_CGROUP_SOCK, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_PROG_TYPE_KPROBE};
	static int known = -1;

	if (known < 0) {
		known = 1;
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (libbpf_probe_bpf_helper(types[i], BPF_FUNC_get_current_task_btf,
						    NULL) != 1)
				known = 0;
	}
	return known;
}

static bool is_skb_hook(const struct pf_hook *h)
{
	return !strncmp(h->prog, "pf_skb_", 7);
}

/* The kernel has the functions the UDP counters attach to (static ones
 * may be inlined away). Asked once. */
static bool udp_functions_exist(void)
{
	static const char *const fns[] = {"udp_send_skb", "udp_v6_send_skb",
					  "__udp_enqueue_schedule_skb"};
	static int known = -1;
	struct btf *btf;

	if (known >= 0)
		return known;
	known = 0;
	btf = btf__load_vmlinux_btf();
	if (!btf)
		return false;
	known = 1;
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (btf__find_by_name_kind(btf, fns[i], BTF_KIND_FUNC) < 0)
			known = 0;
	btf__free(btf);
	return known;
}

/* UDP counted by fentry at the socket layer, no cgroup_skb program: the
 * fentry tier, with socket cookies from tracing programs (v5.12: every
 * socket has one to key its flows by) and TCP counted from the socket
 * (per-packet TCP counting needs the cgroup_skb pair anyway). */
static bool udp_fentry_wanted(const struct pf_config *cfg, const char *tier,
			      const struct pf_variant *var)
{
	return !strcmp(tier, "fentry") && var->tp_cookie && var->sk_storage && cfg->tcp_counting &&
	       !strcmp(cfg->tcp_counting, "socket") && udp_functions_exist();
}

/* Socket-address hooks may call bpf_sk_storage_get() on this kernel: asked once. */
static bool addr_hooks_have_sk_storage(void)
{
	static int known = -1;

	if (known < 0)
		known = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						BPF_FUNC_sk_storage_get, NULL) == 1;
	return known;
}

/* The features the loader asks the kernel about instead of trying them. */
static void set_asked_features(struct procflow_bpf *skel, const struct pf_variant *var)
{
	skel->rodata->cfg_task_btf = task_btf_everywhere();
	skel->rodata->cfg_owner_storage = var->sk_storage && addr_hooks_have_sk_storage();
}

static int try_variant(struct pf_loader *l, const struct pf_config *cfg, const char *tier,
		       const struct pf_variant *var, const char **failed, bool *load_failed)
{
	struct bpf_program *p;
	bool udp = udp_fentry_wanted(cfg, tier, var);
	int err;

	static char why[160];

	*failed = NULL;
	*load_failed = false;
	l->skel = procflow_bpf__open();
	if (!l->skel) {
		*failed = "cannot open the BPF object";
		return -errno;
	}
	l->skel->rodata->cfg_args_max = cfg->args_max;
	l->skel->bss->cfg_include_loopback = cfg->include_loopback;
	l->skel->rodata->cfg_tcp_state_claims = !strcmp(tier, "tracepoint");
	l->skel->rodata->cfg_path_walk = var->path_walk;
	l->skel->rodata->cfg_sk_storage = var->sk_storage;
	l->skel->rodata->cfg_tp_cookie = var->tp_cookie;
	set_asked_features(l->skel, var);
	/* Counting from the socket needs its storage (v5.11). */
	l->skel->rodata->cfg_tcp_sock_counts =
	    var->sk_storage && cfg->tcp_counting && !strcmp(cfg->tcp_counting, "socket");
	bpf_map__set_max_entries(l->skel->maps.events, cfg->ringbuf_kib * 1024);
	bpf_map__set_max_entries(l->skel->maps.socks, cfg->max_sockets);
	bpf_map__set_max_entries(l->skel->maps.flows, cfg->max_flows);
	bpf_object__for_each_program(p, l->skel->obj)
	{
		const struct pf_hook *h = NULL;

		for (size_t i = 0; i < PF_NHOOKS; i++)
			if (!strcmp(hooks[i].prog, bpf_program__name(p)))
				h = &hooks[i];
		bpf_program__set_autoload(p, h && hook_in_tier(h, tier) &&
						 !sockops_unused(h, var) && (!h->udp || udp));
	}
	failed_prog[0] = 0;
	err = procflow_bpf__load(l->skel);
	if (err) {
		snprintf(why, sizeof(why), "%s does not load",
			 failed_prog[0] ? hook_of_prog(failed_prog) : "the BPF object");
		*failed = why;
		*load_failed = true;
		goto fail;
	}
	for (size_t i = 0; i < PF_NHOOKS; i++) {
		if (!hook_in_tier(&hooks[i], tier) || sockops_unused(&hooks[i], var) ||
		    hooks[i].udp || (udp && is_skb_hook(&hooks[i])))
			continue;
		err = attach_one(l, &hooks[i]);
		if (err) {
			snprintf(why, sizeof(why), "%s does not attach", hooks[i].hook);
			*failed = why;
			goto fail;
		}
	}
	/* The UDP counters, all or none; none: the cgroup_skb pair counts UDP. */
	if (udp) {
		int mark = l->nlinks;

		for (size_t i = 0; i < PF_NHOOKS && udp; i++) {
			if (!hooks[i].udp)
				continue;
			err = attach_one(l, &hooks[i]);
			if (err) {
				pf_log(
				    "%s does not attach (%s): UDP counted per packet (cgroup_skb)",
				    hooks[i].hook, errmsg(err));
				while (l->nlinks > mark)
					bpf_link__destroy(l->links[--l->nlinks]);
				udp = false;
			}
		}
		for (size_t i = 0; i < PF_NHOOKS && !udp; i++) {
			if (!is_skb_hook(&hooks[i]))
				continue;
			err = attach_one(l, &hooks[i]);
			if (err) {
				snprintf(why, sizeof(why), "%s does not attach", hooks[i].hook);
				*failed = why;
				goto fail;
			}
		}
	}
	l->skel->bss->cfg_udp_fentry = udp;
	l->udp_fentry = udp;
	l->tier = tier;
	l->path_walk = var->path_walk;
	l->sk_storage = var->sk_storage;
	l->tcp_sock_counts = l->skel->rodata->cfg_tcp_sock_counts;
	return 0;
fail:
	destroy_links(l);
	procflow_bpf__destroy(l->skel);
	l->skel = NULL;
	return err;
}

static int try_tier(struct pf_loader *l, const struct pf_config *cfg, const char *tier,
		    const char **failed)
{
	const char *first = NULL;
	static char first_why[160];
	bool load_failed;
	int err = -ENOENT;

	for (size_t v = 0; v < PF_NVARIANTS; v++) {
		err = try_variant(l, cfg, tier, &variants[v], failed, &load_failed);
		if (!err) {
			if (v)
				pf_log(
				    "tier %s loads only without %s%s%s (%s): older verifier", tier,
				    variants[v].path_walk ? "" : "the in-kernel exec path walk",
				    variants[v].tp_cookie ? ""
							  : ", cookies from the state tracepoint",
				    variants[v].sk_storage ? ""
							   : " and socket-storage TCP counters",
				    first);
			return 0;
		}
		if (!load_failed)
			return err;
		if (!first) {
			snprintf(first_why, sizeof(first_why), "%s", *failed);
			first = first_why;
		}
	}
	*failed = first ? first : *failed;
	return err;
}

int pf_loader__start(struct pf_loader *l, const struct pf_config *cfg)
{
	const char *failed = NULL;
	int err = -ENOENT;

	memset(l, 0, sizeof(*l));
	l->cgroup_fd = -1;
	libbpf_set_print(libbpf_print);

	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		pf_log("this kernel has no BTF (/sys/kernel/btf/vmlinux): procflow needs "
		       "CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	err = pf_cgroup2_root(l->cgroup_path, sizeof(l->cgroup_path));
	if (err) {
		pf_log("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none "
		       "/sys/fs/cgroup/unified)");
		return err;
	}
	l->cgroup_fd = open(l->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->cgroup_fd < 0) {
		err = -errno;
		pf_log("cannot open cgroup v2 root %s: %s", l->cgroup_path, strerror(-err));
		return err;
	}

	/* A trial load and attach of each tier in order of preference; the
	 * first that loads and attaches every hook runs. Never half-attached:
	 * a tier that fails anywhere is torn down before the next is tried. */
	for (size_t t = 0; t < PF_NTIERS; t++) {
		bool forced = strcmp(cfg->tier, "auto") != 0;

		if (forced && strcmp(cfg->tier, tiers[t]))
			continue;
		err = try_tier(l, cfg, tiers[t], &failed);
		if (!err) {
			if (forced)
				pf_log("hook tier: %s (forced with --hook-tier)", l->tier);
			else if (t == 0)
				pf_log("hook tier: %s (the first choice: it loaded and attached)",
				       l->tier);
			else
				pf_log("hook tier: %s (the tiers before it did not load or attach, "
				       "see above)",
				       l->tier);
			pf_log("TCP counting: %s",
			       l->tcp_sock_counts ? "socket (the kernel's per-socket counters)"
			       : l->sk_storage	  ? "packet (a program on every packet)"
						  : "packet (no socket storage for tracing "
						    "programs: before v5.11)");
			pf_log("UDP counting: %s",
			       l->udp_fentry ? "at the socket layer (fentry): no per-packet program"
					     : "per packet (cgroup_skb)");
			return 0;
		}
		if (forced)
			pf_log("hook tier %s (forced with --hook-tier) cannot run on this kernel: "
			       "%s: %s",
			       tiers[t], failed, errmsg(err));
		else
			pf_log("hook tier %s unavailable: %s: %s%s", tiers[t], failed, errmsg(err),
			       t + 1 < PF_NTIERS ? "; trying the next tier" : "");
	}
	close(l->cgroup_fd);
	l->cgroup_fd = -1;
	return err;
}

void pf_loader__stop(struct pf_loader *l)
{
	destroy_links(l);
	procflow_bpf__destroy(l->skel);
	l->skel = NULL;
	if (l->cgroup_fd >= 0)
		close(l->cgroup_fd);
	l->cgroup_fd = -1;
}

/* Iterators over a map need the map named at attach time. */
static struct bpf_link *attach_iter(struct procflow_bpf *skel, struct bpf_program *p)
{
	DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts);
	union bpf_iter_link_info info = {};

	if (p != skel->progs.pf_iter_sk_flows)
		return bpf_program__attach_iter(p, NULL);
	info.map.map_fd = bpf_map__fd(skel->maps.sk_flows);
	opts.link_info = &info;
	opts.link_info_len = sizeof(info);
	return bpf_program__attach_iter(p, &opts);
}

/* Run iterator @p to its end; its output is discarded: reading only
 * drives the program. */
static int run_iter(struct pf_loader *l, struct bpf_program *p)
{
	char buf[4096];
	struct bpf_link *link;
	int fd, err = 0;

	link = attach_iter(l->skel, p);
	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			err = -errno;
		if (n <= 0)
			break;
	}
	close(fd);
out:
	bpf_link__destroy(link);
	return err;
}

/* Records per batch lookup of sk_reads: 200 KiB of buffer. */
#define PF_SK_READS_BATCH 1024

/* Hand sk_reads[0..@n) to @cb, a batch at a time (key by key where the
 * kernel has no batch operations). */
static int take_sk_reads(int fd, struct pf_sk_read *buf, __u32 n,
			 int (*cb)(const void *f, void *ctx), void *ctx)
{
	__u32 keys[PF_SK_READS_BATCH], cursor = 0, done = 0;
	bool batch = true;
	int err;

	while (done < n) {
		__u32 count = n - done > PF_SK_READS_BATCH ? PF_SK_READS_BATCH : n - done;

		if (batch) {
			err = bpf_map_lookup_batch(fd, done ? &cursor : NULL, &cursor, keys, buf,
						   &count, NULL);
			if (err && errno != ENOENT) {
				batch = false; /* the kernel has none: key by key */
				continue;
			}
		} else {
			count = 0;
			if (bpf_map_lookup_elem(fd, &done, buf))
				return -errno;
			count = 1;
		}
		for (__u32 i = 0; i < count; i++) {
			err = cb(&buf[i], ctx);
			if (err)
				return err;
		}
		done += count;
		if (!count)
			break;
	}
	return 0;
}

/*
 * The live TCP connections. Each read() of the iterator walks until
 * sk_reads is full (then the next record comes through the read() itself,
 * which ends it) or the walk ends (read() returns 0); after each, hand
 * over sk_reads[0..sk_reads_n) and the record read, and start sk_reads
 * over.
 */
int pf_loader__read_sk_flows(struct pf_loader *l, int (*cb)(const void *f, void *ctx), void *ctx)
{
	int reads_fd = bpf_map__fd(l->skel->maps.sk_reads);
	struct pf_sk_read rec, *buf;
	struct bpf_link *link;
	int fd, err = 0;

	buf = malloc(PF_SK_READS_BATCH * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	link = attach_iter(l->skel, l->skel->progs.pf_iter_sk_flows);
	if (!link) {
		err = -errno;
		goto out_free;
	}
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n;

		l->skel->bss->sk_reads_n = 0;
		n = read(fd, &rec, sizeof(rec));
		/* EAGAIN: a million sockets visited in one read(); the walk
		 * goes on at the next. */
		if (n < 0 && errno != EINTR && errno != EAGAIN) {
			err = -errno;
			break;
		}
		err = take_sk_reads(reads_fd, buf, l->skel->bss->sk_reads_n, cb, ctx);
		if (!err && n == sizeof(rec))
			err = cb(&rec, ctx);
		else if (!err && n > 0)
			err = -EIO; /* records are written whole, one per read() */
		if (err || n == 0)
			break;
	}
	close(fd);
out:
	bpf_link__destroy(link);
out_free:
	free(buf);
	return err;
}

uint64_t pf_loader__missed_runs(struct pf_loader *l)
{
	struct bpf_program *p;
	uint64_t sum = 0;

	bpf_object__for_each_program(p, l->skel->obj)
	{
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(p);

		memset(&info, 0, sizeof(info));
		if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len))
			sum += info.recursion_misses;
	}
	return sum;
}

int pf_loader__scan_sockets(struct pf_loader *l)
{
	return run_iter(l, l->skel->progs.pf_iter_sockets);
}

int pf_loader__host_pidns(struct pf_loader *l)
{
	struct pf_sock_val v;
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd, ret;

	/* cgroup/sock_create records the creating thread group as the kernel
	 * numbers it (the host PID namespace); compare with getpid(). */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len)) {
		ret = -errno;
		goto out;
	}
	if (bpf_map_lookup_elem(bpf_map__fd(l->skel->maps.socks), &cookie, &v)) {
		ret = -ENOENT;
		goto out;
	}
	ret = v.tgid == (uint32_t)getpid();
out:
	close(fd);
	return ret;
}

/* ---- kernel memory ---- */

/* A map's "memlock:" from fdinfo: the kernel's own accounting of it. */
static uint64_t map_memlock(int fd)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

uint64_t pf_loader__map_bytes(const struct pf_loader *l, char *desc, size_t descsz)
{
	const struct bpf_map *socks = l->skel->maps.socks, *flows = l->skel->maps.flows;
	const struct bpf_map *events = l->skel->maps.events, *m;
	uint64_t total = 0, b_socks = 0, b_flows = 0, b_events = 0;

	bpf_object__for_each_map(m, l->skel->obj)
	{
		int fd = bpf_map__fd(m);
		uint64_t b = fd >= 0 ? map_memlock(fd) : 0;

		total += b;
		if (m == socks)
			b_socks = b;
		else if (m == flows)
			b_flows = b;
		else if (m == events)
			b_events = b;
	}
	if (desc && descsz)
		snprintf(desc, descsz,
			 "socks %u entries %.1f MiB, flows %u entries %.1f MiB, events ring %.1f "
			 "MiB, other maps %.1f MiB",
			 bpf_map__max_entries(socks), mib(b_socks), bpf_map__max_entries(flows),
			 mib(b_flows), mib(b_events), mib(total - b_socks - b_flows - b_events));
	return total;
}

/* ---- procflow check ---- */

static void check_line(const char *what, const char *result)
{
	printf("  %-34s %s\n", what, result);
}

int pf_check(const struct pf_config *cfg)
{
	char cg[256], buf[256], name[96], mapdesc[256];
	bool can_run = true;
	int cgfd = -1, fd;

	libbpf_set_print(libbpf_print);
	printf("procflow check\n\nkernel:\n");
	if (!access("/sys/kernel/btf/vmlinux", R_OK)) {
		check_line("BTF (/sys/kernel/btf/vmlinux)", "yes");
	} else {
		check_line("BTF (/sys/kernel/btf/vmlinux)", "no (procflow needs it)");
		can_run = false;
	}
	fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "pf_probe", 0, 0, 4096, NULL);
	if (fd >= 0) {
		check_line("BPF ring buffer", "yes");
		close(fd);
	} else {
		snprintf(buf, sizeof(buf), "no (%s)", errmsg(-errno));
		check_line("BPF ring buffer", buf);
		can_run = false;
	}
	if (!pf_cgroup2_root(cg, sizeof(cg))) {
		check_line("cgroup v2 root", cg);
		cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		check_line("cgroup v2 root", "not mounted (procflow needs it)");
		can_run = false;
	}

	/* Each hook alone: does it load, does it attach. A tier is usable when
	 * every hook it needs (its own and the shared ones) does both. */
	bool ok[PF_NHOOKS];
	const char *chosen = NULL;

	printf("\nhooks (loads / attaches):\n");
	for (size_t i = 0; i < PF_NHOOKS; i++) {
		const struct pf_hook *h = &hooks[i];
		struct procflow_bpf *skel = NULL;
		struct bpf_program *p, *want = NULL;
		struct bpf_link *link = NULL;
		const char *res, *degraded = "";
		int err = -ENOENT;

		ok[i] = false;
		/* As the loader does: the best variant that loads. */
		for (size_t v = 0; v < PF_NVARIANTS; v++) {
			skel = procflow_bpf__open();
			if (!skel)
				break;
			skel->rodata->cfg_path_walk = variants[v].path_walk;
			skel->rodata->cfg_sk_storage = variants[v].sk_storage;
			skel->rodata->cfg_tp_cookie = variants[v].tp_cookie;
			set_asked_features(skel, &variants[v]);
			skel->rodata->cfg_tcp_sock_counts =
			    variants[v].sk_storage && !strcmp(cfg->tcp_counting, "socket");
			bpf_object__for_each_program(p, skel->obj)
			{
				bool me = !strcmp(bpf_program__name(p), h->prog);

				bpf_program__set_autoload(p, me);
				if (me)
					want = p;
			}
			err = procflow_bpf__load(skel);
			if (!err) {
				if (v && !strcmp(h->prog, "pf_exec"))
					degraded =
					    " (without the in-kernel path walk: older verifier)";
				else if (v && !variants[v].sk_storage)
					degraded =
					    " (without socket-storage TCP counters: before v5.11)";
				else if (v && !variants[v].tp_cookie &&
					 !strcmp(h->prog, "pf_tcp_state"))
					degraded =
					    " (accepted sockets' cookies from sockops: before "
					    "v5.12)";
				break;
			}
			procflow_bpf__destroy(skel);
			skel = NULL;
		}
		if (!skel && err == -ENOENT) {
			check_line(h->hook, "no (cannot open the BPF object)");
			continue;
		}
		/* The UDP counters need fentry and, for a socket cookie in a
		 * tracing program, v5.12: elsewhere the pair counts UDP. */
		const char *opt = h->udp ? " (optional: the cgroup_skb pair counts UDP)" : "";

		if (err) {
			snprintf(buf, sizeof(buf), "no%s: does not load (%s)", opt, errmsg(err));
			res = buf;
		} else {
			if (h->iter)
				link = attach_iter(skel, want);
			else if (h->cgroup && cgfd >= 0)
				link = bpf_program__attach_cgroup(want, cgfd);
			else if (!h->cgroup)
				link = bpf_program__attach(want);
			if (link) {
				snprintf(buf, sizeof(buf), "loads, attaches%s", degraded);
				res = buf;
				ok[i] = true;
			} else {
				snprintf(buf, sizeof(buf), "no%s: loads, does not attach (%s)", opt,
					 errmsg(-errno));
				res = buf;
			}
		}
		if (h->tier)
			snprintf(name, sizeof(name), "%s [%s]", h->hook, h->tier);
		else
			snprintf(name, sizeof(name), "%s", h->hook);
		check_line(name, res);
		bpf_link__destroy(link);
		procflow_bpf__destroy(skel);
	}

	printf("\ntiers (in order of preference):\n");
	for (size_t t = 0; t < PF_NTIERS; t++) {
		const char *missing = NULL;

		/* The UDP counters are optional: without them the cgroup_skb
		 * pair counts UDP. */
		for (size_t i = 0; i < PF_NHOOKS && !missing; i++)
			if (hook_in_tier(&hooks[i], tiers[t]) && !ok[i] && !hooks[i].udp)
				missing = hooks[i].hook;
		if (!missing) {
			/* A configured tier is the only one run would take. */
			bool forced = strcmp(cfg->tier, "auto");
			bool take = !chosen && (!forced || !strcmp(cfg->tier, tiers[t]));

			check_line(tiers[t], !take    ? "usable"
					     : forced ? "usable (hookTier takes this one)"
						      : "usable (auto takes this one)");
			if (take)
				chosen = tiers[t];
		} else {
			snprintf(buf, sizeof(buf), "not usable (%s)", missing);
			check_line(tiers[t], buf);
		}
	}
	bool base_ok = can_run;

	can_run = can_run && chosen;

	printf("\nprocess identity:\n");
	if (can_run) {
		struct pf_loader l;
		struct pf_config quiet = *cfg;
		int host;

		quiet.tier = "auto";
		if (!pf_loader__start(&l, &quiet)) {
			host = pf_loader__host_pidns(&l);
			check_line("host PID namespace",
				   host == 1 ? "visible: path and arguments of every process"
				   : host == 0
				       ? "not visible: processes started after the agent get "
					 "path and arguments from their exec; older ones get "
					 "the task name and [] (their /proc is not this one)"
				       : "could not tell");
			/* What the configured map sizes cost, from the maps just made. */
			printf("\nkernel memory (maxSockets, maxFlows, ringBufferKiB):\n");
			snprintf(buf, sizeof(buf), "%.1f MiB",
				 mib(pf_loader__map_bytes(&l, mapdesc, sizeof(mapdesc))));
			check_line("BPF maps in all", buf);
			check_line("of which", mapdesc);
			pf_loader__stop(&l);
		}
	} else {
		check_line("host PID namespace", "not checked (hooks missing)");
	}
	if (cgfd >= 0)
		close(cgfd);
	if (can_run)
		printf("\nprocflow can run here (tier: %s)\n", chosen);
	else if (strcmp(cfg->tier, "auto") && base_ok)
		printf("\nprocflow cannot run here with hookTier %s: that tier cannot load or "
		       "attach (see above)\n",
		       cfg->tier);
	else
		printf("\nprocflow cannot run here: see the lines marked 'no' above\n");
	return can_run ? PF_EXIT_OK : PF_EXIT_RUNTIME;
}
