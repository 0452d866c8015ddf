// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests for lib/redact.c: each kind of secret the built-in rules
 * promise to catch, what must survive around it, the rule grammar and its
 * errors, and the output bound.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "procfs.h"
#include "redact.h"

/* Redact @argv (NULL-terminated, argv[0] first) of @exe and return
 * argv[1..] joined by spaces, in a static buffer. */
static const char *red(const struct pf_redact *r, const char *exe, const char *const *argv)
{
	static char joined[8192];
	char raw[4096], out[8192];
	size_t len = 0, n;
	int trunc = 0;

	for (size_t i = 0; argv[i]; i++) {
		size_t l = strlen(argv[i]);

		assert_true(len + l + 1 < sizeof(raw));
		memcpy(raw + len, argv[i], l + 1);
		len += l + 1;
	}
	n = pf_redact__args(r, exe, raw, len, out, sizeof(out), &trunc, NULL);
	assert_int_equal(trunc, 0);
	pf_procfs__join_args(out, n, 1000, joined, sizeof(joined), &trunc);
	return joined;
}

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static struct pf_redact *builtin(void)
{
	struct pf_redact *r = pf_redact__new(1, NULL);

	assert_non_null(r);
	return r;
}

static void test_options(void **state)
{
	struct pf_redact *r = builtin();

	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password=hunter2", "-v")),
			    "--password=[REDACTED] -v");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password", "hunter2", "-v")),
			    "--password [REDACTED] -v");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "-password", "hunter2")),
			    "-password [REDACTED]");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--token", "abc", "--secret=s3", "host")),
			    "--token [REDACTED] --secret=[REDACTED] host");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--api-key=AK1", "--api_key", "AK2")),
			    "--api-key=[REDACTED] --api_key [REDACTED]");
	/* A name ending in -password is a password too. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--db-password=pw", "--DB_PASSWORD", "pw")),
			    "--db-password=[REDACTED] --DB_PASSWORD [REDACTED]");
	/* ... but not one that merely contains the word. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--passwordless", "yes")),
			    "--passwordless yes");
	/* The next long option is not taken for the value. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password", "--verbose")),
			    "--password --verbose");
	/* Last argument: nothing follows. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password")), "--password");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password=")), "--password=");
	pf_redact__free(r);
}

static void test_short(void **state)
{
	struct pf_redact *r = builtin();

	assert_string_equal(red(r, "/usr/bin/mysql", ARGV("mysql", "-uroot", "-pS3cret", "db")),
			    "-uroot -p[REDACTED] db");
	/* argv[0] names the program when the path does not. */
	assert_string_equal(red(r, "/usr/bin/mariadb", ARGV("mysqldump", "-pS3cret")),
			    "-p[REDACTED]");
	assert_string_equal(red(r, NULL, ARGV("/opt/bin/mysql", "-pS3cret")), "-p[REDACTED]");
	/* -p alone prompts; the next argument is the database. */
	assert_string_equal(red(r, "/usr/bin/mysql", ARGV("mysql", "-p", "db")), "-p db");
	/* Other programs' -p is not a password. */
	assert_string_equal(red(r, "/usr/bin/ssh", ARGV("ssh", "-p2222", "host")), "-p2222 host");
	pf_redact__free(r);
}

static void test_url_env_token(void **state)
{
	struct pf_redact *r = builtin();

	assert_string_equal(red(r, "/bin/x", ARGV("x", "https://bob:pa55@example.com/a?b=c")),
			    "https://bob:[REDACTED]@example.com/a?b=c");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "url=postgres://u:p@h:5432/db,x://y@z")),
			    "url=postgres://u:[REDACTED]@h:5432/db,x://y@z");
	/* No password, no change; a port is not a password. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "http://bob@h:80/", "http://h:80/")),
			    "http://bob@h:80/ http://h:80/");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "DB_PASSWORD=pw1", "MY_SECRET_X=2", "A=b")),
			    "DB_PASSWORD=[REDACTED] MY_SECRET_X=[REDACTED] A=b");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "-e", "GITHUB_TOKEN=t", "--env=API_KEY=k")),
			    "-e GITHUB_TOKEN=[REDACTED] --env=API_KEY=[REDACTED]");
	assert_string_equal(
	    red(r, "/bin/x", ARGV("x", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "tail")),
	    "[REDACTED] tail");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "-H", "Authorization: Bearer abc.def")),
			    "-H Authorization: Bearer [REDACTED]");
	/* What must survive: paths, hex digests (one case), UUIDs, plain words. */
	assert_string_equal(
	    red(r, "/bin/x",
		ARGV("x", "/usr/lib/x86_64-linux-gnu/LibFoo2Bar/something.so",
		     "0123456789abcdef0123456789abcdef01234567",
		     "123e4567-e89b-12d3-a456-426614174000", "hello")),
	    "/usr/lib/x86_64-linux-gnu/LibFoo2Bar/something.so "
	    "0123456789abcdef0123456789abcdef01234567 123e4567-e89b-12d3-a456-426614174000 "
	    "hello");
	pf_redact__free(r);
}

static void test_rules(void **state)
{
	struct pf_redact *r = builtin();
	size_t n = pf_redact__count(r);
	char err[512];

	assert_true(n > 20);
	/* remove, add, comments */
	{
		static const char file[] = "# mine\n\nremove option token\noption pin\n";

		assert_int_equal(pf_redact__load(r, file, sizeof(file) - 1, err, sizeof(err)), 0);
	}
	assert_int_equal(pf_redact__count(r), n);
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--token", "t", "--pin=1234")),
			    "--token t --pin=[REDACTED]");
	/* errors name the line and the rule */
	assert_int_equal(pf_redact__load(r, "option a\nfrobnicate x\n", 22, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "frobnicate x"));
	assert_int_equal(pf_redact__rule(r, "option --x", 10, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "option", 6, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "token 3", 7, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "token 99999999999999999999", 26, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(pf_redact__rule(r, "short p mysql", 13, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "short -p /bin/mysql", 19, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "short -p a,,b", 13, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "url-password x", 14, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "remove option nosuch", 20, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no such rule"));
	/* clear: nothing is redacted */
	assert_int_equal(pf_redact__rule(r, "clear", 5, err, sizeof(err)), 0);
	assert_int_equal(pf_redact__count(r), 0);
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password=p")), "--password=p");
	pf_redact__free(r);

	/* Empty set from the start; the replacement text is configurable. */
	r = pf_redact__new(0, "<hidden>");
	assert_non_null(r);
	assert_int_equal(pf_redact__count(r), 0);
	assert_int_equal(pf_redact__rule(r, "env PIN", 7, err, sizeof(err)), 0);
	assert_string_equal(red(r, "/bin/x", ARGV("x", "MY_PIN=1", "--password=p")),
			    "MY_PIN=<hidden> --password=p");
	pf_redact__free(r);

	errno = 0;
	assert_null(pf_redact__new(1, ""));
	assert_int_equal(errno, EINVAL);
	assert_null(pf_redact__new(1, "a\nb"));
	pf_redact__free(NULL);
}

/* A full rule table: the 257th is refused. */
static void test_rule_cap(void **state)
{
	struct pf_redact *r = pf_redact__new(0, NULL);
	char line[64], err[256];

	for (int i = 0; i < PF_REDACT_MAX_RULES; i++) {
		int n = snprintf(line, sizeof(line), "option w%d", i);

		assert_int_equal(pf_redact__rule(r, line, (size_t)n, err, sizeof(err)), 0);
	}
	assert_int_equal(pf_redact__rule(r, "option last", 11, err, sizeof(err)), -ENOSPC);
	pf_redact__free(r);
}

/* The output bound: a cut output holds no secret byte and is flagged. */
static void test_bound(void **state)
{
	struct pf_redact *r = builtin();
	static const char raw[] = "x\0--password=topsecretvalue\0tail";
	char out[24];
	int trunc = 0;
	size_t n;

	for (size_t sz = 0; sz <= sizeof(out); sz++) {
		trunc = 0;
		n = pf_redact__args(r, NULL, raw, sizeof(raw) - 1, out, sz, &trunc, NULL);
		assert_true(n <= sz);
		assert_null(memmem(out, n, "topsecret", 9));
		if (n >= 4)
			assert_null(memmem(out, n, "tops", 4));
	}
	/* Non-UTF-8 and control bytes pass through (the JSON writer escapes). */
	{
		static const char odd[] = "x\0\xff\xfe\x01\n\0--password=\xff";
		char o[64];
		unsigned cnt = 0;

		n = pf_redact__args(r, NULL, odd, sizeof(odd) - 1, o, sizeof(o), &trunc, &cnt);
		assert_int_equal(cnt, 1);
		assert_memory_equal(o, "x\0\xff\xfe\x01\n\0--password=[REDACTED]", n);
	}
	pf_redact__free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_options),	  cmocka_unit_test(test_short),
	    cmocka_unit_test(test_url_env_token), cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_rule_cap),	  cmocka_unit_test(test_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
