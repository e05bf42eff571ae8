/*
 * urlcodec.h
 *		Strict percent-decoding and UTF-8 validation of request targets.
 */
#ifndef PANKO_API_URLCODEC_H
#define PANKO_API_URLCODEC_H

#include <stdbool.h>
#include <stddef.h>

/* Outcome of url_decode. */
typedef enum url_status
{
	URL_OK = 0,
	URL_BAD_PERCENT,			/* '%' not followed by two hex digits */
	URL_BAD_UTF8,				/* decoded bytes are not valid UTF-8 */
	URL_NUL,					/* decoded bytes contain NUL (%00) */
	URL_NOMEM
} url_status;

extern bool utf8_valid(const char *s, size_t n);
extern void utf8_sanitize(char *s);
extern size_t utf8_cut(const char *s, size_t n, size_t max);
extern void utf8_clip(char *s);
extern void utf8_copy(char *dst, size_t dstlen, const char *src);
extern url_status url_decode(const char *s, size_t n, bool plus_is_space,
							 char **out, size_t *outlen);
extern const char *url_status_text(url_status st);

#endif
