/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's event loop: one epoll set, and a callback registered per
 * file descriptor (the ring buffer, its poll timer, the flush timer, the
 * signalfd, a sink's descriptor). Single-threaded: callbacks run one after
 * the other, in the loop's thread, and may add or remove file events
 * (their own included) while running.
 */
#ifndef PF_LOOP_H
#define PF_LOOP_H

#include <stdint.h>

struct pf_loop;

/* Called with the epoll events (EPOLLIN, EPOLLOUT, ...) @fd is ready for. */
typedef void (*pf_file_proc)(struct pf_loop *l, int fd, uint32_t events, void *ctx);

/* A new loop. Returns NULL with errno set. */
struct pf_loop *pf_loop__new(void);
void pf_loop__free(struct pf_loop *l); /* accepts NULL; closes no registered fd */

/*
 * Call @proc whenever @fd is ready for @events (EPOLLIN and/or EPOLLOUT).
 * One registration per fd: adding it again replaces the first. Returns 0
 * or a negative errno.
 */
int pf_loop__add(struct pf_loop *l, int fd, uint32_t events, pf_file_proc proc, void *ctx);

/* Stop watching @fd; a callback for it pending in this round is not called. */
void pf_loop__del(struct pf_loop *l, int fd);

/* Dispatch until pf_loop__stop(). Returns 0, or a negative errno when
 * waiting failed. */
int pf_loop__run(struct pf_loop *l);

/* Make pf_loop__run() return after the callback now running. */
void pf_loop__stop(struct pf_loop *l);

#endif
