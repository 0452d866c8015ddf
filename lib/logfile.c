// SPDX-License-Identifier: BSD-2-Clause
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pf_logfile {
	int fd;
	uint64_t lost;
	char path[PATH_MAX];
};

struct pf_logfile *pf_logfile__open(const char *dir)
{
	struct pf_logfile *f;
	struct stat st;
	int err;

	if (mkdir(dir, 0750) && errno != EEXIST)
		return NULL;
	if (stat(dir, &st))
		return NULL;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	if (snprintf(f->path, sizeof(f->path), "%s/flows.log", dir) >= (int)sizeof(f->path)) {
		free(f);
		errno = ENAMETOOLONG;
		return NULL;
	}
	f->fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (f->fd < 0) {
		err = errno;
		free(f);
		errno = err;
		return NULL;
	}
	return f;
}

void pf_logfile__close(struct pf_logfile *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

int pf_logfile__write(struct pf_logfile *f, const char *buf, size_t len, uint64_t nlines)
{
	off_t start = lseek(f->fd, 0, SEEK_END);
	size_t done = 0;
	int err;

	while (done < len) {
		ssize_t n = write(f->fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -ENOSPC;
			/* Never leave a partial line for a tailing reader. */
			if (start >= 0 && done > 0 && ftruncate(f->fd, start))
				err = -errno;
			f->lost += nlines;
			return err;
		}
		done += (size_t)n;
	}
	return 0;
}

uint64_t pf_logfile__lost(const struct pf_logfile *f)
{
	return f->lost;
}

const char *pf_logfile__path(const struct pf_logfile *f)
{
	return f->path;
}
