// SPDX-License-Identifier: BSD-2-Clause
/*
 * The process cache (see proc_cache.h).
 *
 * Layout:
 * - An open-addressing hash table (linear probing) maps a PID to the head
 *   of that PID's history. Its size is a power of two at least twice the
 *   identities it holds: there are never more PIDs than identities, so the
 *   load stays at or below 1/2 and probes stay short. It starts small and
 *   doubles when the cache fills it (grow()), up to the size max_entries
 *   needs: sized for max_entries from the start it would take 8 MiB at the
 *   agent's bound, and since PIDs hash to random slots a few thousand
 *   processes would touch most of its pages. Deletions shift the following
 *   entries back rather than leaving tombstones, so lookups do not slow
 *   down as processes come and go. lookup() is on the agent's hot path
 *   (every flow at every flush).
 * - Each history is a singly linked list sorted newest first by
 *   (start_ns, since_ns). It is sorted on insert rather than kept in
 *   arrival order so that events delivered out of order still leave the
 *   lives of a PID, and the programs within one life, in time order. It is
 *   short (a live process has one identity, plus those that ended within
 *   the grace period), so walking it is cheap.
 * - Every identity that has ended (until_ns != 0) is in a binary min-heap
 *   keyed by until_ns. The heap top is the identity to evict when the
 *   cache is full, and gc() pops from it until the top is still in its
 *   grace period, so neither has to scan the whole cache. It has room for
 *   every identity the table holds at its present size, and grows with it.
 */
#include "proc_cache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PF_NOT_IN_HEAP SIZE_MAX

/* The slot table's first size: 16 KiB, room for 512 identities. It doubles
 * from there as the cache fills, so memory follows the processes there are. */
#define PF_PROC_CACHE_FIRST_SLOTS 1024

struct pf_proc_node {
	struct pf_proc p;
	struct pf_proc_node *older; /* next in this PID's history */
	size_t heap_idx;	    /* index in the ended heap, or PF_NOT_IN_HEAP */
};

struct pf_proc_slot {
	struct pf_proc_node *head; /* NULL: slot free */
	uint32_t pid;
};

struct pf_proc_cache {
	struct pf_proc_slot *slots;
	size_t mask; /* number of slots - 1 */
	unsigned shift;
	struct pf_proc_node **heap; /* ended identities, min until_ns on top */
	size_t heap_len;
	/* Identities the tables hold at their present size (the heap has room
	 * for as many): half the slots, at most max_entries. */
	size_t cap;
	size_t max_entries;
	uint64_t grace_ns;
	uint64_t tick_ns; /* the precision of a start time read from /proc */
	struct pf_proc_cache_stats st;
};

/* ---- hash table ------------------------------------------------------- */

/* Fibonacci hashing: PIDs are handed out sequentially, and the
 * multiplication spreads neighbours over the whole table. */
static size_t home_slot(const struct pf_proc_cache *c, uint32_t pid)
{
	return (size_t)(((uint64_t)pid * 0x9E3779B97F4A7C15ULL) >> c->shift) & c->mask;
}

static struct pf_proc_slot *find_slot(const struct pf_proc_cache *c, uint32_t pid)
{
	size_t i = home_slot(c, pid);

	/* Terminates: the table is never more than half full. */
	for (;; i = (i + 1) & c->mask) {
		struct pf_proc_slot *s = &c->slots[i];

		if (!s->head)
			return NULL;
		if (s->pid == pid)
			return s;
	}
}

static struct pf_proc_slot *find_or_add_slot(struct pf_proc_cache *c, uint32_t pid)
{
	size_t i = home_slot(c, pid);

	for (;; i = (i + 1) & c->mask) {
		struct pf_proc_slot *s = &c->slots[i];

		if (!s->head) {
			s->pid = pid; /* the caller sets head */
			return s;
		}
		if (s->pid == pid)
			return s;
	}
}

/* Free slot @s, then move back every entry of the probe run after it that
 * would otherwise become unreachable from its home slot. */
static void remove_slot(struct pf_proc_cache *c, struct pf_proc_slot *s)
{
	size_t i = (size_t)(s - c->slots), j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & c->mask;
		if (!c->slots[j].head)
			break;
		k = home_slot(c, c->slots[j].pid);
		/* The entry at j may fill the hole at i unless its home lies
		 * cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		c->slots[i] = c->slots[j];
		i = j;
	}
	c->slots[i].head = NULL;
	c->slots[i].pid = 0;
}

/* Identities a table of @nslots slots holds: at most half of them, so that
 * probe runs stay short and always end at a free slot. */
static size_t cap_of(const struct pf_proc_cache *c, size_t nslots)
{
	return nslots / 2 < c->max_entries ? nslots / 2 : c->max_entries;
}

/*
 * Double the slot table (every PID moves to its slot in the new one) and
 * give the heap room for what the new size holds. Both allocations are made
 * before anything moves: when either fails the cache is left exactly as it
 * was and goes on at its present size, where insert() evicts or refuses as
 * at max_entries. The failure is counted (stats.grow_failed), and the next
 * insert that finds the cache at this size tries again.
 */
static int grow(struct pf_proc_cache *c)
{
	size_t old_n = c->mask + 1, n = 2 * old_n, cap = cap_of(c, n);
	struct pf_proc_slot *old = c->slots, *slots = calloc(n, sizeof(*slots));
	struct pf_proc_node **heap;

	if (!slots) {
		c->st.grow_failed++;
		return -ENOMEM;
	}
	/* The heap's first c->heap_len entries are kept by realloc(). */
	heap = realloc(c->heap, cap * sizeof(*heap));
	if (!heap) {
		free(slots);
		c->st.grow_failed++;
		return -ENOMEM;
	}
	c->heap = heap;
	c->slots = slots;
	c->mask = n - 1;
	c->shift--;
	for (size_t i = 0; i < old_n; i++) {
		size_t j;

		if (!old[i].head)
			continue;
		/* PIDs are unique: the first free slot of the run is its own. */
		for (j = home_slot(c, old[i].pid); c->slots[j].head; j = (j + 1) & c->mask)
			;
		c->slots[j] = old[i];
	}
	free(old);
	c->cap = cap;
	return 0;
}

/* ---- ended heap --------------------------------------------------------- */

static void heap_set(struct pf_proc_cache *c, size_t i, struct pf_proc_node *n)
{
	c->heap[i] = n;
	n->heap_idx = i;
}

static void heap_up(struct pf_proc_cache *c, size_t i)
{
	struct pf_proc_node *n = c->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (c->heap[parent]->p.until_ns <= n->p.until_ns)
			break;
		heap_set(c, i, c->heap[parent]);
		i = parent;
	}
	heap_set(c, i, n);
}

static void heap_down(struct pf_proc_cache *c, size_t i)
{
	struct pf_proc_node *n = c->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, m = l;

		if (l >= c->heap_len)
			break;
		if (l + 1 < c->heap_len && c->heap[l + 1]->p.until_ns < c->heap[l]->p.until_ns)
			m = l + 1;
		if (n->p.until_ns <= c->heap[m]->p.until_ns)
			break;
		heap_set(c, i, c->heap[m]);
		i = m;
	}
	heap_set(c, i, n);
}

static void heap_remove(struct pf_proc_cache *c, struct pf_proc_node *n)
{
	size_t i = n->heap_idx;
	struct pf_proc_node *last;

	if (i == PF_NOT_IN_HEAP)
		return;
	n->heap_idx = PF_NOT_IN_HEAP;
	last = c->heap[--c->heap_len];
	if (last == n)
		return;
	heap_set(c, i, last);
	heap_up(c, i);
	heap_down(c, last->heap_idx);
}

/* Every change of until_ns goes through here so that the heap holds exactly
 * the identities that have ended, in order. */
static void set_until(struct pf_proc_cache *c, struct pf_proc_node *n, uint64_t until_ns)
{
	n->p.until_ns = until_ns;
	if (until_ns == 0) {
		heap_remove(c, n);
	} else if (n->heap_idx == PF_NOT_IN_HEAP) {
		/* Cannot overflow: the heap has room for every identity the
		 * table holds (c->cap). insert() goes one over only when
		 * nothing had ended, and then ends at most one. */
		heap_set(c, c->heap_len++, n);
		heap_up(c, n->heap_idx);
	} else {
		heap_up(c, n->heap_idx);
		heap_down(c, n->heap_idx);
	}
}

/* ---- identities ------------------------------------------------------- */

static void node_free(struct pf_proc_node *n)
{
	if (!n)
		return;
	free(n->p.path);
	free(n->p.args);
	free(n);
}

static int dup_str(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static void set_comm(struct pf_proc *p, const char *comm)
{
	size_t n = comm ? strnlen(comm, sizeof(p->comm) - 1) : 0;

	if (n)
		memcpy(p->comm, comm, n);
	p->comm[n] = '\0';
}

/* A new, unlinked identity with copies of @path and @args. */
static struct pf_proc_node *node_new(uint32_t pid, uint32_t ppid, uint64_t start_ns,
				     uint64_t since_ns, uint32_t uid, uint64_t cgroup_id,
				     uint32_t source, const char *comm, const char *path,
				     const char *args, int args_truncated)
{
	struct pf_proc_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->heap_idx = PF_NOT_IN_HEAP;
	n->p.pid = pid;
	n->p.ppid = ppid;
	n->p.uid = uid;
	n->p.source = source;
	n->p.start_ns = start_ns;
	n->p.since_ns = since_ns;
	n->p.cgroup_id = cgroup_id;
	n->p.args_truncated = args_truncated ? 1 : 0;
	set_comm(&n->p, comm);
	if (dup_str(path, &n->p.path) || dup_str(args, &n->p.args)) {
		node_free(n);
		return NULL;
	}
	return n;
}

/* Unlink @n from its history (and the table if it was the last one), from
 * the heap, and free it. */
static void remove_node(struct pf_proc_cache *c, struct pf_proc_node *n)
{
	struct pf_proc_slot *s = find_slot(c, n->p.pid);
	struct pf_proc_node **pp;

	if (s) {
		for (pp = &s->head; *pp; pp = &(*pp)->older) {
			if (*pp == n) {
				*pp = n->older;
				break;
			}
		}
		if (!s->head)
			remove_slot(c, s);
	}
	heap_remove(c, n);
	node_free(n);
	c->st.entries--;
}

/*
 * Whether @a and the life that started at @start_ns (@rounded: a start
 * read from /proc) are the same life of the PID. The kernel's events carry
 * the start to the nanosecond; /proc gives it in clock ticks, rounded down
 * (so a scanned start is the event's start cut to a tick). Two lives of
 * one PID cannot start within one tick: the PID would have to be freed
 * and handed out again in between.
 */
static bool same_life(const struct pf_proc_cache *c, const struct pf_proc *a, uint64_t start_ns,
		      bool rounded)
{
	if (!rounded && a->source != PF_PROC_SRC_PROCFS)
		return a->start_ns == start_ns;
	return a->start_ns / c->tick_ns == start_ns / c->tick_ns;
}

/* Whether @p is who its PID was at @ts_ns. */
static bool holds(const struct pf_proc *p, uint64_t ts_ns)
{
	return p->since_ns <= ts_ns && (p->until_ns == 0 || ts_ns <= p->until_ns) &&
	       (p->exit_ns == 0 || ts_ns <= p->exit_ns);
}

/* The history order, newest first: a later life first, and within one
 * life the later program. */
static bool newer(const struct pf_proc *a, const struct pf_proc *b)
{
	if (a->start_ns != b->start_ns)
		return a->start_ns > b->start_ns;
	return a->since_ns > b->since_ns;
}

/*
 * Close the windows around the just-inserted @n, so that at any time at most
 * one identity of the PID is current:
 * - an older life ends where @n's life starts (the PID was reused, and the
 *   old process's exit event was lost or has not arrived yet);
 * - the previous program of the same life ends where @n's starts (exec);
 * - if @n arrived late, it ends where the next life or program starts, and
 *   it inherits an exit already recorded for its life (otherwise it would
 *   stay current, could never be evicted and would leak until PID reuse).
 */
static void link_windows(struct pf_proc_cache *c, struct pf_proc_node *n, struct pf_proc_node *head)
{
	uint64_t end = 0, exit_ns = 0;
	struct pf_proc_node *o;

	for (o = head; o; o = o->older) {
		bool same = same_life(c, &o->p, n->p.start_ns, n->p.source == PF_PROC_SRC_PROCFS);
		uint64_t bound;

		if (o == n)
			continue;
		if (!same && o->p.start_ns < n->p.start_ns) {
			if (o->p.until_ns == 0)
				set_until(c, o, n->p.start_ns);
			continue;
		}
		if (!same) {
			bound = o->p.start_ns;
		} else {
			if (o->p.exit_ns && !exit_ns)
				exit_ns = o->p.exit_ns;
			if (o->p.since_ns <= n->p.since_ns) {
				if (o->p.until_ns == 0 || o->p.until_ns > n->p.since_ns)
					set_until(c, o, n->p.since_ns);
				continue;
			}
			bound = o->p.since_ns;
		}
		if (!end || bound < end)
			end = bound;
	}
	if (exit_ns) {
		n->p.exit_ns = exit_ns;
		if (!end || exit_ns < end)
			end = exit_ns;
	}
	if (end)
		set_until(c, n, end);
}

/*
 * Add @n (owned by the cache from here on, freed on failure). The tables
 * grow first while below max_entries. When full (at max_entries, or at the
 * present size when a growth failed), the identity that ended first goes;
 * an identity still current is never evicted, since it may be the only
 * name a running process has.
 */
static int insert(struct pf_proc_cache *c, struct pf_proc_node *n)
{
	struct pf_proc_node **pp;
	struct pf_proc_slot *s;
	bool replaces = false;

	/* A failure is counted in grow(); c->cap is then the bound for now. */
	if (c->st.entries >= c->cap && c->cap < c->max_entries)
		grow(c);
	if (c->st.entries >= c->cap) {
		if (c->heap_len > 0) {
			remove_node(c, c->heap[0]);
			c->st.evicted++;
		} else if (find_slot(c, n->p.pid)) {
			/*
			 * Nothing has ended, but @n is a new identity of a PID
			 * already here: linking it ends one of the two (an exec
			 * ends the previous program). Refusing it would leave
			 * the PID named after a program it no longer runs, so
			 * go one over and evict what was ended.
			 */
			replaces = true;
		} else {
			c->st.dropped++;
			node_free(n);
			return -ENOSPC;
		}
	}

	/* Only now: eviction may have moved slots around. */
	s = find_or_add_slot(c, n->p.pid);
	/* Ahead of equals: of two identical windows the one told last wins. */
	for (pp = &s->head; *pp && newer(&(*pp)->p, &n->p); pp = &(*pp)->older)
		;
	n->older = *pp;
	*pp = n;
	c->st.entries++;
	link_windows(c, n, s->head);
	if (replaces) {
		if (c->heap_len == 0) {
			/* Only with a time of 0, which ends nothing. */
			remove_node(c, n);
			c->st.dropped++;
			return -ENOSPC;
		}
		remove_node(c, c->heap[0]);
		c->st.evicted++;
	}
	return 0;
}

/* ---- API -------------------------------------------------------------- */

void pf_proc_cache__set_grace(struct pf_proc_cache *c, uint64_t grace_ns)
{
	c->grace_ns = grace_ns;
}

struct pf_proc_cache *pf_proc_cache__new(size_t max_entries, uint64_t grace_ns)
{
	struct pf_proc_cache *c;
	size_t nslots = 16;
	unsigned bits = 4;

	if (max_entries == 0 || max_entries > SIZE_MAX / 4 / sizeof(struct pf_proc_slot)) {
		errno = EINVAL;
		return NULL;
	}
	/* The first size: what max_entries needs, if that is smaller. grow()
	 * doubles it up to that as the cache fills. */
	while (nslots < 2 * max_entries && nslots < PF_PROC_CACHE_FIRST_SLOTS) {
		nslots <<= 1;
		bits++;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->max_entries = max_entries;
	c->cap = cap_of(c, nslots);
	c->slots = calloc(nslots, sizeof(*c->slots));
	c->heap = calloc(c->cap, sizeof(*c->heap));
	if (!c->slots || !c->heap) {
		pf_proc_cache__free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->mask = nslots - 1;
	c->shift = 64 - bits;
	c->grace_ns = grace_ns;
	c->tick_ns = pf_proc_cache__tick_ns();
	return c;
}

void pf_proc_cache__free(struct pf_proc_cache *c)
{
	size_t i;

	if (!c)
		return;
	if (c->slots) {
		for (i = 0; i <= c->mask; i++) {
			struct pf_proc_node *n = c->slots[i].head, *older;

			for (; n; n = older) {
				older = n->older;
				node_free(n);
			}
		}
	}
	free(c->slots);
	free(c->heap);
	free(c);
}

int pf_proc_cache__exec(struct pf_proc_cache *c, uint32_t pid, uint32_t ppid, uint64_t start_ns,
			uint64_t ts_ns, uint32_t uid, uint64_t cgroup_id, const char *comm,
			const char *path, const char *args, int args_truncated)
{
	struct pf_proc_node *n;

	if (!c)
		return -EINVAL;
	n = node_new(pid, ppid, start_ns, ts_ns, uid, cgroup_id, PF_PROC_SRC_EXEC, comm, path, args,
		     args_truncated);
	if (!n)
		return -ENOMEM;
	/* The previous program of this life (and any older life of the PID)
	 * is ended by link_windows(). */
	return insert(c, n);
}

int pf_proc_cache__scan(struct pf_proc_cache *c, uint32_t pid, uint32_t ppid, uint64_t start_ns,
			uint32_t uid, const char *comm, const char *path, const char *args,
			int args_truncated)
{
	struct pf_proc_slot *s;
	struct pf_proc_node *n;

	if (!c)
		return -EINVAL;
	/* The scan runs while exec events already flow: whatever the kernel
	 * told us about this life or a later one is fresher than /proc. The
	 * head has the newest start. */
	s = find_slot(c, pid);
	if (s && s->head->p.start_ns >= start_ns)
		return 0;
	n = node_new(pid, ppid, start_ns, start_ns, uid, 0, PF_PROC_SRC_PROCFS, comm, path, args,
		     args_truncated);
	if (!n)
		return -ENOMEM;
	return insert(c, n);
}

/* The identity (@pid, @start_ns) had at @ts_ns, or NULL. */
static const struct pf_proc *find_exact(struct pf_proc_cache *c, uint32_t pid, uint64_t start_ns,
					uint64_t ts_ns)
{
	struct pf_proc_slot *s = find_slot(c, pid);
	struct pf_proc_node *n;

	for (n = s ? s->head : NULL; n; n = n->older)
		if (same_life(c, &n->p, start_ns, false) && holds(&n->p, ts_ns))
			return &n->p;
	return NULL;
}

int pf_proc_cache__fork(struct pf_proc_cache *c, uint32_t child_pid, uint64_t child_start_ns,
			uint32_t ppid, uint64_t parent_start_ns, const char *comm)
{
	const struct pf_proc *parent;
	struct pf_proc_slot *s;
	struct pf_proc_node *n, *o;

	if (!c)
		return -EINVAL;
	/* Already known (an exec of the child, or the same fork twice): the
	 * fork must not take the place of what the child ran. */
	s = find_slot(c, child_pid);
	for (o = s ? s->head : NULL; o; o = o->older)
		if (same_life(c, &o->p, child_start_ns, false))
			return 0;

	/* The parent's program at the moment of the fork. The exact start may
	 * not match when the parent came from a /proc scan (its start is
	 * rounded down to a clock tick), hence the lookup by time. */
	parent = find_exact(c, ppid, parent_start_ns, child_start_ns);
	if (!parent)
		parent = pf_proc_cache__lookup(c, ppid, child_start_ns);
	if (parent)
		n = node_new(child_pid, ppid, child_start_ns, child_start_ns, parent->uid,
			     parent->cgroup_id, PF_PROC_SRC_FORK, comm, parent->path, parent->args,
			     parent->args_truncated);
	else
		n = node_new(child_pid, ppid, child_start_ns, child_start_ns, 0, 0,
			     PF_PROC_SRC_COMM, comm, NULL, NULL, 0);
	if (!n)
		return -ENOMEM;
	/* @parent may be evicted by insert(): everything is copied by now. */
	return insert(c, n);
}

int pf_proc_cache__set_exec_id(struct pf_proc_cache *c, uint32_t pid, uint64_t start_ns,
			       uint64_t ts_ns, uint32_t exec_id)
{
	struct pf_proc_slot *s;
	struct pf_proc_node *n;

	if (!c)
		return -EINVAL;
	s = find_slot(c, pid);
	for (n = s ? s->head : NULL; n; n = n->older) {
		if (same_life(c, &n->p, start_ns, false) && n->p.since_ns <= ts_ns) {
			n->p.exec_id = exec_id;
			n->p.has_exec_id = 1;
			return 0;
		}
	}
	return -ENOENT;
}

void pf_proc_cache__exit(struct pf_proc_cache *c, uint32_t pid, uint64_t start_ns, uint64_t exit_ns)
{
	struct pf_proc_slot *s;
	struct pf_proc_node *n;

	if (!c)
		return;
	s = find_slot(c, pid);
	for (n = s ? s->head : NULL; n; n = n->older) {
		if (!same_life(c, &n->p, start_ns, false))
			continue;
		n->p.exit_ns = exit_ns;
		if (n->p.until_ns == 0)
			set_until(c, n, exit_ns);
	}
}

const struct pf_proc *pf_proc_cache__lookup(struct pf_proc_cache *c, uint32_t pid, uint64_t ts_ns)
{
	struct pf_proc_slot *s;
	struct pf_proc_node *n;

	if (!c)
		return NULL;
	s = find_slot(c, pid);
	/* Newest first; an identity newer than @ts_ns (events and socket
	 * timestamps can be slightly out of order) is passed over for the
	 * one before it. */
	for (n = s ? s->head : NULL; n; n = n->older)
		if (holds(&n->p, ts_ns))
			return &n->p;
	return NULL;
}

void pf_proc_cache__gc(struct pf_proc_cache *c, uint64_t now_ns)
{
	if (!c)
		return;
	/* until_ns + grace_ns < now_ns, written so that it cannot overflow. */
	while (c->heap_len > 0) {
		struct pf_proc_node *n = c->heap[0];

		if (n->p.until_ns >= now_ns || now_ns - n->p.until_ns <= c->grace_ns)
			break;
		remove_node(c, n);
	}
}

size_t pf_proc_cache__reap(struct pf_proc_cache *c, uint64_t now_ns, uint64_t before_ns,
			   pf_proc_alive_fn alive, void *ctx)
{
	size_t ended = 0;

	if (!c || !alive)
		return 0;
	for (size_t i = 0; i <= c->mask; i++) {
		struct pf_proc_node *n = c->slots[i].head;

		/* Only the head of a history can still be current. */
		if (!n || n->p.until_ns || n->p.exit_ns || n->p.since_ns >= before_ns)
			continue;
		if (alive(n->p.pid, n->p.start_ns, n->p.source == PF_PROC_SRC_PROCFS, ctx))
			continue;
		/* As an exit at @now_ns: kept for the grace period, then
		 * collected. set_until() does not move slots. */
		n->p.exit_ns = now_ns;
		set_until(c, n, now_ns);
		ended++;
	}
	c->st.reaped += ended;
	return ended;
}

uint64_t pf_proc_cache__tick_ns(void)
{
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0 || hz > 1000000000L)
		hz = 100; /* USER_HZ on every Linux architecture */
	return 1000000000ull / (uint64_t)hz;
}

void pf_proc_cache__set_tick(struct pf_proc_cache *c, uint64_t tick_ns)
{
	if (c && tick_ns)
		c->tick_ns = tick_ns;
}

void pf_proc_cache__stats(const struct pf_proc_cache *c, struct pf_proc_cache_stats *st)
{
	if (!st)
		return;
	if (!c) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = c->st;
	st->capacity = c->cap;
}
