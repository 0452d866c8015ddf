/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Files a root daemon creates in directories: never through a symbolic
 * link, never in a directory another user controls.
 *
 * A user who can write a directory root writes into can plant a symlink at
 * the name root is about to open (flows.log -> /etc/shadow) and make root
 * append to, truncate or chmod the target. So: a directory is accepted only
 * when it is owned by root (or by the agent's own user) and not writable by
 * group or others; every file is opened with O_NOFOLLOW; a file is chmod'ed
 * or chown'ed only when this very call created it (O_EXCL) and it is a
 * regular file; temporary files are created with O_EXCL, a stale name
 * (a crash's leftover, or a planted link) removed first.
 */
#ifndef PF_SAFEFS_H
#define PF_SAFEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PF_SAFEFS_NO_GROUP ((gid_t)-1)

/*
 * Whether an open directory may hold root's files: a directory owned by
 * root or by the effective user, not writable by group or others. Returns
 * 0, -ENOTDIR, or -EPERM (wrong owner or mode; pf_safefs__why() says which).
 */
int pf_safefs__check_dir(int dirfd);

/*
 * Open (create when missing, with @mode and, unless PF_SAFEFS_NO_GROUP,
 * group @group) the directory @path and check it (pf_safefs__check_dir).
 * The last component must not be a symbolic link (-ELOOP). An existing
 * directory keeps its mode unless @group is given: then it gets @group and
 * @mode. *@created (may be NULL) tells whether it was made here. Returns
 * the directory's descriptor (O_RDONLY | O_DIRECTORY | O_CLOEXEC) or a
 * negative errno.
 */
int pf_safefs__open_dir(const char *path, unsigned mode, gid_t group, bool *created);

/*
 * Why @path is refused as a directory (for the message after -EPERM,
 * -ELOOP or -ENOTDIR): "owned by uid 1000, not root", "writable by group
 * or others (mode 0777)", "a symbolic link", ... Writes into @buf and
 * returns it; NULL when @path is a directory that would be accepted.
 */
const char *pf_safefs__why(const char *path, char *buf, size_t sz);

/*
 * Open @path with @flags (O_WRONLY or O_RDWR, O_APPEND...), creating it
 * with @mode (and @group) when missing. Never follows a symbolic link at
 * @path (-ELOOP); an existing file must be a regular one (-EINVAL) and
 * keeps its mode and owner. Returns the descriptor (O_CLOEXEC) or a
 * negative errno.
 */
int pf_safefs__open_file(const char *path, int flags, unsigned mode, gid_t group);

/*
 * Create the temporary file @path (O_WRONLY, O_EXCL, O_NOFOLLOW) with @mode
 * (and @group). Whatever is at @path already (a leftover of a crash, a
 * planted link) is unlinked first: unlinking a link removes the link, never
 * its target. Returns the descriptor or a negative errno.
 */
int pf_safefs__create_tmp(const char *path, unsigned mode, gid_t group);

#endif
