// SPDX-License-Identifier: BSD-2-Clause
/*
 * Root's files in directories (lib/safefs.h), and the files the agent
 * writes through it: flows.log, the rotation's flows.log.1.zst.tmp, the
 * spool's temporary batch. A user who can plant a symbolic link at one of
 * these names must not get root to write, truncate or chmod its target: a
 * root-owned 0600 "victim" file stays as it was (content, mode, size).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* cmocka needs the headers above */
#include <cmocka.h>

#include "logfile.h"
#include "safefs.h"
#include "spool.h"

static char tmp[64], victim[128];
#define SECRET "root:secret-hash:19000::::::\n"

static int setup(void **state)
{
	int fd;

	snprintf(tmp, sizeof(tmp), "/tmp/pf-safefs-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	/* Stands for /etc/shadow: outside every directory written below. */
	snprintf(victim, sizeof(victim), "%s/victim", tmp);
	fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, SECRET, strlen(SECRET)) != (ssize_t)strlen(SECRET))
		return -1;
	return close(fd);
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static void assert_victim_unchanged(void)
{
	char buf[128];
	struct stat st;
	ssize_t n;
	int fd;

	assert_int_equal(lstat(victim, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, strlen(SECRET));
	assert_int_equal(st.st_uid, 0);
	fd = open(victim, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, strlen(SECRET));
	assert_memory_equal(buf, SECRET, strlen(SECRET));
}

static void subdir(char *buf, size_t sz, const char *name, unsigned mode)
{
	snprintf(buf, sz, "%s/%s", tmp, name);
	assert_int_equal(mkdir(buf, mode), 0);
	assert_int_equal(chmod(buf, mode), 0);
}

static void test_dir_checks(void **state)
{
	char dir[128], link[128], why[256];
	struct stat st;
	bool created;
	int fd;

	/* Created: the mode asked for, whatever the umask. */
	umask(077);
	snprintf(dir, sizeof(dir), "%s/new", tmp);
	fd = pf_safefs__open_dir(dir, 0750, PF_SAFEFS_NO_GROUP, &created);
	assert_true(fd >= 0);
	assert_true(created);
	close(fd);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_null(pf_safefs__why(dir, why, sizeof(why)));
	umask(022);

	/* Writable by others (even with the sticky bit, as /tmp). */
	subdir(dir, sizeof(dir), "open", 01777);
	assert_int_equal(pf_safefs__open_dir(dir, 0750, PF_SAFEFS_NO_GROUP, NULL), -EPERM);
	assert_non_null(strstr(pf_safefs__why(dir, why, sizeof(why)),
			       "writable by group or others (mode 1777)"));
	/* Writable by group. */
	subdir(dir, sizeof(dir), "grp", 0770);
	assert_int_equal(pf_safefs__open_dir(dir, 0750, PF_SAFEFS_NO_GROUP, NULL), -EPERM);
	/* Another user's. */
	subdir(dir, sizeof(dir), "user", 0755);
	assert_int_equal(chown(dir, 65534, 65534), 0);
	assert_int_equal(pf_safefs__open_dir(dir, 0750, PF_SAFEFS_NO_GROUP, NULL), -EPERM);
	assert_non_null(strstr(pf_safefs__why(dir, why, sizeof(why)), "owned by uid 65534"));
	/* A link to a good directory: refused, the link is not followed. */
	snprintf(link, sizeof(link), "%s/link", tmp);
	snprintf(dir, sizeof(dir), "%s/new", tmp);
	assert_int_equal(symlink(dir, link), 0);
	assert_int_equal(pf_safefs__open_dir(link, 0750, PF_SAFEFS_NO_GROUP, NULL), -ELOOP);
	assert_non_null(strstr(pf_safefs__why(link, why, sizeof(why)), "symbolic link"));
	/* Not a directory. */
	assert_int_equal(pf_safefs__open_dir(victim, 0750, PF_SAFEFS_NO_GROUP, NULL), -ENOTDIR);
	assert_victim_unchanged();
}

static void test_file_never_through_a_link(void **state)
{
	char dir[128], path[160];
	struct stat st;
	int fd;

	subdir(dir, sizeof(dir), "files", 0750);
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(symlink(victim, path), 0);
	assert_int_equal(pf_safefs__open_file(path, O_WRONLY | O_APPEND, 0644, PF_SAFEFS_NO_GROUP),
			 -ELOOP);
	/* A temporary name: the link is removed and a file made in its place. */
	fd = pf_safefs__create_tmp(path, 0640, PF_SAFEFS_NO_GROUP);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_victim_unchanged();

	/* An existing file keeps its mode: only what was created is chmod'ed. */
	assert_int_equal(chmod(path, 0600), 0);
	fd = pf_safefs__open_file(path, O_WRONLY | O_APPEND, 0644, PF_SAFEFS_NO_GROUP);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* A FIFO is refused, without blocking the open. */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(pf_safefs__open_file(path, O_WRONLY | O_APPEND, 0644, PF_SAFEFS_NO_GROUP),
			 -EINVAL);
}

static void plant(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(symlink(victim, path), 0);
}

/* flows.log a link: the log file is refused. */
static void test_logfile_link(void **state)
{
	char dir[128];

	subdir(dir, sizeof(dir), "log1", 0750);
	plant(dir, "flows.log");
	errno = 0;
	assert_null(pf_logfile__open(dir));
	assert_int_equal(errno, ELOOP);
	assert_victim_unchanged();

	/* A directory others can write is refused before any file is opened. */
	subdir(dir, sizeof(dir), "log2", 0777);
	errno = 0;
	assert_null(pf_logfile__open(dir));
	assert_int_equal(errno, EPERM);
	assert_victim_unchanged();
}

/* flows.log.1.zst.tmp a link when the rotation compresses: the link goes,
 * the victim stays, the rotated file is compressed. */
static void test_rotation_tmp_link(void **state)
{
	struct pf_logfile_opts o = {.max_bytes = 64, .max_files = 3, .compress = true};
	char dir[128], path[200], line[64];
	struct pf_logfile *f;
	struct stat st;

	subdir(dir, sizeof(dir), "rot", 0750);
	plant(dir, "flows.log.1.zst.tmp");
	o.dir = dir;
	f = pf_logfile__open_opts(&o);
	assert_non_null(f);
	for (int i = 0; i < 4; i++) {
		int n = snprintf(line, sizeof(line), "{\"seq\":%d,\"pad\":\"xxxxxxxxxx\"}\n", i);

		assert_int_equal(pf_logfile__write(f, line, (size_t)n, 1), 0);
	}
	assert_true(pf_logfile__rotations(f) >= 1);
	pf_logfile__close(f);
	snprintf(path, sizeof(path), "%s/flows.log.1.zst", dir);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_size > 0);
	assert_victim_unchanged();
}

/* The spool's temporary batch name a link. */
static void test_spool_tmp_link(void **state)
{
	char dir[128];
	struct pf_spool *s;

	subdir(dir, sizeof(dir), "spool", 0750);
	plant(dir, ".tmp-00000000000000000001");
	s = pf_spool__open(dir, 1 << 20);
	assert_non_null(s);
	/* (The open sweeps .tmp- leftovers: plant again for the push.) */
	plant(dir, ".tmp-00000000000000000001");
	assert_int_equal(pf_spool__push(s, "row\n", 4, 1), 0);
	assert_int_equal(pf_spool__batches(s), 1);
	pf_spool__close(s);
	assert_victim_unchanged();

	/* A spool directory others can write is refused. */
	subdir(dir, sizeof(dir), "spool2", 0757);
	errno = 0;
	assert_null(pf_spool__open(dir, 1 << 20));
	assert_int_equal(errno, EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dir_checks),	   cmocka_unit_test(test_file_never_through_a_link),
	    cmocka_unit_test(test_logfile_link),   cmocka_unit_test(test_rotation_tmp_link),
	    cmocka_unit_test(test_spool_tmp_link),
	};

	if (geteuid() != 0) {
		/* chown() and a root-owned victim need root. */
		fprintf(stderr, "test_safefs needs root\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
