/*
 * strbuf.h
 *		A growable byte buffer, the one way panko-api builds text.
 */
#ifndef PANKO_API_STRBUF_H
#define PANKO_API_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf
{
	char	   *data;			/* always NUL-terminated when non-NULL */
	size_t		len;
	size_t		cap;
	bool		oom;			/* an allocation failed; contents unusable */
} strbuf;

extern void sb_init(strbuf *sb);
extern void sb_free(strbuf *sb);
extern void sb_reset(strbuf *sb);
extern char *sb_steal(strbuf *sb);
extern void sb_putn(strbuf *sb, const char *s, size_t n);
extern void sb_puts(strbuf *sb, const char *s);
extern void sb_putc(strbuf *sb, char c);
extern void sb_printf(strbuf *sb, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern void sb_json_string(strbuf *sb, const char *s, size_t n);

#endif
