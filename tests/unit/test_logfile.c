// SPDX-License-Identifier: BSD-2-Clause
/* The flow-log file: created with the right modes, appended whole. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "logfile.h"

static char tmp[64];

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_append),
		cmocka_unit_test(test_not_a_directory),
		cmocka_unit_test(test_full_leaves_no_partial_line),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
