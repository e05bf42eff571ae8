/*
 * urlcodec.c
 *		Percent-decoding and UTF-8 validation.
 *
 * libmicrohttpd's own unescaping is lenient (it leaves a stray '%' alone),
 * so panko-api decodes the raw request target itself and refuses anything
 * it would otherwise have to guess about.  UTF-8 is checked by PostgreSQL's
 * own routines (libpgcommon); only the cutting of long text at character
 * boundaries is done here.
 */
#include "postgres_fe.h"

#include "mb/pg_wchar.h"

#include "urlcodec.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Value of one hex digit, or -1. */
static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Is s[0..n) well-formed UTF-8 (no overlongs, no surrogates, nothing above
 * U+10FFFF, no NUL)?  PostgreSQL's own check (libpgcommon), so that what
 * passes here is what the database accepts; checking before any SQL runs
 * turns bad bytes into a clear 400.
 */
bool
utf8_valid(const char *s, size_t n)
{
	if (n > (size_t) INT_MAX)
		return false;
	return pg_encoding_verifymbstr(PG_UTF8, s, (int) n) == (int) n;
}

/*
 * Replace every byte that is not part of a valid UTF-8 sequence with '?',
 * in place: messages that quote request data (possibly truncated in the
 * middle of a character) must still be valid JSON strings.
 */
void
utf8_sanitize(char *s)
{
	size_t		n = strlen(s);
	size_t		i = 0;

	while (i < n)
	{
		/* the length its first byte announces, if the character is legal */
		size_t		k = (size_t) pg_utf_mblen((const unsigned char *) s + i);

		if (i + k <= n && pg_utf8_islegal((const unsigned char *) s + i, (int) k))
			i += k;
		else
			s[i++] = '?';
	}
}

/* Is c a UTF-8 continuation byte (10xxxxxx)? */
static bool
utf8_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/*
 * The longest prefix of s[0..n), at most max bytes, that does not end in
 * the middle of a UTF-8 character: where to cut text that is too long.
 */
size_t
utf8_cut(const char *s, size_t n, size_t max)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		k = max;

	if (n <= max)
		return n;
	/* p[k] is the first byte left out; back up to the start of its character */
	for (int i = 0; i < 3 && k > 0 && utf8_cont(p[k]); i++)
		k--;
	return utf8_cont(p[k]) ? max : k;
}

/*
 * Drop an incomplete UTF-8 character at the end of s, in place: what a
 * byte-bounded snprintf leaves when it cuts valid text short.
 */
void
utf8_clip(char *s)
{
	size_t		n = strlen(s);
	size_t		start = n;
	unsigned char lead;
	size_t		len;

	for (int i = 0; i < 3 && start > 0 && utf8_cont((unsigned char) s[start - 1]); i++)
		start--;
	if (start == 0)
		return;
	lead = (unsigned char) s[start - 1];
	if (lead < 0xC0)
		return;					/* ASCII, or stray continuation bytes */
	len = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
	if (n - (start - 1) < len)
		s[start - 1] = '\0';
}

/* Copy src into dst[dstlen], cutting only between UTF-8 characters. */
void
utf8_copy(char *dst, size_t dstlen, const char *src)
{
	size_t		n;

	if (dstlen == 0)
		return;
	n = utf8_cut(src, strlen(src), dstlen - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * Decode s[0..n) into a new NUL-terminated string.  '+' becomes a space
 * only in query strings (form encoding); in paths it is literal.
 */
url_status
url_decode(const char *s, size_t n, bool plus_is_space,
		   char **out, size_t *outlen)
{
	char	   *d = malloc(n + 1);
	size_t		i,
				j = 0;

	*out = NULL;
	*outlen = 0;
	if (d == NULL)
		return URL_NOMEM;
	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '%')
		{
			int			h,
						l;

			if (n - i < 3 ||
				(h = hexval((unsigned char) s[i + 1])) < 0 ||
				(l = hexval((unsigned char) s[i + 2])) < 0)
			{
				free(d);
				return URL_BAD_PERCENT;
			}
			c = (unsigned char) (h * 16 + l);
			i += 2;
		}
		else if (c == '+' && plus_is_space)
			c = ' ';
		if (c == '\0')
		{
			free(d);
			return URL_NUL;
		}
		d[j++] = (char) c;
	}
	d[j] = '\0';
	if (!utf8_valid(d, j))
	{
		free(d);
		return URL_BAD_UTF8;
	}
	*out = d;
	*outlen = j;
	return URL_OK;
}

/* Words for an error message about st. */
const char *
url_status_text(url_status st)
{
	switch (st)
	{
		case URL_OK:
			return "valid";
		case URL_BAD_PERCENT:
			return "invalid percent-encoding";
		case URL_BAD_UTF8:
			return "invalid UTF-8";
		case URL_NUL:
			return "a NUL byte";
		case URL_NOMEM:
			return "out of memory";
	}
	return "unknown";
}
