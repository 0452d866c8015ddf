// SPDX-License-Identifier: BSD-2-Clause
/*
 * Capabilities: once the kernel side is loaded and attached, and the
 * start-up scans of /proc and of open sockets are done, the agent gives up
 * every capability it no longer needs, for good: effective, permitted,
 * inheritable and ambient sets, and the bounding set (so no exec could
 * regain them), plus no_new_privs.
 *
 * What the running agent does, and why that needs none of them (measured on
 * 6.18 by dropping everything and running the end-to-end tests):
 *   - map reads, updates and deletes, the ring buffer: through file
 *     descriptors it holds (the kernel checks capabilities when a map or
 *     program is created, not when an fd is used); the socket and
 *     socket-storage iterators: a link made from a program already loaded;
 *   - flows.log, rotation, the spool, the PID file, a reload's config file:
 *     files and directories owned by root, which uid 0 reaches by their
 *     owner bits alone.
 * Two exceptions:
 *   - where an older verifier refused the in-kernel path walk, a relative
 *     exec path is made absolute from /proc/<pid>/cwd, which for another
 *     user's process needs CAP_SYS_PTRACE; it is kept then;
 *   - kernels before 6.x refuse every bpf() command, even on an fd the
 *     caller holds, without CAP_BPF (or CAP_SYS_ADMIN) while
 *     kernel.unprivileged_bpf_disabled is set, as distributions set it
 *     (5.10 and 6.1 do; 6.18 checks only the commands that create
 *     objects). The agent does not guess from the version: a child process
 *     without capabilities tries one bpf() command on a map the agent holds
 *     (pf_caps__bpf_needs_cap()), and CAP_BPF is kept when it is refused.
 *
 * Capability sets are per thread: a thread started before the drop keeps
 * its own, so the ClickHouse sender, started first, drops its own
 * (pf_caps__drop_thread()).
 *
 * Done with capset(2) and prctl(2) directly: two system calls do not need
 * a library.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

static int capset_to(uint64_t keep)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

int pf_caps__drop(uint64_t keep)
{
	int err = 0;

	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * goes with the rest below. */
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		if (keep & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL && !err)
			err = -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL && !err)
		err = -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) && !err)
		err = -errno;
	{
		int e = capset_to(keep);

		if (e)
			return e;
	}
	return err;
}

void pf_caps__drop_thread(void)
{
	capset_to(0);
}

bool pf_caps__bpf_needs_cap(int map_fd)
{
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return true; /* cannot tell: keep it, as before this probe */
	if (pid == 0) {
		struct bpf_map_info info;
		union bpf_attr attr;

		memset(&info, 0, sizeof(info));
		memset(&attr, 0, sizeof(attr));
		attr.info.bpf_fd = (uint32_t)map_fd;
		attr.info.info_len = sizeof(info);
		attr.info.info = (uint64_t)(uintptr_t)&info;
		if (capset_to(0))
			_exit(2);
		if (syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)) == 0)
			_exit(0);
		_exit(errno == EPERM ? 1 : 2);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

uint64_t pf_caps__keep_set(bool path_walk, bool bpf_cap)
{
	uint64_t keep = path_walk ? 0 : 1ull << CAP_SYS_PTRACE;

	/* CAP_BPF where the kernel knows it (5.8+), else CAP_SYS_ADMIN. */
	if (bpf_cap)
		keep |= prctl(PR_CAPBSET_READ, CAP_BPF, 0, 0, 0) >= 0 ? 1ull << CAP_BPF
								       : 1ull << CAP_SYS_ADMIN;
	return keep;
}
