// SPDX-License-Identifier: BSD-2-Clause
/*
 * Safe creation of root's files in directories (see safefs.h).
 */
#include "safefs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static bool owner_ok(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

int pf_safefs__check_dir(int dirfd)
{
	struct stat st;

	if (fstat(dirfd, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!owner_ok(st.st_uid) || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return -EPERM;
	return 0;
}

/* The mode and group of something just created by us (a regular file or
 * a directory): the configured ones whatever the umask says. */
static int apply(int fd, unsigned mode, gid_t group)
{
	if (group != PF_SAFEFS_NO_GROUP && fchown(fd, (uid_t)-1, group))
		return -errno;
	if (fchmod(fd, (mode_t)mode))
		return -errno;
	return 0;
}

int pf_safefs__open_dir(const char *path, unsigned mode, gid_t group, bool *created)
{
	bool made = false;
	int fd, err;

	if (!mkdir(path, (mode_t)mode))
		made = true;
	else if (errno != EEXIST)
		return -errno;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		/* O_NOFOLLOW on a link to a directory says ENOTDIR on some
		 * kernels, ELOOP on others: say what it is. */
		if (err == -ENOTDIR || err == -ELOOP) {
			struct stat st;

			if (!lstat(path, &st) && S_ISLNK(st.st_mode))
				err = -ELOOP;
		}
		return err;
	}
	/* The check comes first: a group or mode is applied only to a
	 * directory that is ours. */
	err = pf_safefs__check_dir(fd);
	if (!err && (made || group != PF_SAFEFS_NO_GROUP))
		err = apply(fd, mode, group);
	if (!err && made)
		err = pf_safefs__check_dir(fd); /* a mode that itself is unsafe */
	if (err) {
		close(fd);
		return err;
	}
	if (created)
		*created = made;
	return fd;
}

const char *pf_safefs__why(const char *path, char *buf, size_t sz)
{
	struct stat st;

	if (!lstat(path, &st) && S_ISDIR(st.st_mode) && owner_ok(st.st_uid) &&
	    !(st.st_mode & (S_IWGRP | S_IWOTH)))
		return NULL;
	if (lstat(path, &st))
		snprintf(buf, sz, "cannot be looked at: %m");
	else if (S_ISLNK(st.st_mode))
		snprintf(buf, sz, "is a symbolic link (give the directory it points to)");
	else if (!S_ISDIR(st.st_mode))
		snprintf(buf, sz, "is not a directory");
	else if (!owner_ok(st.st_uid))
		snprintf(buf, sz,
			 "is owned by uid %u, not root: its owner could make the agent "
			 "write through a symbolic link",
			 (unsigned)st.st_uid);
	else
		snprintf(buf, sz,
			 "is writable by group or others (mode %04o): they could make the "
			 "agent write through a symbolic link",
			 (unsigned)(st.st_mode & 07777));
	return buf;
}

int pf_safefs__open_file(const char *path, int flags, unsigned mode, gid_t group)
{
	struct stat st;
	int fd, err;

	flags = (flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOFOLLOW | O_CLOEXEC;
	for (int tries = 0; tries < 4; tries++) {
		/* Created here: ours to give a mode. */
		fd = open(path, flags | O_CREAT | O_EXCL, (mode_t)mode);
		if (fd >= 0) {
			err = apply(fd, mode, group);
			if (err) {
				close(fd);
				return err;
			}
			return fd;
		}
		if (errno != EEXIST)
			return -errno;
		/* There already: open it as it is, if it is a plain file. */
		fd = open(path, flags | O_NONBLOCK);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* removed meanwhile: create it */
			/* ENXIO: a FIFO without a reader, a socket: no file. */
			return errno == ENXIO ? -EINVAL : -errno;
		}
		err = fstat(fd, &st) ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
		if (err) {
			close(fd);
			return err;
		}
		/* O_NONBLOCK only kept a FIFO from blocking the open. */
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
			err = -errno;
			close(fd);
			return err;
		}
		return fd;
	}
	return -EAGAIN;
}

int pf_safefs__create_tmp(const char *path, unsigned mode, gid_t group)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd, err;

	fd = open(path, flags, (mode_t)mode);
	if (fd < 0 && errno == EEXIST) {
		if (unlink(path) && errno != ENOENT)
			return -errno;
		fd = open(path, flags, (mode_t)mode);
	}
	if (fd < 0)
		return -errno;
	err = apply(fd, mode, group);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}
