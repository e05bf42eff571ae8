/*
 * log.c
 *		One line per request, written with a single write(2).
 *
 * The log is an O_APPEND descriptor shared by all worker threads; each
 * line is one write, so lines never interleave and no lock is needed.
 * SIGHUP reopens the file by dup2()ing a fresh descriptor onto the same
 * number, which is atomic for concurrent writers (logrotate-friendly).
 */
#include "postgres_fe.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "urlcodec.h"

static int	log_fd = STDERR_FILENO;
static const char *log_path = NULL;

/* Open path for appending (NULL keeps standard error). */
int
log_open(const char *path)
{
	int			fd;

	log_path = path;
	if (path == NULL)
		return 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	log_fd = fd;
	return 0;
}

/* Reopen the log file after rotation; standard error needs nothing. */
int
log_reopen(void)
{
	int			fd;

	if (log_path == NULL)
		return 0;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (dup2(fd, log_fd) < 0)
	{
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Current UTC time as 2024-01-02T03:04:05.123Z. */
static void
timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm	tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* Write one finished line, retrying short writes. */
static void
write_line(const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(log_fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t) n;
	}
}

/*
 * Log a request.  The path is the raw request path (no query string, which
 * may be long or sensitive) with unprintable bytes percent-escaped, so a
 * hostile URL cannot forge log lines.
 */
void
log_request(const char *method, const char *path, int status, double ms,
			const char *request_id)
{
	static const char hex[] = "0123456789ABCDEF";
	char		line[2560];
	char		ts[96];
	size_t		n;
	int			k;

	timestamp(ts, sizeof(ts));
	k = snprintf(line, sizeof(line), "%s %s ", ts, method ? method : "-");
	n = (k > 0 && (size_t) k < sizeof(line)) ? (size_t) k : 0;
	for (const unsigned char *p = (const unsigned char *) (path ? path : "-");
		 *p && n < 2048; p++)
	{
		if (*p <= ' ' || *p >= 0x7f || *p == '"')
		{
			line[n++] = '%';
			line[n++] = hex[*p >> 4];
			line[n++] = hex[*p & 15];
		}
		else
			line[n++] = (char) *p;
	}
	k = snprintf(line + n, sizeof(line) - n, " %d %.3fms %s\n",
				 status, ms, request_id ? request_id : "-");
	if (k > 0)
		n += ((size_t) k < sizeof(line) - n) ? (size_t) k : sizeof(line) - n - 1;
	write_line(line, n);
}

/* A server message (startup, shutdown, database errors). */
void
log_msg(const char *fmt,...)
{
	char		line[2048];
	char		ts[96];
	va_list		ap;
	int			k;
	size_t		n;

	timestamp(ts, sizeof(ts));
	k = snprintf(line, sizeof(line), "%s panko-api: ", ts);
	n = (k > 0) ? (size_t) k : 0;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += ((size_t) k < sizeof(line) - n - 1) ? (size_t) k : sizeof(line) - n - 2;
	/* a long message is cut between characters, not inside one */
	line[n] = '\0';
	utf8_clip(line);
	n = strlen(line);
	/* keep it to one line */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	write_line(line, n);
}
