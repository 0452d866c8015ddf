// SPDX-License-Identifier: BSD-2-Clause
/*
 * The standard process_* metrics of the running agent, read from
 * /proc/self at each scrape (the names and meanings of the Prometheus
 * client libraries, so the usual dashboards work unchanged).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics.h"
#include "metrics_process.h"

/* Seconds since the epoch at which the system booted (/proc/stat btime). */
static double boot_time(void)
{
	char line[256];
	double bt = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "btime ", 6)) {
			bt = strtod(line + 6, NULL);
			break;
		}
	fclose(f);
	return bt;
}

static uint64_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint64_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n ? n - 1 : 0; /* not the one opendir() holds */
}

int pf_metrics_process__read(struct pf_metrics_process *p)
{
	char buf[1024], *s, *end;
	unsigned long long v[24] = {0};
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	ssize_t n;
	int fd, i;

	memset(p, 0, sizeof(*p));
	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* After the command name, which may hold spaces and parentheses:
	 * field 3 (state) onwards. */
	s = strrchr(buf, ')');
	if (!s || s[1] != ' ')
		return -1;
	s += 3; /* ") S" */
	for (i = 4; i <= 24 && *s; i++) {
		v[i - 1] = strtoull(s, &end, 10);
		if (end == s)
			break;
		s = end;
	}
	if (tck <= 0)
		tck = 100;
	/* utime 14, stime 15, starttime 22, vsize 23, rss 24 */
	p->cpu_seconds = (double)(v[13] + v[14]) / (double)tck;
	p->start_time_seconds = boot_time() + (double)v[21] / (double)tck;
	p->virtual_bytes = v[22];
	p->resident_bytes = v[23] * (unsigned long long)(page > 0 ? page : 4096);
	p->open_fds = count_fds();
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		p->max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
	return 0;
}
