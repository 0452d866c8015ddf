// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness for the runtime-document readers (lib/container_meta.c).
 * The documents are written by container runtimes and, for labels and
 * annotations, by whoever creates a container, so any bytes must give one
 * of the documented answers. Checked besides the sanitizers: the return is
 * one of those documented; on success the strings are NUL-terminated within
 * their bounds and the labels are "k=v", sorted, at most the bound.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "container_meta.h"

static void check(const struct pf_cmeta *m)
{
	if (strnlen(m->name, sizeof(m->name)) == sizeof(m->name) ||
	    strnlen(m->namespace_, sizeof(m->namespace_)) == sizeof(m->namespace_) ||
	    strnlen(m->image, sizeof(m->image)) == sizeof(m->image) ||
	    m->nlabels > PF_CMETA_LABELS_MAX)
		abort();
	for (unsigned i = 0; i < m->nlabels; i++) {
		if (!strchr(m->labels[i], '=') || m->labels[i][0] == '=')
			abort();
		if (i && strcmp(m->labels[i - 1], m->labels[i]) > 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pf_cmeta m = {0};
	char name[8] = "";
	int err;

	err = pf_cmeta__from_oci(&m, (const char *)data, size);
	if (err && err != -ENOENT && err != -EINVAL && err != -ENOMEM)
		abort();
	check(&m);
	pf_cmeta__clear(&m);
	err = pf_cmeta__from_engine(&m, (const char *)data, size);
	if (err && err != -EINVAL && err != -ENOMEM)
		abort();
	check(&m);
	pf_cmeta__clear(&m);
	if (size && size < 64) {
		char *s = malloc(size + 1);

		if (!s)
			return 0;
		memcpy(s, data, size);
		s[size] = '\0';
		pf_cmeta__name_aggr(s, name, sizeof(name));
		if (strnlen(name, sizeof(name)) == sizeof(name))
			abort();
		free(s);
	}
	return 0;
}
