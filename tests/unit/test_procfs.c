// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests for lib/procfs.c.
 *
 * The parsers are always handed a heap copy of exactly the bytes under test,
 * so that a read one byte past the length is caught by ASan in the sanitizer
 * build instead of silently finding a terminator or a ')' further on.
 *
 * pf_procfs__read() runs against a procfs tree built in a mkdtemp()
 * directory, where every value is known, and against the real /proc/self,
 * where the test knows its own pid, uid, name and arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "procfs.h"

/* Arguments main() re-executed itself with, so that /proc/self/cmdline has
 * arguments worth checking (ctest runs us without any). */
#define SELF_MARKER "--pf-self-test"
static const char *const self_args[] = {SELF_MARKER, "two words", "", "last"};
static int g_argc;
static char **g_argv;

/* ---- helpers -------------------------------------------------------- */

#define RAW(s) s, sizeof(s) - 1 /* a literal with its embedded NULs */

/* An exact-size heap copy of @len bytes (ASan red zone right after). */
static char *exact(const void *src, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, src, len);
	return p;
}

static int parse(const char *s, size_t len, struct pf_procfs_stat *st)
{
	char *buf = exact(s, len);
	int err = pf_procfs__parse_stat(buf, len, st);

	free(buf);
	return err;
}

/* join_args over an exact copy of @len bytes, into an exact @outsz buffer
 * copied to @res (which has room for outsz bytes). */
static size_t join(const void *raw, size_t len, unsigned max_argc, size_t outsz, char *res,
		   int *trunc)
{
	char *in = exact(raw, len);
	char *out = malloc(outsz ? outsz : 1);
	size_t n;

	assert_non_null(out);
	*trunc = 0;
	n = pf_procfs__join_args(in, len, max_argc, out, outsz, trunc);
	if (outsz) {
		assert_true(n < outsz);
		assert_int_equal(out[n], '\0');
		memcpy(res, out, n + 1);
	} else {
		assert_int_equal(n, 0);
	}
	free(in);
	free(out);
	return n;
}

/* A stat line as the kernel writes it, with @comm and @ppid / @start. The
 * fields between are typical values, some negative (tty_nr, tpgid, prio). */
static int stat_line(char *buf, size_t sz, unsigned pid, const char *comm, const char *ppid,
		     const char *start)
{
	return snprintf(
	    buf, sz,
	    "%u (%s) S %s 4242 4242 0 -1 4194560 1203 0 0 0 3 1 0 0 -2 0 1 0 %s "
	    "12935168 881 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n",
	    pid, comm, ppid, start);
}

static uint64_t ticks_ns(uint64_t ticks)
{
	long hz = sysconf(_SC_CLK_TCK);

	return ticks * (1000000000ULL / (uint64_t)hz);
}

/* ---- parse_stat ------------------------------------------------------- */

static void test_parse_stat_plain(void **state)
{
	struct pf_procfs_stat st;
	char line[512];
	int n = stat_line(line, sizeof(line), 4242, "bash", "1", "987654");

	assert_int_equal(parse(line, (size_t)n, &st), 0);
	assert_string_equal(st.comm, "bash");
	assert_int_equal(st.ppid, 1);
	assert_int_equal(st.start_ticks, 987654);
}

static void test_parse_stat_hostile_comm(void **state)
{
	struct pf_procfs_stat st;
	char line[512];
	int n;

	/* A task may call itself ") (" with spaces: only the last ')' ends it.
	 * A comm that stops early would read "S" from inside the name as the
	 * state and "(b" as the ppid and fail, or worse, succeed. */
	n = stat_line(line, sizeof(line), 7, "a) (b c) 9 9", "31", "555");
	assert_int_equal(parse(line, (size_t)n, &st), 0);
	assert_string_equal(st.comm, "a) (b c) 9 9");
	assert_int_equal(st.ppid, 31);
	assert_int_equal(st.start_ticks, 555);

	n = stat_line(line, sizeof(line), 7, "x)", "2", "3");
	assert_int_equal(parse(line, (size_t)n, &st), 0);
	assert_string_equal(st.comm, "x)");

	n = stat_line(line, sizeof(line), 7, "", "2", "3");
	assert_int_equal(parse(line, (size_t)n, &st), 0);
	assert_string_equal(st.comm, "");

	/* 15 characters is the kernel's maximum; more (only from a forged
	 * file) is cut to fit. */
	n = stat_line(line, sizeof(line), 7, "123456789012345", "2", "3");
	assert_int_equal(parse(line, (size_t)n, &st), 0);
	assert_string_equal(st.comm, "123456789012345");
	n = stat_line(line, sizeof(line), 7, "123456789012345678", "2", "3");
	assert_int_equal(parse(line, (size_t)n, &st), 0);
	assert_string_equal(st.comm, "123456789012345");
}

static void test_parse_stat_bounds(void **state)
{
	struct pf_procfs_stat st;
	const char *line = "10 (sh) S 20 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77";
	char buf[256];
	int n;

	/* Exactly 22 fields, no newline, nothing after. */
	assert_int_equal(parse(line, strlen(line), &st), 0);
	assert_string_equal(st.comm, "sh");
	assert_int_equal(st.ppid, 20);
	assert_int_equal(st.start_ticks, 77);

	/* Text past @len must not count: a ')' there would make the comm
	 * longer, digits there would change the start time. */
	n = snprintf(buf, sizeof(buf), "%s99 x) y", line);
	assert_int_equal(parse(buf, strlen(line), &st), 0);
	assert_string_equal(st.comm, "sh");
	assert_int_equal(st.start_ticks, 77);
	/* The whole buffer: its last ')' is then in the trailing text. */
	assert_int_equal(parse(buf, (size_t)n, &st), -EINVAL);

	/* Largest values. */
	n = stat_line(buf, sizeof(buf), 4294967295u, "c", "4294967295", "18446744073709551615");
	assert_int_equal(parse(buf, (size_t)n, &st), 0);
	assert_int_equal(st.ppid, UINT32_MAX);
	assert_true(st.start_ticks == UINT64_MAX);
}

static void test_parse_stat_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "abc",
	    "12",
	    "12 ",
	    "12 (",
	    "12 sh S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",
	    "12 (sh S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",
	    "12 (sh)",
	    "12 (sh) S",
	    "12 (sh) S 1",
	    "12 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0",	   /* 21 fields */
	    "12 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ",	   /* empty 22 */
	    "12 (sh)S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",   /* no space */
	    "12 (sh) S x 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",  /* ppid */
	    "12 (sh) S -1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77", /* ppid < 0 */
	    "12 (sh) S 4294967296 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",
	    "12 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -77", /* start < 0 */
	    "12 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7x7",
	    "12 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551616",
	    "12 (sh) S 1  1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77", /* two spaces */
	    "-12 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",
	    " 12 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",
	    "12  (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",
	    "4294967296 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",
	    "12 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0\n77", /* line ends */
	};
	struct pf_procfs_stat st;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&st, 0xa5, sizeof(st));
		if (parse(bad[i], strlen(bad[i]), &st) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
		/* Nothing is written on failure. */
		assert_int_equal(st.ppid, 0xa5a5a5a5);
	}
	/* An embedded NUL ends a field: it is not a space. */
	assert_int_equal(parse(RAW("12 (sh) S 1\0001 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77"), &st),
			 -EINVAL);
	assert_int_equal(pf_procfs__parse_stat(NULL, 0, &st), -EINVAL);
}

/* ---- join_args -------------------------------------------------------- */

static void test_join_no_args(void **state)
{
	char res[64];
	int tr;

	assert_int_equal(join(RAW(""), 8, sizeof(res), res, &tr), 0);
	assert_string_equal(res, "");
	assert_int_equal(tr, 0);
	assert_int_equal(join(RAW("/bin/true"), 8, sizeof(res), res, &tr), 0);
	assert_string_equal(res, "");
	assert_int_equal(tr, 0);
	assert_int_equal(join(RAW("/bin/true\0"), 8, sizeof(res), res, &tr), 0);
	assert_string_equal(res, "");
	assert_int_equal(tr, 0);
	/* setproctitle() style: one string with spaces is all argv[0]. */
	assert_int_equal(join(RAW("sshd: alice [priv]"), 8, sizeof(res), res, &tr), 0);
	assert_string_equal(res, "");
	assert_int_equal(pf_procfs__join_args(NULL, 0, 8, res, sizeof(res), &tr), 0);
	assert_string_equal(res, "");
}

static void test_join_basic(void **state)
{
	char res[64];
	int tr;

	assert_int_equal(join(RAW("curl\0-s\0http://x/a b\0"), 8, sizeof(res), res, &tr), 15);
	assert_string_equal(res, "-s http://x/a b");
	assert_int_equal(tr, 0);
	/* The final NUL is optional. */
	assert_int_equal(join(RAW("curl\0-s\0http://x"), 8, sizeof(res), res, &tr), 11);
	assert_string_equal(res, "-s http://x");
	assert_int_equal(tr, 0);
	/* Bytes are copied as they are: escaping is the JSON writer's job. */
	join(RAW("p\0a\tb\"\\\x01\xff\0"), 8, sizeof(res), res, &tr);
	assert_string_equal(res, "a\tb\"\\\x01\xff");
}

static void test_join_empty_args(void **state)
{
	char res[64];
	int tr;

	/* argv = {"p", "", "x", ""}: empty arguments still take their place,
	 * so the joined form keeps one separator each (strings.Join). */
	assert_int_equal(join(RAW("p\0\0x\0\0"), 8, sizeof(res), res, &tr), 3);
	assert_string_equal(res, " x ");
	assert_int_equal(tr, 0);
	/* argv = {"p", ""} */
	assert_int_equal(join(RAW("p\0\0"), 8, sizeof(res), res, &tr), 0);
	assert_string_equal(res, "");
	assert_int_equal(tr, 0);
	/* argv = {"", "a"}: an empty argv[0] */
	assert_int_equal(join(RAW("\0a\0"), 8, sizeof(res), res, &tr), 1);
	assert_string_equal(res, "a");
	/* argv = {"p", "", ""} */
	assert_int_equal(join(RAW("p\0\0\0"), 8, sizeof(res), res, &tr), 1);
	assert_string_equal(res, " ");
}

static void test_join_max_argc(void **state)
{
	char res[64];
	int tr;

	assert_int_equal(join(RAW("p\0a\0b\0c\0"), 3, sizeof(res), res, &tr), 5);
	assert_string_equal(res, "a b c");
	assert_int_equal(tr, 0);
	assert_int_equal(join(RAW("p\0a\0b\0c\0"), 2, sizeof(res), res, &tr), 3);
	assert_string_equal(res, "a b");
	assert_int_equal(tr, 1);
	assert_int_equal(join(RAW("p\0a\0b\0c"), 1, sizeof(res), res, &tr), 1);
	assert_string_equal(res, "a");
	assert_int_equal(tr, 1);
	assert_int_equal(join(RAW("p\0a\0"), 0, sizeof(res), res, &tr), 0);
	assert_string_equal(res, "");
	assert_int_equal(tr, 1);
	/* argv[0] does not count. */
	assert_int_equal(join(RAW("p\0"), 0, sizeof(res), res, &tr), 0);
	assert_int_equal(tr, 0);
}

static void test_join_small_output(void **state)
{
	const char raw[] = "p\0abc\0def\0";
	char res[16], canary = 'Z';
	int tr;

	/* "abc def" is 7 bytes: 8 fit exactly, nothing is left out. */
	assert_int_equal(join(raw, sizeof(raw) - 1, 8, 8, res, &tr), 7);
	assert_string_equal(res, "abc def");
	assert_int_equal(tr, 0);
	assert_int_equal(join(raw, sizeof(raw) - 1, 8, 7, res, &tr), 6);
	assert_string_equal(res, "abc de");
	assert_int_equal(tr, 1);
	/* The separator itself does not fit. */
	assert_int_equal(join(raw, sizeof(raw) - 1, 8, 4, res, &tr), 3);
	assert_string_equal(res, "abc");
	assert_int_equal(tr, 1);
	assert_int_equal(join(raw, sizeof(raw) - 1, 8, 3, res, &tr), 2);
	assert_string_equal(res, "ab");
	assert_int_equal(tr, 1);
	assert_int_equal(join(raw, sizeof(raw) - 1, 8, 1, res, &tr), 0);
	assert_string_equal(res, "");
	assert_int_equal(tr, 1);
	/* No room even for the NUL: nothing is written at all. */
	tr = 0;
	assert_int_equal(pf_procfs__join_args(raw, sizeof(raw) - 1, 8, &canary, 0, &tr), 0);
	assert_int_equal(canary, 'Z');
	assert_int_equal(tr, 1);
	tr = 0;
	assert_int_equal(pf_procfs__join_args(raw, sizeof(raw) - 1, 8, NULL, 0, &tr), 0);
	assert_int_equal(tr, 1);
}

static void test_join_keeps_truncated(void **state)
{
	char res[16];
	int tr = 1;

	/* A flag already set (the raw area was cut by its own bound) survives
	 * a join that left nothing out. A NULL flag is allowed. */
	pf_procfs__join_args(RAW("p\0a\0"), 8, res, sizeof(res), &tr);
	assert_int_equal(tr, 1);
	assert_int_equal(pf_procfs__join_args(RAW("p\0a\0b\0"), 1, res, sizeof(res), NULL), 1);
	assert_string_equal(res, "a");
}

static void test_join_64k(void **state)
{
	size_t len = 64 * 1024, pos, n;
	char *raw = malloc(len), *expect = malloc(len), *res = malloc(len);
	unsigned argc = 0;
	int tr;

	assert_non_null(raw);
	assert_non_null(expect);
	assert_non_null(res);

	/* "prog\0arg0\0arg1\0..." filling 64 KiB exactly, the last argument cut
	 * short by the end of the area (no final NUL), as a bounded read of a
	 * long cmdline leaves it. */
	memcpy(raw, "prog", 5);
	pos = 5;
	n = 0;
	while (pos < len) {
		char a[16];
		int w = snprintf(a, sizeof(a), "arg%u", argc);
		size_t k = (size_t)w + 1 > len - pos ? len - pos : (size_t)w + 1;

		memcpy(raw + pos, a, k);
		if (argc)
			expect[n++] = ' ';
		memcpy(expect + n, a, k < (size_t)w + 1 ? k : (size_t)w);
		n += k < (size_t)w + 1 ? k : (size_t)w;
		pos += k;
		argc++;
	}
	expect[n] = '\0';

	assert_int_equal(join(raw, len, UINT_MAX, len, res, &tr), n);
	assert_int_equal(tr, 0);
	assert_memory_equal(res, expect, n + 1);

	/* Bounded to 4 KiB of output: the first 4095 bytes, flagged. */
	assert_int_equal(join(raw, len, UINT_MAX, 4096, res, &tr), 4095);
	assert_int_equal(tr, 1);
	assert_memory_equal(res, expect, 4095);

	/* Bounded by count. */
	join(raw, len, 3, len, res, &tr);
	assert_string_equal(res, "arg0 arg1 arg2");
	assert_int_equal(tr, 1);

	/* One argument of 64 KiB - 2 bytes, no final NUL. */
	memset(raw, 'A', len);
	raw[1] = '\0';
	assert_int_equal(join(raw, len, 8, len, res, &tr), len - 2);
	assert_int_equal(tr, 0);
	assert_int_equal(strlen(res), len - 2);

	free(raw);
	free(expect);
	free(res);
}

/* ---- a fake procfs tree ----------------------------------------------- */

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	assert_true(snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path));
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static const char fake_cmdline[] = "/usr/bin/my prog\0--flag\0value with space\0";
static const char fake_status[] = "Name:\tmy (prog)\n"
				  "Umask:\t0022\n"
				  "State:\tS (sleeping)\n"
				  "Tgid:\t4242\n"
				  "Pid:\t4242\n"
				  "PPid:\t17\n"
				  "Uid:\t1000\t1001\t1002\t1003\n"
				  "Gid:\t100\t100\t100\t100\n";

/* <root>/<pid>/{stat,status,cmdline,exe} */
static void make_proc(const char *root, unsigned pid, const char *comm, const char *status,
		      const void *cmdline, size_t cmdline_len, const char *exe)
{
	char dir[PATH_MAX], line[512], link[PATH_MAX + 8];
	int n;

	snprintf(dir, sizeof(dir), "%s/%u", root, pid);
	assert_int_equal(mkdir(dir, 0755), 0);
	n = stat_line(line, sizeof(line), pid, comm, "17", "12345");
	write_file(dir, "stat", line, (size_t)n);
	if (status)
		write_file(dir, "status", status, strlen(status));
	if (cmdline)
		write_file(dir, "cmdline", cmdline, cmdline_len);
	if (exe) {
		snprintf(link, sizeof(link), "%s/exe", dir);
		assert_int_equal(symlink(exe, link), 0);
	}
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int fake_setup(void **state)
{
	char *root = strdup("/tmp/pf_procfs_XXXXXX");

	if (!root || !mkdtemp(root))
		return -1;
	*state = root;
	return 0;
}

static int fake_teardown(void **state)
{
	char *root = *state;

	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(root);
	return 0;
}

static void test_read_fake(void **state)
{
	const char *root = *state;
	struct pf_procfs_proc p;

	make_proc(root, 4242, "my (prog)", fake_status, fake_cmdline, sizeof(fake_cmdline) - 1,
		  "/usr/bin/my prog");

	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(pf_procfs__read(root, 4242, 4096, &p), 0);
	assert_int_equal(p.pid, 4242);
	assert_int_equal(p.ppid, 17);
	assert_int_equal(p.uid, 1000); /* the real uid, not the effective 1001 */
	assert_string_equal(p.comm, "my (prog)");
	assert_true(p.start_ns == ticks_ns(12345));
	assert_string_equal(p.exe, "/usr/bin/my prog");
	assert_int_equal(p.args_len, sizeof(fake_cmdline) - 1);
	assert_memory_equal(p.args, fake_cmdline, p.args_len);
	assert_int_equal(p.args_truncated, 0);
	free(p.args);

	/* A cmdline longer than the bound: cut at it, flagged. */
	assert_int_equal(pf_procfs__read(root, 4242, 20, &p), 0);
	assert_int_equal(p.args_len, 20);
	assert_memory_equal(p.args, fake_cmdline, 20);
	assert_int_equal(p.args_truncated, 1);
	free(p.args);

	/* Exactly at the bound is not truncated. */
	assert_int_equal(pf_procfs__read(root, 4242, sizeof(fake_cmdline) - 1, &p), 0);
	assert_int_equal(p.args_len, sizeof(fake_cmdline) - 1);
	assert_int_equal(p.args_truncated, 0);
	free(p.args);

	assert_int_equal(pf_procfs__read(root, 4242, 0, &p), 0);
	assert_null(p.args);
	assert_int_equal(p.args_len, 0);
	assert_int_equal(p.args_truncated, 0);
}

/* Only the start time: what the agent asks about a process it has not
 * heard from (its exit may have been lost). */
static void test_start_ns_fake(void **state)
{
	const char *root = *state;
	uint64_t start = 0;
	char dir[PATH_MAX];

	make_proc(root, 777, "d", fake_status, "", 0, NULL);
	assert_int_equal(pf_procfs__start_ns(root, 777, &start), 0);
	assert_true(start == ticks_ns(12345));
	assert_int_equal(pf_procfs__start_ns(root, 778, &start), -ENOENT);
	snprintf(dir, sizeof(dir), "%s/779", root);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_file(dir, "stat", "779 (x S 1", 10);
	assert_int_equal(pf_procfs__start_ns(root, 779, &start), -EINVAL);
}

static void test_read_fake_partial(void **state)
{
	const char *root = *state;
	struct pf_procfs_proc p;
	char dir[PATH_MAX];

	/* A kernel thread: no exe link, empty cmdline. Still an identity. */
	make_proc(root, 2, "kthreadd", fake_status, "", 0, NULL);
	assert_int_equal(pf_procfs__read(root, 2, 4096, &p), 0);
	assert_string_equal(p.comm, "kthreadd");
	assert_string_equal(p.exe, "");
	assert_null(p.args);
	assert_int_equal(p.args_len, 0);

	/* Gone. */
	assert_int_equal(pf_procfs__read(root, 99999, 4096, &p), -ENOENT);

	/* Gone half way: no status file. */
	make_proc(root, 3, "x", NULL, RAW("x\0"), "/x");
	assert_int_equal(pf_procfs__read(root, 3, 4096, &p), -ENOENT);
	assert_null(p.args);

	/* A status without a Uid line is not a status file. */
	make_proc(root, 4, "x", "Name:\tx\nPid:\t4\n", RAW("x\0"), "/x");
	assert_int_equal(pf_procfs__read(root, 4, 4096, &p), -EINVAL);
	make_proc(root, 5, "x", "Uid:\t-1\t0\t0\t0\n", RAW("x\0"), "/x");
	assert_int_equal(pf_procfs__read(root, 5, 4096, &p), -EINVAL);

	/* A malformed stat. */
	snprintf(dir, sizeof(dir), "%s/6", root);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_file(dir, "stat", "6 (x S 1", 8);
	write_file(dir, "status", fake_status, strlen(fake_status));
	assert_int_equal(pf_procfs__read(root, 6, 4096, &p), -EINVAL);
}

struct pids {
	uint32_t v[16];
	int n;
	int stop_at;
};

static int collect(uint32_t pid, void *ctx)
{
	struct pids *ps = ctx;

	if (ps->n < 16)
		ps->v[ps->n++] = pid;
	return ps->n == ps->stop_at ? 42 : 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void test_for_each_pid(void **state)
{
	const char *root = *state;
	static const char *const not_pids[] = {"self", "net", "12a",	   "-5",
					       "+7",   " 8",  "4294967296"};
	struct pids ps = {.stop_at = -1};
	char path[PATH_MAX];
	size_t i;

	make_proc(root, 1, "init", fake_status, RAW("init\0"), "/sbin/init");
	make_proc(root, 4242, "x", fake_status, RAW("x\0"), "/x");
	make_proc(root, 4294967295u, "x", fake_status, RAW("x\0"), "/x");
	for (i = 0; i < sizeof(not_pids) / sizeof(not_pids[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root, not_pids[i]);
		assert_int_equal(mkdir(path, 0755), 0);
	}

	assert_int_equal(pf_procfs__for_each_pid(root, collect, &ps), 0);
	assert_int_equal(ps.n, 3);
	qsort(ps.v, (size_t)ps.n, sizeof(ps.v[0]), cmp_u32);
	assert_int_equal(ps.v[0], 1);
	assert_int_equal(ps.v[1], 4242);
	assert_int_equal(ps.v[2], 4294967295u);

	/* The callback's non-zero value stops the walk and is returned. */
	memset(&ps, 0, sizeof(ps));
	ps.stop_at = 2;
	assert_int_equal(pf_procfs__for_each_pid(root, collect, &ps), 42);
	assert_int_equal(ps.n, 2);

	snprintf(path, sizeof(path), "%s/missing", root);
	assert_int_equal(pf_procfs__for_each_pid(path, collect, &ps), -ENOENT);
}

/* ---- the real /proc --------------------------------------------------- */

static void test_read_self(void **state)
{
	struct pf_procfs_proc p;
	char joined[4096], expect[4096] = "", comm[16];
	struct timespec now;
	size_t elen = 0;
	int tr = 0, i;
	uint64_t now_ns;

	assert_int_equal(pf_procfs__read("/proc", (uint32_t)getpid(), 65536, &p), 0);
	assert_int_equal(p.pid, (uint32_t)getpid());
	assert_int_equal(p.ppid, (uint32_t)getppid());
	assert_int_equal(p.uid, (uint32_t)getuid());

	/* The task name as the kernel gives it to the task itself; the
	 * kernel names a task after the basename of the file it ran. */
	assert_int_equal(prctl(PR_GET_NAME, comm, 0, 0, 0), 0);
	assert_string_equal(p.comm, comm);
	assert_string_equal(p.comm, "test_procfs");
	assert_int_equal(p.exe[0], '/');
	assert_string_equal(strrchr(p.exe, '/'), "/test_procfs");

	/* Start time is since boot, in the past, and not zero. */
	assert_int_equal(clock_gettime(CLOCK_BOOTTIME, &now), 0);
	now_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	assert_true(p.start_ns > 0);
	assert_true(p.start_ns <= now_ns);

	/* The arguments are the ones main() was started with. */
	assert_non_null(p.args);
	assert_int_equal(p.args_truncated, 0);
	assert_memory_equal(p.args, g_argv[0], strlen(g_argv[0]) + 1);
	for (i = 1; i < g_argc; i++) {
		elen += (size_t)snprintf(expect + elen, sizeof(expect) - elen, "%s%s",
					 i > 1 ? " " : "", g_argv[i]);
	}
	pf_procfs__join_args(p.args, p.args_len, 64, joined, sizeof(joined), &tr);
	assert_string_equal(joined, expect);
	assert_int_equal(tr, 0);
	if (g_argc > 1 && strcmp(g_argv[1], SELF_MARKER) == 0)
		assert_string_equal(joined, SELF_MARKER " two words  last");
	free(p.args);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_stat_plain),
	    cmocka_unit_test(test_parse_stat_hostile_comm),
	    cmocka_unit_test(test_parse_stat_bounds),
	    cmocka_unit_test(test_parse_stat_malformed),
	    cmocka_unit_test(test_join_no_args),
	    cmocka_unit_test(test_join_basic),
	    cmocka_unit_test(test_join_empty_args),
	    cmocka_unit_test(test_join_max_argc),
	    cmocka_unit_test(test_join_small_output),
	    cmocka_unit_test(test_join_keeps_truncated),
	    cmocka_unit_test(test_join_64k),
	    cmocka_unit_test_setup_teardown(test_read_fake, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(test_read_fake_partial, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(test_start_ns_fake, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(test_for_each_pid, fake_setup, fake_teardown),
	    cmocka_unit_test(test_read_self),
	};

	/* Run again with known arguments (one with a space, one empty) so that
	 * test_read_self has more than argv[0] to compare. */
	if (argc == 1) {
		char *args[] = {argv[0],
				(char *)self_args[0],
				(char *)self_args[1],
				(char *)self_args[2],
				(char *)self_args[3],
				NULL};
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		/* The resolved path, not /proc/self/exe itself: the kernel
		 * would name the task "exe". */
		if (n > 0) {
			exe[n] = '\0';
			execv(exe, args);
		}
		/* If that failed, go on with the arguments we have. */
	}
	g_argc = argc;
	g_argv = argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
