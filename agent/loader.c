// SPDX-License-Identifier: BSD-2-Clause
/*
 * Loading the kernel side: the skeleton lifecycle (open, configure, load,
 * attach) and the hook tiers.
 *
 * A tier is the set of programs that decide who owns a socket. Every tier
 * shares the process-identity programs (scheduler tracepoints) and the flow
 * counters (cgroup_skb), and fills the same maps, so nothing after the
 * loader knows which tier runs. This build has one socket tier,
 * "tracepoint", which needs neither kprobes nor fentry: BTF tracepoints,
 * syscall tracepoints, cgroup socket hooks and a task_file iterator.
 */
#include <bpf/bpf.h>
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
	const char *prog;   /* program name in the skeleton */
	const char *hook;   /* what it attaches to */
	const char *tier;   /* NULL: used by every tier */
	bool cgroup;	    /* attached to the cgroup v2 root */
	bool iter;	    /* an iterator: attached on demand */
};

static const struct pf_hook hooks[] = {
	{"pf_exec", "tp_btf/sched_process_exec", NULL, false, false},
	{"pf_fork", "tp_btf/sched_process_fork", NULL, false, false},
	{"pf_exit", "tp_btf/sched_process_exit", NULL, false, false},
	{"pf_skb_egress", "cgroup_skb/egress", NULL, true, false},
	{"pf_skb_ingress", "cgroup_skb/ingress", NULL, true, false},
	{"pf_sock_create", "cgroup/sock_create", "tracepoint", true, false},
	{"pf_sock_release", "cgroup/sock_release", "tracepoint", true, false},
	{"pf_connect4", "cgroup/connect4", "tracepoint", true, false},
	{"pf_connect6", "cgroup/connect6", "tracepoint", true, false},
	{"pf_sendmsg4", "cgroup/sendmsg4", "tracepoint", true, false},
	{"pf_sendmsg6", "cgroup/sendmsg6", "tracepoint", true, false},
	{"pf_recvmsg4", "cgroup/recvmsg4", "tracepoint", true, false},
	{"pf_recvmsg6", "cgroup/recvmsg6", "tracepoint", true, false},
	{"pf_sys_exit", "tp_btf/sys_exit (accept)", "tracepoint", false, false},
	{"pf_tcp_state", "tp_btf/inet_sock_set_state", "tracepoint", false, false},
	{"pf_iter_sockets", "iter/task_file", "tracepoint", false, true},
};
#define PF_NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

static const char *const tiers[] = {"tracepoint"};

__attribute__((format(printf, 2, 0))) static int libbpf_print(enum libbpf_print_level level,
								 const char *fmt, va_list ap)
{
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

	if (err == -EPERM || err == -EACCES)
		return "permission denied: procflow needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN "
		       "and CAP_SYS_ADMIN)";
	libbpf_strerror(err, buf, sizeof(buf));
	return buf;
}

/*
 * One try at a tier: open, configure, load, attach. On failure everything
 * is torn down and *failed names the hook that failed.
 */
static int try_tier(struct pf_loader *l, const struct pf_config *cfg, const char *tier,
		    const char **failed)
{
	struct bpf_program *p;
	int err;

	*failed = NULL;
	l->skel = procflow_bpf__open();
	if (!l->skel) {
		*failed = "open";
		return -errno;
	}
	l->skel->rodata->cfg_args_max = cfg->args_max;
	l->skel->rodata->cfg_include_loopback = cfg->include_loopback;
	bpf_map__set_max_entries(l->skel->maps.events, cfg->ringbuf_bytes);
	bpf_object__for_each_program(p, l->skel->obj)
	{
		const struct pf_hook *h = NULL;

		for (size_t i = 0; i < PF_NHOOKS; i++)
			if (!strcmp(hooks[i].prog, bpf_program__name(p)))
				h = &hooks[i];
		bpf_program__set_autoload(p, h && hook_in_tier(h, tier));
	}
	err = procflow_bpf__load(l->skel);
	if (err) {
		*failed = "load";
		goto fail;
	}
	for (size_t i = 0; i < PF_NHOOKS; i++) {
		if (!hook_in_tier(&hooks[i], tier))
			continue;
		err = attach_one(l, &hooks[i]);
		if (err) {
			*failed = hooks[i].hook;
			goto fail;
		}
	}
	l->tier = tier;
	return 0;
fail:
	destroy_links(l);
	procflow_bpf__destroy(l->skel);
	l->skel = NULL;
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

	for (size_t t = 0; t < sizeof(tiers) / sizeof(tiers[0]); t++) {
		if (strcmp(cfg->tier, "auto") && strcmp(cfg->tier, tiers[t]))
			continue;
		err = try_tier(l, cfg, tiers[t], &failed);
		if (!err) {
			pf_log("hook tier: %s (%s)", l->tier,
			       strcmp(cfg->tier, "auto") ? "forced with --hook-tier"
							 : "the first tier that loaded and attached");
			return 0;
		}
		pf_log("hook tier %s unavailable: %s failed: %s", tiers[t], failed, errmsg(err));
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

int pf_loader__scan_sockets(struct pf_loader *l)
{
	struct bpf_link *link;
	char buf[256];
	int fd, err = 0;

	link = bpf_program__attach_iter(l->skel->progs.pf_iter_sockets, NULL);
	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	/* The program writes nothing: reading drives it to the end. */
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
	}
	close(fd);
out:
	bpf_link__destroy(link);
	return err;
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

/* ---- procflow check ---- */

static void check_line(const char *what, const char *result)
{
	printf("  %-34s %s\n", what, result);
}

int pf_check(const struct pf_config *cfg)
{
	char cg[256], buf[160];
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

	printf("\nhooks (loads / attaches):\n");
	for (size_t i = 0; i < PF_NHOOKS; i++) {
		const struct pf_hook *h = &hooks[i];
		struct procflow_bpf *skel = procflow_bpf__open();
		struct bpf_program *p, *want = NULL;
		struct bpf_link *link = NULL;
		const char *res;
		int err;

		if (!skel) {
			check_line(h->hook, "no (cannot open the BPF object)");
			can_run = false;
			continue;
		}
		bpf_object__for_each_program(p, skel->obj)
		{
			bool me = !strcmp(bpf_program__name(p), h->prog);

			bpf_program__set_autoload(p, me);
			if (me)
				want = p;
		}
		err = procflow_bpf__load(skel);
		if (err) {
			snprintf(buf, sizeof(buf), "no: does not load (%s)", errmsg(err));
			res = buf;
		} else {
			if (h->iter)
				link = bpf_program__attach_iter(want, NULL);
			else if (h->cgroup && cgfd >= 0)
				link = bpf_program__attach_cgroup(want, cgfd);
			else if (!h->cgroup)
				link = bpf_program__attach(want);
			if (link) {
				res = "loads, attaches";
			} else {
				snprintf(buf, sizeof(buf), "loads, does not attach (%s)",
					 errmsg(-errno));
				res = buf;
			}
		}
		if (!link)
			can_run = false;
		check_line(h->hook, res);
		bpf_link__destroy(link);
		procflow_bpf__destroy(skel);
	}

	printf("\ntiers:\n");
	for (size_t t = 0; t < sizeof(tiers) / sizeof(tiers[0]); t++)
		check_line(tiers[t], can_run ? "usable" : "not usable");
	check_line("kprobe, fentry", "not built into this version");

	printf("\nprocess identity:\n");
	if (can_run) {
		struct pf_loader l;
		struct pf_config quiet = *cfg;
		int host;

		quiet.tier = "auto";
		if (!pf_loader__start(&l, &quiet)) {
			host = pf_loader__host_pidns(&l);
			check_line("host PID namespace",
				   host == 1   ? "visible: path and arguments of every process"
				   : host == 0 ? "not visible: processes started after the agent get "
						 "path and arguments from their exec; older ones get "
						 "the task name and [] (their /proc is not this one)"
					       : "could not tell");
			pf_loader__stop(&l);
		}
	} else {
		check_line("host PID namespace", "not checked (hooks missing)");
	}
	if (cgfd >= 0)
		close(cgfd);
	printf("\n%s\n", can_run ? "procflow can run here (tier: tracepoint)"
				 : "procflow cannot run here: see the lines marked 'no' above");
	return can_run ? PF_EXIT_OK : PF_EXIT_RUNTIME;
}
