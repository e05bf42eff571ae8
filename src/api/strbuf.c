/*
 * strbuf.c
 *		Growable buffer and JSON string quoting.
 *
 * Every response body, log line and parameter document is assembled here,
 * so allocation failure is tracked in one flag instead of at each call.
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Start empty; nothing is allocated until the first append. */
void
sb_init(strbuf *sb)
{
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->oom = false;
}

/* Release the storage; the buffer may be reused after sb_init. */
void
sb_free(strbuf *sb)
{
	free(sb->data);
	sb_init(sb);
}

/* Empty the buffer but keep its storage for reuse. */
void
sb_reset(strbuf *sb)
{
	sb->len = 0;
	if (sb->data)
		sb->data[0] = '\0';
	sb->oom = false;
}

/* Hand the malloc'd text to the caller (never NULL unless out of memory). */
char *
sb_steal(strbuf *sb)
{
	char	   *d;

	if (sb->oom)
	{
		sb_free(sb);
		return NULL;
	}
	if (sb->data == NULL)
		d = calloc(1, 1);
	else
		d = sb->data;
	sb_init(sb);
	return d;
}

/* Make room for n more bytes plus the terminator. */
static bool
sb_reserve(strbuf *sb, size_t n)
{
	size_t		need;
	size_t		cap;
	char	   *p;

	if (sb->oom)
		return false;
	if (n > ((size_t) -1) / 2 - sb->len)
	{
		sb->oom = true;
		return false;
	}
	need = sb->len + n + 1;
	if (need <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(sb->data, cap);
	if (p == NULL)
	{
		sb->oom = true;
		return false;
	}
	sb->data = p;
	sb->cap = cap;
	return true;
}

/* Append n bytes verbatim. */
void
sb_putn(strbuf *sb, const char *s, size_t n)
{
	if (!sb_reserve(sb, n))
		return;
	if (n > 0)
		memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

/* Append a C string. */
void
sb_puts(strbuf *sb, const char *s)
{
	sb_putn(sb, s, strlen(s));
}

/* Append one byte. */
void
sb_putc(strbuf *sb, char c)
{
	sb_putn(sb, &c, 1);
}

/* Append formatted text (used for numbers and log lines). */
void
sb_printf(strbuf *sb, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(sb, (size_t) n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t) n;
}

/*
 * Append s as a quoted JSON string.  The input is expected to be valid
 * UTF-8 (callers validate first); bytes are copied as they are except for
 * the characters JSON requires to be escaped.
 */
void
sb_json_string(strbuf *sb, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t		i;
	size_t		run = 0;

	sb_putc(sb, '"');
	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];
		char		esc[7];
		const char *e = NULL;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_putn(sb, s + run, i - run);
		run = i + 1;
		switch (c)
		{
			case '"':
				e = "\\\"";
				break;
			case '\\':
				e = "\\\\";
				break;
			case '\n':
				e = "\\n";
				break;
			case '\r':
				e = "\\r";
				break;
			case '\t':
				e = "\\t";
				break;
			case '\b':
				e = "\\b";
				break;
			case '\f':
				e = "\\f";
				break;
			default:
				esc[0] = '\\';
				esc[1] = 'u';
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				esc[6] = '\0';
				e = esc;
				break;
		}
		sb_puts(sb, e);
	}
	sb_putn(sb, s + run, n - run);
	sb_putc(sb, '"');
}
