/*
 * json.c
 *		Strict JSON checking for request bodies.
 *
 * Bodies go to PostgreSQL as jsonb parameters, and the database would
 * reject bad JSON too; checking here gives a precise 400 without a round
 * trip, bounds the nesting depth (deep nesting would otherwise surface as a
 * "stack depth" error, a 500), and finds an object's top-level keys so a
 * GET body can be merged with its query string.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "urlcodec.h"

typedef struct jparser
{
	const char *s;
	size_t		n;
	size_t		pos;
	int			depth;
	char	   *err;
	size_t		errlen;
	json_doc   *doc;			/* receives the top-level members */
	int			nitems;			/* elements of the array parsed last */
} jparser;

static bool parse_value(jparser *p, json_type *type);

/* Record the first error only; later ones are consequences. */
static bool
fail(jparser *p, const char *what)
{
	if (p->err[0] == '\0')
		snprintf(p->err, p->errlen, "%s at byte %zu", what, p->pos);
	return false;
}

/* Skip the four JSON whitespace characters. */
static void
skip_ws(jparser *p)
{
	while (p->pos < p->n)
	{
		char		c = p->s[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

/* Read four hex digits of a \u escape. */
static bool
read_hex4(jparser *p, unsigned *out)
{
	unsigned	v = 0;

	if (p->n - p->pos < 4)
		return fail(p, "truncated \\u escape");
	for (int i = 0; i < 4; i++)
	{
		char		c = p->s[p->pos++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned) (c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned) (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned) (c - 'A' + 10);
		else
			return fail(p, "invalid \\u escape");
	}
	*out = v;
	return true;
}

/* Append code point cp as UTF-8. */
static void
put_utf8(strbuf *sb, unsigned cp)
{
	char		b[4];

	if (cp < 0x80)
		sb_putc(sb, (char) cp);
	else if (cp < 0x800)
	{
		b[0] = (char) (0xC0 | (cp >> 6));
		b[1] = (char) (0x80 | (cp & 0x3F));
		sb_putn(sb, b, 2);
	}
	else if (cp < 0x10000)
	{
		b[0] = (char) (0xE0 | (cp >> 12));
		b[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char) (0x80 | (cp & 0x3F));
		sb_putn(sb, b, 3);
	}
	else
	{
		b[0] = (char) (0xF0 | (cp >> 18));
		b[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char) (0x80 | (cp & 0x3F));
		sb_putn(sb, b, 4);
	}
}

/* One \uXXXX escape (with its low surrogate when needed). */
static bool
parse_unicode_escape(jparser *p, strbuf *out)
{
	unsigned	cp,
				lo;

	if (!read_hex4(p, &cp))
		return false;
	if (cp == 0)
		return fail(p, "\\u0000 is not supported");
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return fail(p, "lone low surrogate in \\u escape");
	if (cp >= 0xD800 && cp <= 0xDBFF)
	{
		if (p->n - p->pos < 2 || p->s[p->pos] != '\\' ||
			p->s[p->pos + 1] != 'u')
			return fail(p, "high surrogate not followed by a low surrogate");
		p->pos += 2;
		if (!read_hex4(p, &lo))
			return false;
		if (lo < 0xDC00 || lo > 0xDFFF)
			return fail(p, "high surrogate not followed by a low surrogate");
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	if (out)
		put_utf8(out, cp);
	return true;
}

/* A string starting at the opening quote; decoded into out when given. */
static bool
parse_string(jparser *p, strbuf *out)
{
	p->pos++;					/* opening quote */
	while (p->pos < p->n)
	{
		unsigned char c = (unsigned char) p->s[p->pos];

		if (c == '"')
		{
			p->pos++;
			return true;
		}
		if (c < 0x20)
			return fail(p, "control character in string");
		if (c != '\\')
		{
			if (out)
				sb_putc(out, (char) c);
			p->pos++;
			continue;
		}
		if (++p->pos >= p->n)
			break;
		c = (unsigned char) p->s[p->pos++];
		switch (c)
		{
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u':
				if (!parse_unicode_escape(p, out))
					return false;
				continue;
			default:
				p->pos--;
				return fail(p, "invalid escape in string");
		}
		if (out)
			sb_putc(out, (char) c);
	}
	return fail(p, "unterminated string");
}

/* Count a run of digits; false when there is none. */
static bool
digits(jparser *p)
{
	size_t		start = p->pos;

	while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos > start;
}

/* RFC 8259 number grammar, nothing more (no NaN, no leading '+'). */
static bool
parse_number(jparser *p)
{
	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos < p->n && p->s[p->pos] == '0')
		p->pos++;
	else if (!digits(p))
		return fail(p, "invalid number");
	if (p->pos < p->n && p->s[p->pos] == '.')
	{
		p->pos++;
		if (!digits(p))
			return fail(p, "invalid number");
	}
	if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
	{
		p->pos++;
		if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!digits(p))
			return fail(p, "invalid number");
	}
	return true;
}

/* true, false or null. */
static bool
parse_literal(jparser *p, const char *word, json_type t, json_type *type)
{
	size_t		len = strlen(word);

	if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len) != 0)
		return fail(p, "unexpected character");
	p->pos += len;
	*type = t;
	return true;
}

/* Keep one top-level member of the outermost object. */
static bool
add_member(jparser *p, strbuf *key, size_t ks, size_t ke,
		   size_t vs, size_t ve, json_type vt)
{
	json_doc   *d = p->doc;
	json_member *m;

	if (key->oom)
		return fail(p, "out of memory");
	if (d->nmembers == d->cap)
	{
		/* grown by doubling, so that many keys cost linear time */
		int			cap = d->cap ? 2 * d->cap : 8;

		m = realloc(d->members, sizeof(json_member) * (size_t) cap);
		if (m == NULL)
			return fail(p, "out of memory");
		d->members = m;
		d->cap = cap;
	}
	m = &d->members[d->nmembers++];
	m->key_len = key->len;
	m->key = sb_steal(key);
	m->raw_key_start = ks;
	m->raw_key_end = ke;
	m->value_start = vs;
	m->value_end = ve;
	m->value_type = vt;
	m->nitems = (vt == JSON_ARRAY) ? p->nitems : 0;
	if (m->key == NULL)
		return fail(p, "out of memory");
	return true;
}

/* An object; members of the outermost one are recorded. */
static bool
parse_object(jparser *p)
{
	bool		top = (p->depth == 1);

	p->pos++;
	skip_ws(p);
	if (p->pos < p->n && p->s[p->pos] == '}')
	{
		p->pos++;
		return true;
	}
	for (;;)
	{
		strbuf		key;
		size_t		ks,
					ke,
					vs;
		json_type	vt;

		skip_ws(p);
		if (p->pos >= p->n || p->s[p->pos] != '"')
			return fail(p, "expected a string key");
		sb_init(&key);
		ks = p->pos;
		if (!parse_string(p, top ? &key : NULL))
		{
			sb_free(&key);
			return false;
		}
		ke = p->pos;
		skip_ws(p);
		if (p->pos >= p->n || p->s[p->pos] != ':')
		{
			sb_free(&key);
			return fail(p, "expected ':'");
		}
		p->pos++;
		skip_ws(p);
		vs = p->pos;
		if (!parse_value(p, &vt))
		{
			sb_free(&key);
			return false;
		}
		if (top && !add_member(p, &key, ks, ke, vs, p->pos, vt))
		{
			sb_free(&key);
			return false;
		}
		sb_free(&key);
		skip_ws(p);
		if (p->pos < p->n && p->s[p->pos] == ',')
		{
			p->pos++;
			continue;
		}
		if (p->pos < p->n && p->s[p->pos] == '}')
		{
			p->pos++;
			return true;
		}
		return fail(p, "expected ',' or '}'");
	}
}

/* An array; its element count is left in p->nitems. */
static bool
parse_array(jparser *p)
{
	json_type	vt;
	int			count = 0;

	p->pos++;
	skip_ws(p);
	if (p->pos < p->n && p->s[p->pos] == ']')
	{
		p->pos++;
		p->nitems = 0;
		return true;
	}
	for (;;)
	{
		skip_ws(p);
		if (!parse_value(p, &vt))
			return false;
		if (count < 0x7fffffff)
			count++;
		skip_ws(p);
		if (p->pos < p->n && p->s[p->pos] == ',')
		{
			p->pos++;
			continue;
		}
		if (p->pos < p->n && p->s[p->pos] == ']')
		{
			p->pos++;
			p->nitems = count;	/* after the nested arrays set theirs */
			return true;
		}
		return fail(p, "expected ',' or ']'");
	}
}

/* Any value; p->pos is at its first byte. */
static bool
parse_value(jparser *p, json_type *type)
{
	char		c;
	bool		ok;

	if (p->pos >= p->n)
		return fail(p, "unexpected end of input");
	c = p->s[p->pos];
	switch (c)
	{
		case '{':
		case '[':
			if (++p->depth > JSON_MAX_DEPTH)
				return fail(p, "nesting too deep");
			ok = (c == '{') ? parse_object(p) : parse_array(p);
			p->depth--;
			*type = (c == '{') ? JSON_OBJECT : JSON_ARRAY;
			return ok;
		case '"':
			*type = JSON_STRING;
			return parse_string(p, NULL);
		case 't':
			return parse_literal(p, "true", JSON_TRUE, type);
		case 'f':
			return parse_literal(p, "false", JSON_FALSE, type);
		case 'n':
			return parse_literal(p, "null", JSON_NULL, type);
		default:
			if (c == '-' || (c >= '0' && c <= '9'))
			{
				*type = JSON_NUMBER;
				return parse_number(p);
			}
			return fail(p, "unexpected character");
	}
}

/*
 * Check that s[0..n) is exactly one JSON value (whitespace around it
 * allowed).  On failure err holds a short reason and doc is empty.
 */
bool
json_scan(const char *s, size_t n, json_doc *doc, char *err, size_t errlen)
{
	jparser		p;
	json_type	t = JSON_NONE;

	memset(doc, 0, sizeof(*doc));
	err[0] = '\0';
	p.s = s;
	p.n = n;
	p.pos = 0;
	p.depth = 0;
	p.err = err;
	p.errlen = errlen;
	p.doc = doc;
	p.nitems = 0;
	if (!utf8_valid(s, n))
	{
		snprintf(err, errlen, "body is not valid UTF-8");
		return false;
	}
	skip_ws(&p);
	if (p.pos >= n)
	{
		snprintf(err, errlen, "body is empty");
		return false;
	}
	if (!parse_value(&p, &t))
	{
		json_doc_free(doc);
		return false;
	}
	skip_ws(&p);
	if (p.pos != n)
	{
		fail(&p, "unexpected data after the JSON value");
		json_doc_free(doc);
		return false;
	}
	doc->type = t;
	return true;
}

/*
 * Decode s[0..n), a JSON string literal with its quotes as json_scan
 * accepted it, into out (for messages that quote a value).
 */
bool
json_string_decode(const char *s, size_t n, strbuf *out)
{
	jparser		p;
	char		err[64];

	memset(&p, 0, sizeof(p));
	p.s = s;
	p.n = n;
	p.err = err;
	p.errlen = sizeof(err);
	err[0] = '\0';
	if (n < 2 || s[0] != '"')
		return false;
	return parse_string(&p, out) && p.pos == n && !out->oom;
}

/* Free the member list. */
void
json_doc_free(json_doc *doc)
{
	for (int i = 0; i < doc->nmembers; i++)
		free(doc->members[i].key);
	free(doc->members);
	memset(doc, 0, sizeof(*doc));
}

/* Name of a JSON type for messages. */
const char *
json_type_name(json_type t)
{
	switch (t)
	{
		case JSON_OBJECT:
			return "object";
		case JSON_ARRAY:
			return "array";
		case JSON_STRING:
			return "string";
		case JSON_NUMBER:
			return "number";
		case JSON_TRUE:
		case JSON_FALSE:
			return "boolean";
		case JSON_NULL:
			return "null";
		case JSON_NONE:
			break;
	}
	return "nothing";
}
