// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness for pf_cgroup_path__parse(). A cgroup path is chosen by
 * whoever creates the cgroup (a runtime, a delegated user, a container that
 * makes sub-cgroups), so the parser must take any bytes.
 *
 * libFuzzer hands over a buffer of exactly the input size, so ASan catches
 * any read past the length. Besides the sanitizers, the harness checks what
 * callers rely on and aborts when it does not hold: the answer is one of the
 * three documented returns; a container's id and pod UID are NUL-terminated
 * within their bounds, made of the characters their runtimes use, and the id
 * is taken from the path itself; a host path leaves nothing behind.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_path.h"

static int id_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '.' || c == '_' || c == '-';
}

static void check_found(const uint8_t *data, size_t size, const struct pf_cgroup_container *c)
{
	size_t n, i;

	if (c->runtime <= PF_CGROUP_RT_NONE || c->runtime > PF_CGROUP_RT_UNKNOWN)
		abort();
	if (!memchr(c->id, '\0', sizeof(c->id)) || !memchr(c->pod_uid, '\0', sizeof(c->pod_uid)))
		abort();
	n = strlen(c->id);
	if (n == 0)
		abort();
	for (i = 0; i < n; i++)
		if (!id_char(c->id[i]))
			abort();
	/* The id is a piece of the path (memmem needs no terminator). */
	if (!memmem(data, size, c->id, n))
		abort();
	n = strlen(c->pod_uid);
	if (n != 0 && n != 32 && n != 36)
		abort();
	for (i = 0; i < n; i++)
		if (!((c->pod_uid[i] >= '0' && c->pod_uid[i] <= '9') ||
		      (c->pod_uid[i] >= 'a' && c->pod_uid[i] <= 'f') || c->pod_uid[i] == '-'))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pf_cgroup_container c, again;
	int err;

	memset(&c, 0xa5, sizeof(c));
	err = pf_cgroup_path__parse((const char *)data, size, &c);
	switch (err) {
	case 0:
		check_found(data, size, &c);
		break;
	case -ENOENT:
	case -EINVAL:
		if (c.runtime != PF_CGROUP_RT_NONE || c.id[0] || c.pod_uid[0])
			abort();
		break;
	default:
		abort();
	}
	/* Pure: the same bytes give the same answer. */
	memset(&again, 0x5a, sizeof(again));
	if (pf_cgroup_path__parse((const char *)data, size, &again) != err ||
	    memcmp(&c, &again, sizeof(c)) != 0)
		abort();
	return 0;
}
