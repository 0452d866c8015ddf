// SPDX-License-Identifier: BSD-2-Clause
/*
 * The event loop (see loop.h). File events live in a table indexed by fd,
 * as in redis' ae.c: epoll hands back the fd, and the table says what to
 * call. A callback that removes another fd whose event is pending in the
 * same round clears its row, so that event is skipped rather than sent to
 * a stale callback.
 */
#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define PF_LOOP_EVENTS 16 /* events taken per epoll_wait */

struct fevent {
	uint32_t events; /* 0: not registered */
	pf_file_proc proc;
	void *ctx;
};

struct pf_loop {
	int ep;
	struct fevent *fe; /* by fd */
	size_t nfe;
	bool stop;
};

struct pf_loop *pf_loop__new(void)
{
	struct pf_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0) {
		int err = errno;

		free(l);
		errno = err;
		return NULL;
	}
	return l;
}

void pf_loop__free(struct pf_loop *l)
{
	if (!l)
		return;
	close(l->ep);
	free(l->fe);
	free(l);
}

int pf_loop__add(struct pf_loop *l, int fd, uint32_t events, pf_file_proc proc, void *ctx)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	bool had;

	if (fd < 0 || !events || !proc)
		return -EINVAL;
	if ((size_t)fd >= l->nfe) {
		size_t n = (size_t)fd + 16;
		struct fevent *fe = realloc(l->fe, n * sizeof(*fe));

		if (!fe)
			return -ENOMEM;
		memset(fe + l->nfe, 0, (n - l->nfe) * sizeof(*fe));
		l->fe = fe;
		l->nfe = n;
	}
	had = l->fe[fd].events != 0;
	if (epoll_ctl(l->ep, had ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	l->fe[fd].events = events;
	l->fe[fd].proc = proc;
	l->fe[fd].ctx = ctx;
	return 0;
}

void pf_loop__del(struct pf_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfe || !l->fe[fd].events)
		return;
	(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	memset(&l->fe[fd], 0, sizeof(l->fe[fd]));
}

void pf_loop__stop(struct pf_loop *l)
{
	l->stop = true;
}

int pf_loop__run(struct pf_loop *l)
{
	struct epoll_event evs[PF_LOOP_EVENTS];

	l->stop = false;
	while (!l->stop) {
		int n = epoll_wait(l->ep, evs, PF_LOOP_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			int fd = evs[i].data.fd;
			struct fevent *f;

			if ((size_t)fd >= l->nfe || !l->fe[fd].events)
				continue; /* removed by an earlier callback of this round */
			f = &l->fe[fd];
			f->proc(l, fd, evs[i].events, f->ctx);
		}
	}
	return 0;
}
