// SPDX-License-Identifier: BSD-2-Clause
/* The table-driven config engine: value types, bounds, YAML errors with
 * their line, environment names and precedence of sources. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "config.h"

/* The tables below name only the fields a key of each type needs. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct tcfg {
	bool b;
	unsigned u, d, m;
	char s[16];
	const char *e;
};

static const char *const choices[] = {"none", "zstd", NULL};

static const struct pf_cfg_key tab[] = {
    {"flowLogsCollectProcessPath", PF_CFG_BOOL, "true", 0, 0, NULL, offsetof(struct tcfg, b),
     sizeof(bool), PF_CFG_LIVE},
    {"flowLogsFileMaxFileSizeMB", PF_CFG_UINT, "100", 1, 1000, NULL, offsetof(struct tcfg, u),
     sizeof(unsigned), 0},
    {"flowLogsFlushInterval", PF_CFG_DURATION, "15s", 1, 86400, NULL, offsetof(struct tcfg, d),
     sizeof(unsigned), 0},
    {"fileMode", PF_CFG_MODE, "0640", 0, 0777, NULL, offsetof(struct tcfg, m), sizeof(unsigned), 0},
    {"dir", PF_CFG_STRING, "/var/log", 0, 0, NULL, offsetof(struct tcfg, s), 16, 0},
    {"compression", PF_CFG_ENUM, "none", 0, 0, choices, offsetof(struct tcfg, e), sizeof(char *),
     0},
};

#define N (sizeof(tab) / sizeof(tab[0]))

static char err[PF_CFG_ERR_MAX];

static int load(struct tcfg *c, struct pf_cfg_origin *o, const char *yaml)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(pf_cfg__defaults(tab, N, c, o, err, sizeof(err)), 0);
	err[0] = '\0';
	return pf_cfg__load_yaml(tab, N, c, o, "t.yaml", yaml, strlen(yaml), err, sizeof(err));
}

static void test_values(void **state)
{
	struct pf_cfg_origin o[N];
	struct tcfg c;
	char buf[64];

	assert_int_equal(load(&c, o,
			      "# comment\nflowLogsCollectProcessPath: Disabled\n"
			      "flowLogsFileMaxFileSizeMB: 7\nflowLogsFlushInterval: 1m30s\n"
			      "fileMode: 0600\ndir: \"/tmp/x y\"\ncompression: zstd\n"),
			 0);
	assert_false(c.b);
	assert_int_equal(c.u, 7);
	assert_int_equal(c.d, 90);
	assert_int_equal(c.m, 0600);
	assert_string_equal(c.s, "/tmp/x y");
	assert_string_equal(c.e, "zstd");
	assert_int_equal(o[1].source, PF_CFG_SRC_FILE);
	assert_int_equal(o[1].line, 3);
	assert_string_equal(pf_cfg__format(&tab[2], &c, buf, sizeof(buf)), "90s");
	assert_string_equal(pf_cfg__format(&tab[3], &c, buf, sizeof(buf)), "0600");
	/* Empty and comment-only files change nothing. */
	assert_int_equal(load(&c, o, ""), 0);
	assert_int_equal(c.u, 100);
	assert_int_equal(load(&c, o, "# nothing\n"), 0);
	assert_int_equal(o[1].source, PF_CFG_SRC_DEFAULT);
}

static void test_errors(void **state)
{
	static const struct {
		const char *yaml, *msg;
	} cases[] = {
	    {"flowLogsFileMaxFileSizeMB: 1\nnope: 1\n", "t.yaml:2: nope: unknown key"},
	    {"flowLogsFileMaxFileSizeMB: 1001\n",
	     "t.yaml:1: flowLogsFileMaxFileSizeMB: '1001' is not a whole number from 1 to 1000"},
	    {"flowLogsFileMaxFileSizeMB: -1\n", "t.yaml:1: flowLogsFileMaxFileSizeMB: '-1'"},
	    {"flowLogsFileMaxFileSizeMB: 99999999999999999999999\n",
	     "t.yaml:1: flowLogsFileMaxFileSizeMB:"},
	    {"flowLogsFlushInterval: 0s\n", "t.yaml:1: flowLogsFlushInterval:"},
	    {"flowLogsFlushInterval: 5d\n", "t.yaml:1: flowLogsFlushInterval:"},
	    {"flowLogsCollectProcessPath: maybe\n",
	     "t.yaml:1: flowLogsCollectProcessPath: 'maybe' is not true or false"},
	    {"\n\nflowLogsCollectProcessPath: [true]\n",
	     "t.yaml:3: flowLogsCollectProcessPath: expected a single value, got a list"},
	    {"flowLogsCollectProcessPath: {a: 1}\n",
	     "t.yaml:1: flowLogsCollectProcessPath: expected a single value, got a mapping"},
	    {"flowLogsCollectProcessPath:\n", "t.yaml:1: flowLogsCollectProcessPath: no value"},
	    {"fileMode: 640\n", "t.yaml:1: fileMode: '640' is not an octal file mode"},
	    {"fileMode: 0800\n", "t.yaml:1: fileMode:"},
	    {"dir: /a/very/long/directory/name\n", "t.yaml:1: dir: value too long"},
	    {"compression: gzip\n", "t.yaml:1: compression: 'gzip' is not one of: none, zstd"},
	    {"dir: /a\ndir: /b\n", "t.yaml:2: dir: set twice"},
	    {"- a\n- b\n", "t.yaml:1: the file must be a mapping"},
	    {"dir: \"/a\n", "t.yaml:1: dir: malformed YAML"},
	    {"a: b\n---\nc: d\n", "t.yaml:1: a: unknown key"},
	    {"dir: /a\n---\ndir: /b\n", "t.yaml:2: only one YAML document"},
	    {"dir: &x /a\ncompression: *x\n",
	     "t.yaml:2: compression: expected a single value, got an alias"},
	};
	struct tcfg c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = load(&c, NULL, cases[i].yaml);

		if (r != -EINVAL || strncmp(err, cases[i].msg, strlen(cases[i].msg))) {
			print_error("case %zu: r=%d err '%s', expected '%s'\n", i, r, err,
				    cases[i].msg);
			fail();
		}
	}
}

static const char *fake_env(const char *name)
{
	if (!strcmp(name, "PROCFLOW_FLOW_LOGS_FILE_MAX_FILE_SIZE_MB"))
		return "9";
	if (!strcmp(name, "PROCFLOW_FLOW_LOGS_COLLECT_PROCESS_PATH"))
		return "false";
	return NULL;
}

static const char *bad_env(const char *name)
{
	return !strcmp(name, "PROCFLOW_COMPRESSION") ? "lz4" : NULL;
}

static void test_env_and_precedence(void **state)
{
	struct pf_cfg_origin o[N];
	struct tcfg c;
	char name[128];

	assert_true(pf_cfg__env_name(&tab[1], name, sizeof(name)) > 0);
	assert_string_equal(name, "PROCFLOW_FLOW_LOGS_FILE_MAX_FILE_SIZE_MB");
	assert_true(pf_cfg__env_name(&tab[0], name, sizeof(name)) > 0);
	assert_string_equal(name, "PROCFLOW_FLOW_LOGS_COLLECT_PROCESS_PATH");

	/* file, then environment over it, then a flag over both */
	assert_int_equal(load(&c, o, "flowLogsFileMaxFileSizeMB: 3\nflowLogsFlushInterval: 2s\n"),
			 0);
	assert_int_equal(pf_cfg__load_env(tab, N, &c, o, fake_env, err, sizeof(err)), 0);
	assert_int_equal(c.u, 9);
	assert_int_equal(o[1].source, PF_CFG_SRC_ENV);
	assert_false(c.b);
	assert_int_equal(c.d, 2);
	assert_int_equal(o[2].source, PF_CFG_SRC_FILE);
	assert_int_equal(pf_cfg__set(&tab[1], &c, "11", "--max-file-size", err, sizeof(err)), 0);
	assert_int_equal(c.u, 11);
	assert_int_equal(pf_cfg__load_env(tab, N, &c, o, bad_env, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "environment PROCFLOW_COMPRESSION: compression: 'lz4' is not one "
				 "of: none, zstd");
	assert_int_equal(pf_cfg__set(&tab[1], &c, "x", "--max-file-size", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "--max-file-size: flowLogsFileMaxFileSizeMB: 'x' is not a whole "
				 "number from 1 to 1000");
}

/* Names a person would guess; messages that echo no file content and no
 * control byte. */
static void test_names_and_messages(void **state)
{
	static const struct pf_cfg_key kib = {
	    "ringBufferKiB",  PF_CFG_UINT, "16", 1, 99, NULL, 0, sizeof(unsigned), 0,
	    "ring-buffer-kib"};
	struct tcfg c;
	char name[128];

	assert_true(pf_cfg__env_name(&kib, name, sizeof(name)) > 0);
	assert_string_equal(name, "PROCFLOW_RING_BUFFER_KIB");

	/* -c /etc/shadow: the line is not a key; nothing of it is printed. */
	assert_int_equal(load(&c, NULL, "root:$y$j9T$s3cret:19000:0:99999:7:::\n"), -EINVAL);
	assert_null(strstr(err, "s3cret"));
	assert_null(strstr(err, "root"));
	assert_non_null(strstr(err, "t.yaml:1"));
	/* A misspelt key: named, with the closest one. */
	assert_int_equal(load(&c, NULL, "flowLogsFlushIntervl: 2s\n"), -EINVAL);
	assert_string_equal(err, "t.yaml:1: flowLogsFlushIntervl: unknown key (did you mean "
				 "flowLogsFlushInterval?)");
	/* A control byte in a value is shown escaped. */
	assert_int_equal(load(&c, NULL, "flowLogsFlushInterval: \"\\e[2J\"\n"), -EINVAL);
	assert_null(strchr(err, '\x1b'));
	assert_non_null(strstr(err, "\\x1b[2J"));

	assert_ptr_equal(pf_cfg__closest_env(tab, N, "PROCFLOW_FLOW_LOGS_FLUSH_INTERVL"), &tab[2]);
	assert_null(pf_cfg__closest_env(tab, N, "PROCFLOW_SOMETHING_ELSE_ENTIRELY"));
	assert_true(pf_cfg__is_name("flowLogsFileDirectory"));
	assert_false(pf_cfg__is_name("root:$y$"));
}

static void test_differs(void **state)
{
	struct tcfg a, b;

	load(&a, NULL, "");
	load(&b, NULL, "compression: zstd\n");
	assert_false(pf_cfg__differs(&tab[0], &a, &b));
	assert_true(pf_cfg__differs(&tab[5], &a, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_env_and_precedence),
	    cmocka_unit_test(test_differs),
	    cmocka_unit_test(test_names_and_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
