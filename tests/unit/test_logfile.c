// SPDX-License-Identifier: BSD-2-Clause
/* The flow-log file: created with the right modes, appended whole. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
/* cmocka needs the headers above */
#include <cmocka.h>

#include "logfile.h"

static char tmp[64];

/*
 * Fault injection: this test is linked with -Wl,--wrap=open,--wrap=openat
 * (CMakeLists.txt), so every open() and openat() of lib/logfile.c comes
 * here first. While fail_log_opens > 0, opening a file named flows.log
 * fails with EMFILE, as it does when the agent runs out of descriptors (or
 * the file system of inodes, or the user of quota).
 */
static int fail_log_opens;
int __real_open(const char *path, int flags, ...);
int __real_openat(int dirfd, const char *path, int flags, ...);

static bool fault(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (strcmp(base, "flows.log") || fail_log_opens <= 0)
		return false;
	fail_log_opens--;
	errno = EMFILE;
	return true;
}

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return fault(path) ? -1 : __real_open(path, flags, mode);
}

int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return fault(path) ? -1 : __real_openat(dirfd, path, flags, mode);
}

/* Lines {"seq":N,...} found in @dir's flows.log and flows.log.1..99, each
 * counted in seen[N]; returns the number of lines, -1 on a foreign one. */
static int count_seq(const char *dir, unsigned *seen, unsigned nseen)
{
	char path[200], line[512];
	int total = 0;

	for (int i = 0; i < 100; i++) {
		FILE *r;

		if (i)
			snprintf(path, sizeof(path), "%s/flows.log.%d", dir, i);
		else
			snprintf(path, sizeof(path), "%s/flows.log", dir);
		r = fopen(path, "r");
		if (!r)
			continue;
		while (fgets(line, sizeof(line), r)) {
			unsigned seq;

			if (sscanf(line, "{\"seq\":%u,", &seq) != 1 || seq >= nseen) {
				fclose(r);
				return -1;
			}
			seen[seq]++;
			total++;
		}
		fclose(r);
	}
	return total;
}

/* Write @n lines of about 100 bytes, one write each, seq from 0. */
static void write_seq(struct pf_logfile *f, unsigned from, unsigned n)
{
	char line[160];

	for (unsigned i = from; i < from + n; i++) {
		int len = snprintf(
		    line, sizeof(line), "{\"seq\":%u,\"pad\":\"%s\"}\n", i,
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");

		(void)pf_logfile__write(f, line, (size_t)len, 1);
	}
}

static int setup(void **state)
{
	snprintf(tmp, sizeof(tmp), "/tmp/pf-logfile-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_create_and_append(void **state)
{
	char dir[128], path[160], buf[256];
	struct pf_logfile *f;
	struct stat st;
	FILE *r;

	snprintf(dir, sizeof(dir), "%s/out", tmp);
	umask(022);
	f = pf_logfile__open(dir);
	assert_non_null(f);
	snprintf(path, sizeof(path), "%s/flows.log", dir);
	assert_string_equal(pf_logfile__path(f), path);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	assert_int_equal(pf_logfile__write(f, "{\"a\":1}\n{\"a\":2}\n", 16, 2), 0);
	pf_logfile__close(f);
	/* Re-opening appends. */
	f = pf_logfile__open(dir);
	assert_int_equal(pf_logfile__write(f, "{\"a\":3}\n", 8, 1), 0);
	assert_int_equal(pf_logfile__lost(f), 0);
	pf_logfile__close(f);

	r = fopen(path, "r");
	assert_non_null(r);
	assert_int_equal(fread(buf, 1, sizeof(buf), r), 24);
	fclose(r);
	assert_memory_equal(buf, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", 24);
	pf_logfile__close(NULL);
}

static void test_not_a_directory(void **state)
{
	char file[128];
	int fd;

	snprintf(file, sizeof(file), "%s/plain", tmp);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	errno = 0;
	assert_null(pf_logfile__open(file));
	assert_int_equal(errno, ENOTDIR);
}

/* A write that fails part way (here: at a file size limit, as on a full
 * disk) leaves no partial line and counts the lines as lost. */
static void test_full_leaves_no_partial_line(void **state)
{
	char dir[128], path[160];
	struct pf_logfile *f;
	struct stat st;
	char big[8192];
	pid_t pid;
	int status;

	snprintf(dir, sizeof(dir), "%s/full", tmp);
	f = pf_logfile__open(dir);
	assert_non_null(f);
	snprintf(path, sizeof(path), "%s/flows.log", dir);
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	pid = fork();
	if (pid == 0) {
		/* In a child: a file size limit makes write() stop part way. */
		struct rlimit rl = {4096 + 100, 4096 + 100};

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(3);
		if (pf_logfile__write(f, "{\"ok\":1}\n", 9, 1))
			_exit(4);
		int err = pf_logfile__write(f, big, sizeof(big), 1);

		_exit(err && pf_logfile__lost(f) == 1 ? 0 : 5);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 9); /* the first line, nothing of the second */
	pf_logfile__close(f);
}

/*
 * flows.log cannot be created again after a rotation (the open fails
 * @nfail times, e.g. out of descriptors): every line written is still on
 * disk exactly once, or counted as lost; and once the open works again the
 * lines go to a new flows.log, not on into the renamed file.
 */
static void rotate_with_failed_recreate(const char *name, int nfail)
{
	struct pf_logfile_opts o = {.max_bytes = 1000, .max_files = 50};
	unsigned seen[200] = {0};
	char dir[128], path[160];
	struct pf_logfile *f;
	struct stat st;
	uint64_t lost;
	int total;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
	o.dir = dir;
	f = pf_logfile__open_opts(&o);
	assert_non_null(f);
	write_seq(f, 0, 15); /* one rotation: flows.log.1 holds ~9 lines */
	assert_int_equal(pf_logfile__rotations(f), 1);
	fail_log_opens = nfail;
	write_seq(f, 15, 145); /* the next rotation's re-create fails */
	assert_int_equal(fail_log_opens, 0);
	lost = pf_logfile__lost(f);
	pf_logfile__close(f);

	total = count_seq(dir, seen, 200);
	assert_true(total >= 0);
	for (unsigned i = 0; i < 160; i++)
		assert_true(seen[i] <= 1); /* never twice */
	/* Every line is on disk, or was counted. */
	assert_int_equal((uint64_t)total + lost, 160);
	for (unsigned i = 0; i < 160; i++)
		if (!seen[i])
			lost--;
	assert_int_equal(lost, 0);
	/* And writing went on in a new flows.log, which rotated normally. */
	snprintf(path, sizeof(path), "%s/flows.log", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 0 && st.st_size <= 1000);
	snprintf(path, sizeof(path), "%s/flows.log.10", dir);
	assert_int_equal(stat(path, &st), 0);
}

static void test_recreate_fails_once(void **state)
{
	rotate_with_failed_recreate("recreate1", 1);
}

static void test_recreate_fails_for_a_while(void **state)
{
	rotate_with_failed_recreate("recreate5", 5);
}

/* Leave @content as @dir/flows.log, open it and write one more line: the
 * bytes repaired must be @want_cut and the file must then hold @want. */
static void reopen_partial(const char *name, const char *content, const char *want,
			   uint64_t want_cut)
{
	char dir[128], path[160], buf[256];
	struct pf_logfile *f;
	ssize_t n;
	int fd;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
	assert_int_equal(mkdir(dir, 0750), 0);
	snprintf(path, sizeof(path), "%s/flows.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);

	f = pf_logfile__open(dir);
	assert_non_null(f);
	assert_int_equal(pf_logfile__repaired(f), want_cut);
	assert_int_equal(pf_logfile__write(f, "{\"new\":1}\n", 10, 1), 0);
	pf_logfile__close(f);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

/* A writer killed in the middle of a line left a fragment: the next run
 * cuts it off rather than append its first line onto it. */
static void test_partial_last_line_repaired(void **state)
{
	reopen_partial("partial",
		       "{\"a\":1}\n{\"a\":2}\n{\"a\":", "{\"a\":1}\n{\"a\":2}\n{\"new\":1}\n", 5);
	/* Nothing but a fragment: the file is emptied. */
	reopen_partial("fragment", "{\"a\":12", "{\"new\":1}\n", 7);
	/* A whole file is left alone. */
	reopen_partial("whole", "{\"a\":1}\n", "{\"a\":1}\n{\"new\":1}\n", 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_and_append),
	    cmocka_unit_test(test_not_a_directory),
	    cmocka_unit_test(test_full_leaves_no_partial_line),
	    cmocka_unit_test(test_recreate_fails_once),
	    cmocka_unit_test(test_recreate_fails_for_a_while),
	    cmocka_unit_test(test_partial_last_line_repaired),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
