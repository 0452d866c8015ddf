// SPDX-License-Identifier: BSD-2-Clause
/*
 * What redaction costs per exec event: the built-in rule set applied to
 * argument vectors shaped like real ones (short, typical, long, full of
 * secrets, at the 4 KiB default bound, a shell command string) and to two
 * chosen to be slow (4 KiB of short operands, each looked up as a program
 * name; one argument of 500 URLs with passwords). Prints figures; asserts nothing.
 *
 *   build/bench_redact [ITERATIONS]
 *
 * Each figure is the median of 5 runs of ITERATIONS redactions of one
 * vector, timed in CPU time of the process (CLOCK_PROCESS_CPUTIME_ID), so
 * that on a shared machine time spent waiting for a core is not counted and
 * a noisy neighbour moves the spread rather than the figure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redact.h"

struct vec {
	const char *name;
	char raw[8192];
	size_t len;
};

static void add(struct vec *v, const char *arg)
{
	size_t l = strlen(arg) + 1;

	if (v->len + l > sizeof(v->raw))
		return;
	memcpy(v->raw + v->len, arg, l);
	v->len += l;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static struct vec v[7];
	struct pf_redact *r = pf_redact__new(1, NULL);
	static char out[16384];
	long iters = 200000;
	char word[64];

	if (argc > 1) {
		char *end;

		iters = strtol(argv[1], &end, 10);
		if (*end || iters < 1)
			iters = 200000;
	}
	if (!r)
		return 1;
	v[0].name = "short (curl -s URL)";
	add(&v[0], "curl");
	add(&v[0], "-s");
	add(&v[0], "http://198.18.0.1:8080/index.html");
	v[1].name = "typical (12 args, 1 secret)";
	add(&v[1], "/usr/bin/python3");
	add(&v[1], "-m");
	add(&v[1], "app.server");
	add(&v[1], "--bind=0.0.0.0:8080");
	add(&v[1], "--workers");
	add(&v[1], "4");
	add(&v[1], "--log-level=info");
	add(&v[1], "--config");
	add(&v[1], "/etc/app/config.yaml");
	add(&v[1], "--db-password=hunter2");
	add(&v[1], "--timeout=30");
	add(&v[1], "--name=frontend-7f9c");
	v[2].name = "secrets (8 kinds)";
	add(&v[2], "mysql");
	add(&v[2], "-pS3cret");
	add(&v[2], "--password=a");
	add(&v[2], "--token");
	add(&v[2], "b");
	add(&v[2], "https://u:p@h/x");
	add(&v[2], "DB_PASSWORD=c");
	add(&v[2], "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
	add(&v[2], "Authorization: Bearer abc");
	v[3].name = "long (4 KiB, 400 args)";
	add(&v[3], "java");
	for (int i = 0; v[3].len < 4000; i++) {
		snprintf(word, sizeof(word), "-Dprop%d=value%d", i, i);
		add(&v[3], word);
	}

	v[4].name = "shell (sh -c, 6 commands)";
	add(&v[4], "sh");
	add(&v[4], "-c");
	add(&v[4],
	    "set -e; cd /srv/app && PGPASSWORD=hunter2 pg_dump -h db -U app app | "
	    "gzip > /backup/app.sql.gz; curl -sf -u ops:S3cret -H 'Content-Type: text/plain' "
	    "--data-binary @/backup/app.log https://198.18.0.1/upload || exit 1");
	v[5].name = "operands (4 KiB, 2000 args)";
	add(&v[5], "xargs");
	while (v[5].len < 4000)
		add(&v[5], "a");

	v[6].name = "URLs (4 KiB, 1 arg, 500 URLs)";
	add(&v[6], "x");
	for (size_t i = 0; i < 4000; i++) /* one argument: no NUL between the URLs */
		v[6].raw[v[6].len + i] = "x://y:z@"[i % 8];
	v[6].len += 4000;
	v[6].raw[v[6].len++] = '\0';

	printf("redaction cost per exec event, built-in rule set (%zu rules), %ld iterations x 5\n",
	       pf_redact__count(r), iters);
	printf("%-30s %8s %12s %12s\n", "argument vector", "bytes", "ns/event", "MB/s");
	for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
		double runs[5];
		volatile size_t sink = 0;

		for (int run = 0; run < 5; run++) {
			double t0 = now_ns();

			for (long i = 0; i < iters; i++) {
				int trunc = 0;

				sink += pf_redact__args(r, "/usr/bin/mysql", v[k].raw, v[k].len,
							out, sizeof(out), &trunc, NULL);
			}
			runs[run] = (now_ns() - t0) / (double)iters;
		}
		qsort(runs, 5, sizeof(runs[0]), cmp);
		printf("%-30s %8zu %12.0f %12.0f\n", v[k].name, v[k].len, runs[2],
		       (double)v[k].len / runs[2] * 1e3);
		(void)sink;
	}
	pf_redact__free(r);
	return 0;
}
