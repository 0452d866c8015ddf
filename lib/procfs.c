// SPDX-License-Identifier: BSD-2-Clause
/*
 * Reading process identity from a procfs tree (see procfs.h).
 *
 * The parsers work on (buffer, length) pairs that need not be NUL-terminated
 * and never look past the length: they are fed fuzzer input and raw kernel
 * event payloads, not only text that came from a file we terminated.
 */
#include "procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A stat line is about 300 bytes; comm is at most 15 characters, so 1 KiB
 * leaves room for every numeric field at its widest. */
#define PF_STAT_BUF 1024
/* /proc/<pid>/status is ~1.5 KiB today and "Uid:" is in its first 10 lines. */
#define PF_STATUS_BUF 4096

#define PF_NSEC_PER_SEC 1000000000ULL

/*
 * Parse the decimal number that fills [s, e) exactly. Hand-rolled rather
 * than strtoull() because the text is not NUL-terminated (strtoull could
 * run past the end) and strtoull accepts signs and spaces we must refuse.
 */
static int parse_u64(const char *s, const char *e, uint64_t *out)
{
	uint64_t v = 0;

	if (s >= e)
		return -EINVAL;
	for (; s < e; s++) {
		unsigned d = (unsigned char)*s - '0';

		if (d > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* End of the space-separated field starting at @s (the kernel writes exactly
 * one space between fields and ends the line with '\n'). */
static const char *field_end(const char *s, const char *end)
{
	while (s < end && *s != ' ' && *s != '\n' && *s != '\0')
		s++;
	return s;
}

int pf_procfs__parse_stat(const char *buf, size_t len, struct pf_procfs_stat *out)
{
	const char *end, *p, *lparen, *rparen, *fe;
	struct pf_procfs_stat st;
	uint64_t v;
	size_t n;
	int field;

	if (!buf || !out)
		return -EINVAL;
	end = buf + len;

	/* Field 1: the pid, then " (". */
	fe = field_end(buf, end);
	if (parse_u64(buf, fe, &v) || v > UINT32_MAX)
		return -EINVAL;
	if (end - fe < 2 || fe[0] != ' ' || fe[1] != '(')
		return -EINVAL;
	lparen = fe + 1;

	/* Field 2: comm. A task can name itself anything (prctl(PR_SET_NAME)),
	 * including ") (" or spaces, so only the last ')' closes it. */
	rparen = memrchr(lparen + 1, ')', (size_t)(end - (lparen + 1)));
	if (!rparen)
		return -EINVAL;
	n = (size_t)(rparen - (lparen + 1));
	if (n > sizeof(st.comm) - 1)
		n = sizeof(st.comm) - 1;
	memset(&st, 0, sizeof(st));
	memcpy(st.comm, lparen + 1, n);

	/* Fields 3..22 follow, each after one space. Field 4 is ppid, 22 the
	 * start time; the ones in between may be negative and are skipped. */
	p = rparen + 1;
	for (field = 3; field <= 22; field++) {
		if (p >= end || *p != ' ')
			return -EINVAL;
		p++;
		fe = field_end(p, end);
		if (fe == p)
			return -EINVAL;
		if (field == 4) {
			if (parse_u64(p, fe, &v) || v > UINT32_MAX)
				return -EINVAL;
			st.ppid = (uint32_t)v;
		} else if (field == 22) {
			if (parse_u64(p, fe, &v))
				return -EINVAL;
			st.start_ticks = v;
		}
		p = fe;
	}
	/* @out is only written on success. */
	*out = st;
	return 0;
}

/* Append @n bytes of @s to @out (capacity @outsz, NUL kept free) at *@pos.
 * Returns 0, or -ENOSPC after copying what fits. */
static int append(char *out, size_t outsz, size_t *pos, const char *s, size_t n)
{
	size_t room = outsz - 1 - *pos; /* callers guarantee outsz >= 1 */

	if (n > room) {
		memcpy(out + *pos, s, room);
		*pos += room;
		return -ENOSPC;
	}
	memcpy(out + *pos, s, n);
	*pos += n;
	return 0;
}

size_t pf_procfs__join_args(const char *raw, size_t len, unsigned max_argc, char *out, size_t outsz,
			    int *truncated)
{
	const char *p, *end, *nul;
	unsigned argc = 0;
	size_t pos = 0;
	int cut = 0;

	if (!out)
		outsz = 0; /* nowhere to write, not even the NUL */
	if (outsz)
		out[0] = '\0';
	if (!raw || len == 0)
		return 0;

	/* Skip argv[0]. Without a NUL there is nothing but argv[0]. */
	end = raw + len;
	nul = memchr(raw, '\0', len);
	p = nul ? nul + 1 : end;

	/* Each entry runs to the next NUL or to the end; a final NUL closes
	 * the last entry rather than opening an empty one. */
	while (p < end) {
		size_t n;

		nul = memchr(p, '\0', (size_t)(end - p));
		n = nul ? (size_t)(nul - p) : (size_t)(end - p);
		if (argc == max_argc || outsz == 0) {
			cut = 1;
			break;
		}
		if ((argc > 0 && append(out, outsz, &pos, " ", 1)) ||
		    append(out, outsz, &pos, p, n)) {
			cut = 1;
			break;
		}
		argc++;
		p = nul ? nul + 1 : end;
	}

	if (outsz)
		out[pos] = '\0';
	/* Only ever set: the caller may already carry a truncation of the raw
	 * area itself (a cmdline read up to a bound) and must not lose it. */
	if (cut && truncated)
		*truncated = 1;
	return pos;
}

/* Read the whole of @name under @dirfd, at most @cap bytes, into @buf.
 * Returns the length, or a negative errno. A process that went away
 * between open and read shows as ESRCH: report it as -ENOENT. */
static ssize_t read_at(int dirfd, const char *name, char *buf, size_t cap)
{
	size_t len = 0;
	int fd, err;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		return err == -ESRCH ? -ENOENT : err;
	}
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0) {
			err = -errno;
			if (err == -EINTR)
				continue;
			close(fd);
			return err == -ESRCH ? -ENOENT : err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	return (ssize_t)len;
}

static uint64_t ticks_to_ns(uint64_t ticks)
{
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0)
		hz = 100; /* USER_HZ on every Linux architecture */
	/* Split so that ticks * 1e9 cannot overflow (it would after ~6 years
	 * of uptime at 100 Hz). */
	return ticks / (uint64_t)hz * PF_NSEC_PER_SEC +
	       ticks % (uint64_t)hz * PF_NSEC_PER_SEC / (uint64_t)hz;
}

/* The real uid: first number of the "Uid:" line (real, effective, saved,
 * filesystem). */
static int parse_status_uid(char *buf, size_t len, uint32_t *uid)
{
	char *line = buf, *end = buf + len, *num, *e;
	unsigned long v;

	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *le = nl ? nl : end;

		if (le - line > 4 && memcmp(line, "Uid:", 4) == 0) {
			*le = '\0'; /* @buf has room: the caller keeps one byte spare */
			num = line + 4;
			while (*num == '\t' || *num == ' ')
				num++;
			if (*num < '0' || *num > '9')
				return -EINVAL;
			errno = 0;
			v = strtoul(num, &e, 10);
			if (errno || e == num || v > UINT32_MAX ||
			    (*e != '\0' && *e != '\t' && *e != ' '))
				return -EINVAL;
			*uid = (uint32_t)v;
			return 0;
		}
		line = le + 1;
	}
	return -EINVAL;
}

/* Read cmdline, at most @args_max bytes; one byte more tells whether it
 * was longer. */
static int read_cmdline(int dirfd, size_t args_max, struct pf_procfs_proc *p)
{
	ssize_t n;
	char *buf;

	if (args_max == 0)
		return 0;
	if (args_max == SIZE_MAX)
		args_max--;
	buf = malloc(args_max + 1);
	if (!buf)
		return -ENOMEM;
	n = read_at(dirfd, "cmdline", buf, args_max + 1);
	if (n < 0) {
		free(buf);
		/* A gone process is an error; anything else (an LSM denying
		 * the read) only costs us the arguments. */
		return n == -ENOENT ? -ENOENT : 0;
	}
	if ((size_t)n > args_max) {
		n = (ssize_t)args_max;
		p->args_truncated = 1;
	}
	if (n == 0) {
		/* Kernel threads and zombies have an empty cmdline. */
		free(buf);
		return 0;
	}
	p->args = buf;
	p->args_len = (size_t)n;
	return 0;
}

int pf_procfs__start_ns(const char *root, uint32_t pid, uint64_t *start_ns)
{
	struct pf_procfs_stat st;
	char path[PATH_MAX], buf[PF_STAT_BUF + 1];
	int dirfd, n, err;
	ssize_t len;

	if (!root || !start_ns)
		return -EINVAL;
	n = snprintf(path, sizeof(path), "%s/%u", root, pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		err = -errno;
		return err == -ESRCH ? -ENOENT : err;
	}
	len = read_at(dirfd, "stat", buf, PF_STAT_BUF);
	close(dirfd);
	if (len < 0)
		return (int)len == -ESRCH ? -ENOENT : (int)len;
	err = pf_procfs__parse_stat(buf, (size_t)len, &st);
	if (err)
		return err;
	*start_ns = ticks_to_ns(st.start_ticks);
	return 0;
}

int pf_procfs__read(const char *root, uint32_t pid, size_t args_max, struct pf_procfs_proc *p)
{
	struct pf_procfs_stat st;
	char path[PATH_MAX];
	char buf[PF_STATUS_BUF + 1];
	int dirfd, err, n;
	ssize_t len;

	if (!root || !p)
		return -EINVAL;
	memset(p, 0, sizeof(*p));

	n = snprintf(path, sizeof(path), "%s/%u", root, pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	/*
	 * Everything is read relative to one open /proc/<pid> directory: that
	 * directory stays bound to the task it was opened for, so if the PID
	 * is reused while we read, the reads fail instead of mixing two
	 * processes into one identity.
	 */
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		err = -errno;
		return err == -ESRCH ? -ENOENT : err;
	}

	len = read_at(dirfd, "stat", buf, PF_STAT_BUF);
	if (len < 0) {
		err = (int)len;
		goto out;
	}
	err = pf_procfs__parse_stat(buf, (size_t)len, &st);
	if (err)
		goto out;
	p->pid = pid;
	p->ppid = st.ppid;
	p->start_ns = ticks_to_ns(st.start_ticks);
	memcpy(p->comm, st.comm, sizeof(p->comm));

	len = read_at(dirfd, "status", buf, PF_STATUS_BUF);
	if (len < 0) {
		err = (int)len;
		goto out;
	}
	err = parse_status_uid(buf, (size_t)len, &p->uid);
	if (err)
		goto out;

	/* exe is unreadable for kernel threads, and without ptrace access to
	 * the task; the identity is still worth having with the comm. */
	len = readlinkat(dirfd, "exe", p->exe, sizeof(p->exe));
	if (len < 0 || (size_t)len >= sizeof(p->exe))
		len = 0;
	p->exe[len] = '\0';

	err = read_cmdline(dirfd, args_max, p);
out:
	close(dirfd);
	if (err) {
		free(p->args);
		p->args = NULL;
		p->args_len = 0;
	}
	return err;
}

int pf_procfs__for_each_pid(const char *root, int (*cb)(uint32_t pid, void *ctx), void *ctx)
{
	struct dirent *de;
	DIR *dir;
	int err = 0;

	if (!root || !cb)
		return -EINVAL;
	dir = opendir(root);
	if (!dir)
		return -errno;
	for (;;) {
		unsigned long v;
		char *e;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			err = -errno; /* 0 at the end of the directory */
			break;
		}
		/* Only all-digit names are processes ("self", "net", ... are not);
		 * strtoul alone would accept a sign or leading spaces. */
		if (de->d_name[0] < '0' || de->d_name[0] > '9' ||
		    strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		errno = 0;
		v = strtoul(de->d_name, &e, 10);
		if (errno || *e != '\0' || v > UINT32_MAX)
			continue;
		err = cb((uint32_t)v, ctx);
		if (err)
			break;
	}
	closedir(dir);
	return err;
}
