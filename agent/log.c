// SPDX-License-Identifier: BSD-2-Clause
/* The agent's log (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

bool pf_verbose;

/* The format attribute lets the compiler check vfprintf's use of @fmt
 * against pf_log's callers (-Wformat-nonliteral). */
static void vlog(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void vlog(const char *fmt, va_list ap)
{
	flockfile(stderr); /* one whole line, also with the ClickHouse sender logging */
	fputs("procflow: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

void pf_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void pf_debug(const char *fmt, ...)
{
	va_list ap;

	if (!pf_verbose)
		return;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}
