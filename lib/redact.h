/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Redaction of secrets in command-line arguments.
 *
 * Flow logs travel to shared stores; command lines carry passwords and
 * tokens. The agent redacts the argument vector of every process once,
 * when it learns it (exec event or /proc scan) and before it enters the
 * process cache, so no later stage (aggregation, JSON, the file, stdout)
 * ever holds the secret.
 *
 * A rule set is a list of rules, each one line of text (the same grammar
 * for the built-in set and a rule file):
 *
 *   option NAME        the value of --NAME=V, -NAME=V, --NAME V, -NAME V, and of
 *                      options whose name ends in -NAME or _NAME (--db-password);
 *                      the separate-argument form redacts the next argument
 *                      unless it starts with "--"
 *   short OPT PROGS    V in OPTV (e.g. -pV) for the programs PROGS, as mysql's
 *                      -pPASSWORD (-p alone prompts: the next argument is kept)
 *   arg OPT PROGS      V in OPT V, OPT=V and, for a one-letter OPT, OPTV, for
 *                      PROGS (redis-cli -a V, sshpass -pV)
 *   userpass OPT PROGS as arg, but only PASS of a USER:PASS value (curl -u)
 *   passarg OPT PROGS  as arg, but only V of a pass:V value (openssl -passin;
 *                      env:, file:, fd: and stdin name where the secret is)
 *   header NAME [scheme]  VALUE in "NAME: VALUE" (case-insensitive) where NAME
 *                      starts a word; with "scheme" the first word of VALUE
 *                      (Basic, Bearer) is kept
 *   url-password       PASSWORD in scheme://USER:PASSWORD@host
 *   env WORD           V in KEY=V when KEY holds WORD ending a word of KEY
 *                      (DB_PASSWORD, PGPASSWORD; not max_tokens) and KEY does
 *                      not end in FILE, PATH or DIR: as a whole argument, after
 *                      an option's '=' (-e=KEY=V), and inside an argument after
 *                      a space, '?', '&', ';' or ',' (query strings, conninfo),
 *                      where V ends at the next of those
 *   token MINLEN       runs of token characters ([A-Za-z0-9+/=_.-], split at the
 *                      '=' of KEY=V) at least MINLEN long that mix digits,
 *                      upper- and lower-case letters, do not start like a path
 *                      ('/', './', '~/') and look random (see looks_random());
 *                      and the word after "Bearer " whatever its length
 *   shell PROGS        the argument after -c (alone or in a cluster: -lc) of
 *                      PROGS is a shell command line: it is cut into words as
 *                      the shell would and each command in it read like an
 *                      argument vector of its own
 *   wrapper PROGS      PROGS run their first operand as a program (sudo, env):
 *                      the program rules of that program apply after it
 *   remove RULE        take out a rule added before (e.g. a built-in one)
 *   clear              take out every rule added before
 *
 * PROGS is a comma-separated list of base names; an entry "prog:sub" (docker:
 * login) applies only once the argument "sub" was seen after prog. Program
 * rules apply to the arguments after argv[0] or after any later argument that
 * names a program some rule lists (sudo -u app mysql -pX), until the next
 * program; in shell code a command starts at each ; & | ( ) or newline.
 *
 * Blank lines and lines starting with '#' are ignored. Option names, env
 * words and header names compare case-insensitively, with '-' and '_' equal;
 * the OPT of a program rule compares exactly (-p is not -P). What is redacted is replaced
 * by the replacement text (PF_REDACT_REPLACEMENT by default); the rest of
 * the argument and the other arguments are kept as they are.
 *
 * Pure logic: no I/O, no global state.
 */
#ifndef PF_REDACT_H
#define PF_REDACT_H

#include <stddef.h>

#define PF_REDACT_REPLACEMENT	  "[REDACTED]"
#define PF_REDACT_MAX_RULES	  256
#define PF_REDACT_MAX_REPLACEMENT 64

struct pf_redact;

/* The built-in rule set, one rule per element, NULL-terminated. */
extern const char *const pf_redact_builtin[];

/*
 * A rule set: the built-in rules when @builtin is non-zero, else empty.
 * @replacement NULL means PF_REDACT_REPLACEMENT; it must be 1 to
 * PF_REDACT_MAX_REPLACEMENT bytes without NUL or control bytes. Returns
 * NULL with errno set (EINVAL for a bad replacement, ENOMEM).
 */
struct pf_redact *pf_redact__new(int builtin, const char *replacement);
void pf_redact__free(struct pf_redact *r); /* accepts NULL */

/*
 * Apply one line of rule text (see the grammar above; @len bytes, no
 * newline needed). Returns 0 or -EINVAL / -ENOSPC / -ENOMEM; on error
 * @err (if not NULL) holds a message naming the rule and what is wrong,
 * and the rule set is unchanged.
 */
int pf_redact__rule(struct pf_redact *r, const char *line, size_t len, char *err, size_t errsz);

/*
 * Apply a whole rule file (@len bytes of text, lines separated by '\n').
 * Stops at the first bad line: returns its error with @err saying
 * "line N: ..." (the rules before it stay applied).
 */
int pf_redact__load(struct pf_redact *r, const char *text, size_t len, char *err, size_t errsz);

/* Number of rules in the set. */
size_t pf_redact__count(const struct pf_redact *r);

/*
 * Redact a raw argument area (NUL-separated argv, argv[0] included, final
 * NUL optional, as pf_procfs__join_args takes it) of the program @exe (its
 * path; NULL if unknown; the base names of @exe and of argv[0] are what
 * "short" rules compare). Writes the redacted area, in the same form, into
 * @out (@outsz bytes) and returns its length. argv[0] is copied as it is.
 * When the output does not fit it is cut and *@truncated set to 1 (a cut
 * never exposes a secret: only replacement text is written in place of
 * one). *@nredacted (if not NULL) receives the number of values replaced.
 * With an empty rule set the area is copied unchanged.
 */
size_t pf_redact__args(const struct pf_redact *r, const char *exe, const char *raw, size_t len,
		       char *out, size_t outsz, int *truncated, unsigned *nredacted);

#endif
