// SPDX-License-Identifier: BSD-2-Clause
/* libFuzzer harness for the config file parser: any bytes as a YAML file,
 * against a table with one key of each type. Must never crash, leak or
 * leave an error message unterminated. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

/* The tables below name only the fields a key of each type needs. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct fcfg {
	bool b;
	unsigned u, d, m;
	char s[64];
	const char *e;
};

static const char *const choices[] = {"none", "zstd", NULL};

static const struct pf_cfg_key tab[] = {
    {"aBool", PF_CFG_BOOL, "true", 0, 0, NULL, offsetof(struct fcfg, b), sizeof(bool), PF_CFG_LIVE},
    {"aUint", PF_CFG_UINT, "5", 0, 1000, NULL, offsetof(struct fcfg, u), sizeof(unsigned), 0},
    {"aDuration", PF_CFG_DURATION, "15s", 1, 86400, NULL, offsetof(struct fcfg, d),
     sizeof(unsigned), 0},
    {"aMode", PF_CFG_MODE, "0640", 0, 0777, NULL, offsetof(struct fcfg, m), sizeof(unsigned), 0},
    {"aString", PF_CFG_STRING, "/x", 0, 0, NULL, offsetof(struct fcfg, s), 64, 0},
    {"anEnum", PF_CFG_ENUM, "none", 0, 0, choices, offsetof(struct fcfg, e), sizeof(char *), 0},
};

#define N (sizeof(tab) / sizeof(tab[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pf_cfg_origin orig[N];
	char err[PF_CFG_ERR_MAX], val[128];
	struct fcfg c;

	memset(&c, 0, sizeof(c));
	if (pf_cfg__defaults(tab, N, &c, orig, err, sizeof(err)))
		__builtin_trap();
	if (pf_cfg__load_yaml(tab, N, &c, orig, "fuzz.yaml", (const char *)data, size, err,
			      sizeof(err))) {
		if (!memchr(err, '\0', sizeof(err)))
			__builtin_trap();
	}
	for (size_t i = 0; i < N; i++)
		pf_cfg__format(&tab[i], &c, val, sizeof(val));
	if (c.s[0] == '\0' || !c.e)
		__builtin_trap(); /* a string key is never left empty */
	return 0;
}
