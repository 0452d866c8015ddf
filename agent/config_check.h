/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The checks every command runs on a loaded configuration (agent/config.c):
 * `run`, `run --print-config`, `check`, `reload` and `clickhouse-schema`
 * refuse the same settings with the same message, so --print-config can
 * vet a configuration before a deploy.
 */
#ifndef PF_CONFIG_CHECK_H
#define PF_CONFIG_CHECK_H

#include <stddef.h>
#include <stdio.h>

struct pf_config;
struct pf_config_args;
struct pf_cfg_origin;

/*
 * What one key's bounds cannot say: ringBufferKiB a power of two, the
 * redaction replacement (1..64 printable bytes), the rules file readable
 * and every rule valid, no rules file with redaction off, the output and
 * runtime directories not something else than a directory. @orig (from
 * pf_config_load()) names where each value came from: file:line,
 * environment variable, flag. Returns 0, or -EINVAL with one line in @err.
 */
int pf_config_validate(const struct pf_config *cfg, const struct pf_config_args *args,
		       const struct pf_cfg_origin *orig, char *err, size_t errsz);

/* Warn (one line each on stderr) about PROCFLOW_* variables that set no
 * key, with the closest known name. Returns how many. */
int pf_config_env_warnings(void);

/* The configuration keys for `procflow help config`: each key, its default,
 * live or restart, and its environment variable. */
void pf_config_keys_usage(FILE *out);

#endif
