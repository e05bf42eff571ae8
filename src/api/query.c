/*
 * query.c
 *		Turn GET /v2/events parameters into panko.api_get_events's params.
 *
 * The server adds no query semantics: it only pairs the q.* lists by
 * position, keeps limit/marker as strings and sort as a list, and passes
 * unknown keys through so that the extension can reject them with the
 * message upstream Panko gave.  This file is the fuzzing target.
 */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "urlcodec.h"

/* The attributes of one q item, in the order they are written out. */
#define NQATTR 4
static const char *const q_attr[NQATTR] = {"field", "op", "type", "value"};

typedef struct strlist
{
	char	  **v;
	int			n;
} strlist;

typedef struct qs_state
{
	strlist		q[NQATTR];		/* q.field, q.op, q.type, q.value */
	strlist		sort;
	char	   *limit;
	char	   *marker;
	char	   *q_plain;		/* a bare "q=" parameter */
	qs_params	extra;			/* unknown keys, first value of each */
} qs_state;

/* Append s (taking ownership) to a list. */
static bool
list_push(strlist *l, char *s)
{
	char	  **v = realloc(l->v, sizeof(char *) * (size_t) (l->n + 1));

	if (v == NULL)
		return false;
	l->v = v;
	l->v[l->n++] = s;
	return true;
}

/* Free a list and its strings. */
static void
list_free(strlist *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Add key (owned) with JSON value json (owned) to a parameter set. */
static bool
params_add(qs_params *qp, char *key, char *json)
{
	qs_param   *items;

	if (key == NULL || json == NULL)
	{
		free(key);
		free(json);
		return false;
	}
	items = realloc(qp->items, sizeof(qs_param) * (size_t) (qp->n + 1));
	if (items == NULL)
	{
		free(key);
		free(json);
		return false;
	}
	qp->items = items;
	qp->items[qp->n].key = key;
	qp->items[qp->n].json = json;
	qp->n++;
	return true;
}

/* Is key already in the set? */
static bool
params_has(const qs_params *qp, const char *key, size_t len)
{
	for (int i = 0; i < qp->n; i++)
		if (strlen(qp->items[i].key) == len &&
			memcmp(qp->items[i].key, key, len) == 0)
			return true;
	return false;
}

/* Release a parameter set. */
void
qs_params_free(qs_params *qp)
{
	for (int i = 0; i < qp->n; i++)
	{
		free(qp->items[i].key);
		free(qp->items[i].json);
	}
	free(qp->items);
	qp->items = NULL;
	qp->n = 0;
}

/* Release the parse state. */
static void
state_free(qs_state *st)
{
	for (int i = 0; i < NQATTR; i++)
		list_free(&st->q[i]);
	list_free(&st->sort);
	free(st->limit);
	free(st->marker);
	free(st->q_plain);
	qs_params_free(&st->extra);
}

/* A string as a malloc'd JSON string literal. */
static char *
json_str(const char *s)
{
	strbuf		sb;

	sb_init(&sb);
	sb_json_string(&sb, s, strlen(s));
	return sb_steal(&sb);
}

/* Strdup that the callers check for NULL. */
static char *
dup_str(const char *s)
{
	size_t		n = strlen(s) + 1;
	char	   *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

/*
 * Is s[0..n) a plain decimal integer larger than max_limit?  Only such
 * values are capped; anything else is left for the extension to judge.
 */
bool
limit_needs_cap(const char *s, size_t n, long max_limit)
{
	unsigned long long v = 0;
	size_t		i = 0;

	if (max_limit <= 0 || n == 0)
		return false;
	for (size_t k = 0; k < n; k++)
		if (s[k] < '0' || s[k] > '9')
			return false;
	while (i < n && s[i] == '0')
		i++;
	if (n - i > 18)
		return true;
	for (; i < n; i++)
		v = v * 10 + (unsigned long long) (s[i] - '0');
	return v > (unsigned long long) max_limit;
}

/*
 * Call fn for every key=value piece of the query string, decoded.  '&'
 * separates pieces, empty pieces are skipped, a piece without '=' has an
 * empty value (as Python's parse_qsl with keep_blank_values does).
 */
static bool
qs_walk(const char *qs, size_t len, char *err, size_t errlen,
		bool (*fn) (void *arg, char *key, char *val, char *err, size_t errlen),
		void *arg)
{
	size_t		start = 0;
	int			index = 0;

	while (start <= len)
	{
		const char *amp = memchr(qs + start, '&', len - start);
		size_t		end = amp ? (size_t) (amp - qs) : len;
		const char *piece = qs + start;
		size_t		plen = end - start;

		if (plen > 0)
		{
			const char *eq = memchr(piece, '=', plen);
			size_t		klen = eq ? (size_t) (eq - piece) : plen;
			char	   *key,
					   *val;
			size_t		dlen;
			url_status	st;

			index++;
			st = url_decode(piece, klen, true, &key, &dlen);
			if (st == URL_OK)
			{
				st = eq ? url_decode(eq + 1, plen - klen - 1, true, &val, &dlen)
					: url_decode("", 0, true, &val, &dlen);
				if (st != URL_OK)
					free(key);
			}
			if (st != URL_OK)
			{
				snprintf(err, errlen,
						 "Invalid query string: parameter %d has %s",
						 index, url_status_text(st));
				return false;
			}
			if (fn && !fn(arg, key, val, err, errlen))
				return false;
			if (!fn)
			{
				free(key);
				free(val);
			}
		}
		if (amp == NULL)
			break;
		start = end + 1;
	}
	return true;
}

/* Check only that the query string decodes (routes that take no params). */
bool
qs_check(const char *qs, size_t len, char *err, size_t errlen)
{
	err[0] = '\0';
	return qs_walk(qs, len, err, errlen, NULL, NULL);
}

/* Sort one decoded key=value into the parse state (takes ownership). */
static bool
qs_collect(void *arg, char *key, char *val, char *err, size_t errlen)
{
	qs_state   *st = arg;
	char	  **single = NULL;

	if (strncmp(key, "q.", 2) == 0)
	{
		for (int i = 0; i < NQATTR; i++)
			if (strcmp(key + 2, q_attr[i]) == 0)
			{
				free(key);
				if (!list_push(&st->q[i], val))
					goto nomem;
				return true;
			}
	}
	if (strcmp(key, "sort") == 0)
	{
		free(key);
		if (!list_push(&st->sort, val))
			goto nomem;
		return true;
	}
	if (strcmp(key, "limit") == 0)
		single = &st->limit;
	else if (strcmp(key, "marker") == 0)
		single = &st->marker;
	else if (strcmp(key, "q") == 0)
		single = &st->q_plain;
	if (single)
	{
		if (*single)
		{
			snprintf(err, errlen, "Parameter %s was given several times", key);
			free(key);
			free(val);
			return false;
		}
		*single = val;
		free(key);
		return true;
	}
	/* unknown: keep the first value, the extension names it in its 400 */
	if (params_has(&st->extra, key, strlen(key)))
	{
		free(key);
		free(val);
		return true;
	}
	if (!params_add(&st->extra, key, json_str(val)))
	{
		free(val);
		goto nomem;
	}
	free(val);
	return true;

nomem:
	snprintf(err, errlen, "out of memory");
	return false;
}

/* The q.* lists must pair up: every list that is given has the same length. */
static bool
q_lists_equal(qs_state *st, char *err, size_t errlen)
{
	int			n = -1;
	bool		equal = true;
	strbuf		sb;

	for (int i = 0; i < NQATTR; i++)
	{
		if (st->q[i].n == 0)
			continue;
		if (n >= 0 && st->q[i].n != n)
			equal = false;
		n = st->q[i].n;
	}
	if (equal)
		return true;
	sb_init(&sb);
	sb_puts(&sb, "The q.field, q.op, q.type and q.value lists must have the same length:");
	for (int i = 0, first = 1; i < NQATTR; i++)
	{
		if (st->q[i].n == 0)
			continue;
		sb_printf(&sb, "%s q.%s has %d", first ? "" : ",", q_attr[i], st->q[i].n);
		first = 0;
	}
	snprintf(err, errlen, "%s", sb.data ? sb.data : "unequal q lists");
	sb_free(&sb);
	return false;
}

/* The q list as JSON: items paired by position, absent attributes omitted. */
static char *
q_json(qs_state *st)
{
	strbuf		sb;
	int			n = 0;

	for (int i = 0; i < NQATTR; i++)
		if (st->q[i].n > n)
			n = st->q[i].n;
	sb_init(&sb);
	sb_putc(&sb, '[');
	for (int k = 0; k < n; k++)
	{
		bool		first = true;

		sb_puts(&sb, k ? ", {" : "{");
		for (int i = 0; i < NQATTR; i++)
		{
			if (k >= st->q[i].n)
				continue;
			sb_puts(&sb, first ? "\"" : ", \"");
			sb_puts(&sb, q_attr[i]);
			sb_puts(&sb, "\": ");
			sb_json_string(&sb, st->q[i].v[k], strlen(st->q[i].v[k]));
			first = false;
		}
		sb_putc(&sb, '}');
	}
	sb_putc(&sb, ']');
	return sb_steal(&sb);
}

/* A list of strings as a JSON array. */
static char *
list_json(strlist *l)
{
	strbuf		sb;

	sb_init(&sb);
	sb_putc(&sb, '[');
	for (int i = 0; i < l->n; i++)
	{
		if (i)
			sb_puts(&sb, ", ");
		sb_json_string(&sb, l->v[i], strlen(l->v[i]));
	}
	sb_putc(&sb, ']');
	return sb_steal(&sb);
}

/* limit as a JSON string, replaced by max_limit when it is a larger integer. */
static char *
limit_json(const char *limit, long max_limit)
{
	char		num[32];

	if (limit_needs_cap(limit, strlen(limit), max_limit))
	{
		snprintf(num, sizeof(num), "%ld", max_limit);
		return json_str(num);
	}
	return json_str(limit);
}

/*
 * Parse a raw query string (the part after '?') into top-level params.
 * On failure err holds the faultstring of a 400.
 */
bool
qs_parse(const char *qs, size_t len, long max_limit,
		 qs_params *out, char *err, size_t errlen)
{
	qs_state	st;
	bool		have_q = false;
	bool		ok = true;

	memset(&st, 0, sizeof(st));
	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	if (!qs_walk(qs, len, err, errlen, qs_collect, &st) ||
		!q_lists_equal(&st, err, errlen))
	{
		state_free(&st);
		return false;
	}
	for (int i = 0; i < NQATTR; i++)
		have_q |= st.q[i].n > 0;
	if (have_q && st.q_plain)
	{
		snprintf(err, errlen, "Parameter q was given several times");
		state_free(&st);
		return false;
	}
	if (have_q)
		ok &= params_add(out, dup_str("q"), q_json(&st));
	if (st.q_plain)
		ok &= params_add(out, dup_str("q"), json_str(st.q_plain));
	if (st.limit)
		ok &= params_add(out, dup_str("limit"), limit_json(st.limit, max_limit));
	if (st.sort.n > 0)
		ok &= params_add(out, dup_str("sort"), list_json(&st.sort));
	if (st.marker)
		ok &= params_add(out, dup_str("marker"), json_str(st.marker));
	for (int i = 0; ok && i < st.extra.n; i++)
	{
		ok &= params_add(out, st.extra.items[i].key, st.extra.items[i].json);
		st.extra.items[i].key = NULL;
		st.extra.items[i].json = NULL;
	}
	state_free(&st);
	if (!ok)
	{
		qs_params_free(out);
		snprintf(err, errlen, "out of memory");
	}
	return ok;
}

/* Write a body member's value, capping an over-large integer limit. */
static void
put_body_value(strbuf *sb, const char *body, const json_member *m,
			   long max_limit)
{
	const char *v = body + m->value_start;
	size_t		n = m->value_end - m->value_start;

	if (strcmp(m->key, "limit") == 0)
	{
		if (m->value_type == JSON_NUMBER && limit_needs_cap(v, n, max_limit))
		{
			sb_printf(sb, "%ld", max_limit);
			return;
		}
		if (m->value_type == JSON_STRING && n >= 2 &&
			limit_needs_cap(v + 1, n - 2, max_limit))
		{
			sb_printf(sb, "\"%ld\"", max_limit);
			return;
		}
	}
	sb_putn(sb, v, n);
}

/*
 * The params document: the JSON body's members (if any) followed by the
 * query string's.  A body must be an object, and a key may not come from
 * both places (upstream's wording for both errors).
 */
bool
params_build(const qs_params *qp, const char *body, size_t body_len,
			 long max_limit, strbuf *out, char *err, size_t errlen)
{
	json_doc	doc;
	bool		first = true;
	char		jerr[160];

	err[0] = '\0';
	memset(&doc, 0, sizeof(doc));
	if (body && body_len > 0)
	{
		if (!json_scan(body, body_len, &doc, jerr, sizeof(jerr)))
		{
			snprintf(err, errlen, "Invalid JSON body: %s", jerr);
			return false;
		}
		if (doc.type != JSON_OBJECT)
		{
			json_doc_free(&doc);
			snprintf(err, errlen, "Request must be a JSON dict");
			return false;
		}
		for (int i = 0; i < doc.nmembers; i++)
			if (params_has(qp, doc.members[i].key, doc.members[i].key_len))
			{
				snprintf(err, errlen, "Parameter %s was given several times",
						 doc.members[i].key);
				json_doc_free(&doc);
				return false;
			}
	}
	sb_putc(out, '{');
	for (int i = 0; i < doc.nmembers; i++)
	{
		const json_member *m = &doc.members[i];

		if (!first)
			sb_puts(out, ", ");
		sb_putn(out, body + m->raw_key_start, m->raw_key_end - m->raw_key_start);
		sb_puts(out, ": ");
		put_body_value(out, body, m, max_limit);
		first = false;
	}
	for (int i = 0; i < qp->n; i++)
	{
		if (!first)
			sb_puts(out, ", ");
		sb_json_string(out, qp->items[i].key, strlen(qp->items[i].key));
		sb_puts(out, ": ");
		sb_puts(out, qp->items[i].json);
		first = false;
	}
	sb_putc(out, '}');
	json_doc_free(&doc);
	if (out->oom)
	{
		snprintf(err, errlen, "out of memory");
		return false;
	}
	return true;
}
