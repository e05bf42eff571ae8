/*
 * query.c
 *		Turn GET /v2/events parameters into panko.api_get_events's params.
 *
 * The server adds almost no query semantics: it pairs the q.* lists by
 * position, keeps marker as a string and sort as a list, and leaves the
 * meaning of filters to the extension.  It decides three things itself,
 * because they bound the work one request can cause: the set of parameter
 * names (each given once), the number of q items and sort keys, and the
 * limit, which is read by one parser (limit_parse) and always sent as a
 * JSON integer no larger than --max-limit.  This file is the fuzzing target.
 */
#include "postgres_fe.h"

#include "query.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "urlcodec.h"

/* The attributes of one q item, in the order they are written out. */
#define NQATTR 4
static const char *const q_attr[NQATTR] = {"field", "op", "type", "value"};

/* The parameter names GET /v2/events takes, and their order in the output. */
enum
{
	P_Q,
	P_LIMIT,
	P_SORT,
	P_MARKER,
	NPARAMS
};
static const char *const param_name[NPARAMS] = {"q", "limit", "sort", "marker"};

typedef struct strlist
{
	char	  **v;
	int			n;
	int			cap;
} strlist;

typedef struct qs_state
{
	strlist		q[NQATTR];		/* q.field, q.op, q.type, q.value */
	strlist		sort;
	char	   *limit;
	char	   *marker;
	char	   *q_plain;		/* a bare "q=" parameter */
	char	   *unknown;		/* the first unknown name */
} qs_state;

/* snprintf into err, never leaving half a UTF-8 character at the end. */
static bool
set_err(char *err, size_t errlen, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));
static bool
set_err(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	utf8_clip(err);
	return false;
}

/* Append s (taking ownership) to a list; the list grows by doubling. */
static bool
list_push(strlist *l, char *s)
{
	if (l->n == l->cap)
	{
		int			cap = l->cap ? 2 * l->cap : 8;
		char	  **v = realloc(l->v, sizeof(char *) * (size_t) cap);

		if (v == NULL)
			return false;
		l->v = v;
		l->cap = cap;
	}
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
	memset(l, 0, sizeof(*l));
}

/* Release a parameter set. */
void
qs_params_free(qs_params *qp)
{
	free(qp->q);
	free(qp->sort);
	free(qp->marker);
	free(qp->limit);
	free(qp->unknown);
	memset(qp, 0, sizeof(*qp));
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
	free(st->unknown);
}

/* The text of a buffer, handed to the caller; NULL when memory ran out. */
static char *
buffer_steal(PQExpBuffer buf)
{
	if (PQExpBufferBroken(buf))
	{
		termPQExpBuffer(buf);
		return NULL;
	}
	return buf->data;
}

/*
 * Add one decimal digit to a limit being read, saturating at LIMIT_MAX
 * (a larger limit means "everything", which the cap then bounds).
 */
static long
limit_digit(long v, char c)
{
	int			d = c - '0';

	if (v > (LIMIT_MAX - d) / 10)
		return LIMIT_MAX;
	return v * 10 + d;
}

/*
 * The one reading of a limit: s[0..n) must be decimal digits, optionally
 * after a '-' (which makes it negative unless it is zero).  Query string
 * values are checked as they are (after percent-decoding), JSON numbers as
 * their token, so a fraction, an exponent, a '+', spaces or anything else
 * is LIMIT_INVALID.  *value is the number, at most LIMIT_MAX.
 */
limit_status
limit_parse(const char *s, size_t n, long *value)
{
	size_t		i = 0;
	bool		negative = false;
	long		v = 0;

	*value = 0;
	if (n > 0 && s[0] == '-')
	{
		negative = true;
		i = 1;
	}
	if (i == n)
		return LIMIT_INVALID;
	for (; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return LIMIT_INVALID;
		v = limit_digit(v, s[i]);
	}
	if (negative && v != 0)
		return LIMIT_NEGATIVE;
	*value = v;
	return LIMIT_OK;
}

/*
 * The limit the database is asked for: the given one, or the default when
 * none (or 0) is given, and never more than max_limit (0 = no cap).  The
 * cap applies to the default too.
 */
long
limit_effective(long given, long max_limit)
{
	long		lim = (given > 0) ? given : LIMIT_DEFAULT;

	if (max_limit > 0 && lim > max_limit)
		lim = max_limit;
	return lim;
}

/* The 400 for a limit that limit_parse refused; value is quoted as given. */
static bool
limit_error(limit_status st, const char *value, size_t n, char *err,
			size_t errlen)
{
	if (st == LIMIT_NEGATIVE)
		return set_err(err, errlen, "Limit must be positive");
	return set_err(err, errlen, "Invalid input for field/attribute limit. "
				   "Value: '%.*s'. unable to convert to int",
				   (int) utf8_cut(value, n, 4096), value);
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
				return set_err(err, errlen,
							   "Invalid query string: parameter %d has %s",
							   index, url_status_text(st));
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
			set_err(err, errlen, "Parameter %s was given several times", key);
			free(key);
			free(val);
			return false;
		}
		*single = val;
		free(key);
		return true;
	}
	/* unknown: only the first is kept, for the 400 that names it */
	free(val);
	if (st->unknown == NULL)
		st->unknown = key;
	else
		free(key);
	return true;

nomem:
	free(val);
	return set_err(err, errlen, "out of memory");
}

/* The q.* lists must pair up: every list that is given has the same length. */
static bool
q_lists_equal(qs_state *st, char *err, size_t errlen)
{
	int			n = -1;
	bool		equal = true;
	PQExpBufferData sb;

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
	initPQExpBuffer(&sb);
	appendPQExpBufferStr(&sb, "The q.field, q.op, q.type and q.value lists must have the same length:");
	for (int i = 0, first = 1; i < NQATTR; i++)
	{
		if (st->q[i].n == 0)
			continue;
		appendPQExpBuffer(&sb, "%s q.%s has %d", first ? "" : ",", q_attr[i], st->q[i].n);
		first = 0;
	}
	set_err(err, errlen, "%s", PQExpBufferBroken(&sb) ? "unequal q lists" : sb.data);
	termPQExpBuffer(&sb);
	return false;
}

/* The bound on q items and sort keys, with the message of its 400. */
static bool
within_bound(const char *what, int n, int max_filters, char *err,
			 size_t errlen)
{
	if (max_filters <= 0 || n <= max_filters)
		return true;
	return set_err(err, errlen, "Too many %s: %d given, at most %d are allowed",
				   what, n, max_filters);
}

/*
 * The q list as JSON: items paired by position, absent attributes omitted.
 * Values were decoded and checked as UTF-8, so quoting them cannot fail.
 */
static char *
q_json(qs_state *st, int n)
{
	PQExpBufferData sb;
	bool		ok = true;

	initPQExpBuffer(&sb);
	appendPQExpBufferChar(&sb, '[');
	for (int k = 0; k < n; k++)
	{
		bool		first = true;

		appendPQExpBufferStr(&sb, k ? ", {" : "{");
		for (int i = 0; i < NQATTR; i++)
		{
			if (k >= st->q[i].n)
				continue;
			appendPQExpBuffer(&sb, "%s\"%s\": ", first ? "" : ", ", q_attr[i]);
			ok &= json_quote(&sb, st->q[i].v[k], strlen(st->q[i].v[k]));
			first = false;
		}
		appendPQExpBufferChar(&sb, '}');
	}
	appendPQExpBufferChar(&sb, ']');
	if (!ok)
		termPQExpBuffer(&sb);
	return buffer_steal(&sb);
}

/* A list of strings as a JSON array. */
static char *
list_json(strlist *l)
{
	PQExpBufferData sb;
	bool		ok = true;

	initPQExpBuffer(&sb);
	appendPQExpBufferChar(&sb, '[');
	for (int i = 0; i < l->n; i++)
	{
		if (i)
			appendPQExpBufferStr(&sb, ", ");
		ok &= json_quote(&sb, l->v[i], strlen(l->v[i]));
	}
	appendPQExpBufferChar(&sb, ']');
	if (!ok)
		termPQExpBuffer(&sb);
	return buffer_steal(&sb);
}

/* Move *from into *to, failing when the allocation behind it failed. */
static bool
take(char **to, char *from)
{
	*to = from;
	return from != NULL;
}

/*
 * Parse a raw query string (the part after '?') into its parameters.
 * More than max_filters q items or sort keys is an error.  On failure err
 * holds the faultstring of a 400.
 */
bool
qs_parse(const char *qs, size_t len, int max_filters,
		 qs_params *out, char *err, size_t errlen)
{
	qs_state	st;
	int			nq = 0;
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
		if (st.q[i].n > nq)
			nq = st.q[i].n;
	if (nq > 0 && st.q_plain)
	{
		state_free(&st);
		return set_err(err, errlen, "Parameter q was given several times");
	}
	if (!within_bound("filters", nq, max_filters, err, errlen) ||
		!within_bound("sort keys", st.sort.n, max_filters, err, errlen))
	{
		state_free(&st);
		return false;
	}
	if (nq > 0)
		ok &= take(&out->q, q_json(&st, nq));
	else if (st.q_plain)
		ok &= take(&out->q, json_quote_new(st.q_plain));
	if (st.sort.n > 0)
		ok &= take(&out->sort, list_json(&st.sort));
	if (st.marker)
		ok &= take(&out->marker, json_quote_new(st.marker));
	out->limit = st.limit;
	st.limit = NULL;
	out->unknown = st.unknown;
	st.unknown = NULL;
	state_free(&st);
	if (!ok)
	{
		qs_params_free(out);
		return set_err(err, errlen, "out of memory");
	}
	return true;
}

/* Which of the parameter names is key[0..len), or -1. */
static int
param_index(const char *key, size_t len)
{
	for (int i = 0; i < NPARAMS; i++)
		if (strlen(param_name[i]) == len && memcmp(param_name[i], key, len) == 0)
			return i;
	return -1;
}

/*
 * The limit the database gets, from the query string's text or the body's
 * member (at most one of them): a JSON integer, never a string.
 */
static bool
read_limit(const qs_params *qp, const char *body, const json_member *m,
		   long max_limit, long *lim, char *err, size_t errlen)
{
	long		given = 0;
	limit_status st = LIMIT_OK;

	if (qp->limit)
	{
		st = limit_parse(qp->limit, strlen(qp->limit), &given);
		if (st != LIMIT_OK)
			return limit_error(st, qp->limit, strlen(qp->limit), err, errlen);
	}
	else if (m && json_is_integer(m->value))
	{
		/* the integer token as written: jansson refused one beyond int64 */
		const char *v = body + m->value_start;
		size_t		n = m->value_end - m->value_start;

		st = limit_parse(v, n, &given);
		if (st != LIMIT_OK)
			return limit_error(st, v, n, err, errlen);
	}
	else if (m && json_is_string(m->value))
	{
		/* a string is never a limit, whatever it spells */
		return limit_error(LIMIT_INVALID, json_string_value(m->value),
						   json_string_length(m->value), err, errlen);
	}
	else if (m && !json_is_null(m->value))
	{
		/* a real (5.0, 5e0), a boolean, a list or an object, as written */
		return limit_error(LIMIT_INVALID, body + m->value_start,
						   m->value_end - m->value_start, err, errlen);
	}
	*lim = limit_effective(given, max_limit);
	return true;
}

/*
 * The params document: {"q", "limit", "sort", "marker"} from the JSON body
 * (an object) and the query string.  A name may come from one place only
 * and only once; an unknown name is refused here, with the extension's
 * wording, so that the number of members never matters; the q list and the
 * sort list are bounded by max_filters; limit is always present, as the
 * effective integer.
 */
bool
params_build(const qs_params *qp, const char *body, size_t body_len,
			 long max_limit, int max_filters, PQExpBuffer out, char *err,
			 size_t errlen)
{
	json_doc	doc;
	const json_member *given[NPARAMS] = {NULL};
	const char *from_qs[NPARAMS] = {qp->q, qp->limit, qp->sort, qp->marker};
	const char *unknown = NULL;
	char		jerr[JSON_ERROR_TEXT_LENGTH + 32];
	long		lim = 0;
	bool		first = true;

	err[0] = '\0';
	memset(&doc, 0, sizeof(doc));
	if (body && body_len > 0)
	{
		if (!json_check(body, body_len, &doc, true, jerr, sizeof(jerr)))
			return set_err(err, errlen, "Invalid JSON body: %s", jerr);
		if (!doc.object)
		{
			json_doc_free(&doc);
			return set_err(err, errlen, "Request must be a JSON dict");
		}
	}
	for (int i = 0; i < doc.nmembers; i++)
	{
		const json_member *m = &doc.members[i];
		int			k = param_index(m->key, m->key_len);

		if (k < 0)
		{
			if (unknown == NULL)
				unknown = m->key;
			continue;
		}
		if (given[k] || from_qs[k])
		{
			set_err(err, errlen, "Parameter %s was given several times",
					param_name[k]);
			json_doc_free(&doc);
			return false;
		}
		given[k] = m;
	}
	if (unknown == NULL)
		unknown = qp->unknown;
	if (unknown)
	{
		set_err(err, errlen, "Unknown argument: \"%s\"", unknown);
		json_doc_free(&doc);
		return false;
	}
	if ((given[P_Q] && json_is_array(given[P_Q]->value) &&
		 !within_bound("filters", (int) json_array_size(given[P_Q]->value),
					   max_filters, err, errlen)) ||
		(given[P_SORT] && json_is_array(given[P_SORT]->value) &&
		 !within_bound("sort keys", (int) json_array_size(given[P_SORT]->value),
					   max_filters, err, errlen)) ||
		!read_limit(qp, body, given[P_LIMIT], max_limit, &lim, err, errlen))
	{
		json_doc_free(&doc);
		return false;
	}

	appendPQExpBufferChar(out, '{');
	for (int k = 0; k < NPARAMS; k++)
	{
		const json_member *m = given[k];

		if (k != P_LIMIT && m == NULL && from_qs[k] == NULL)
			continue;
		if (!first)
			appendPQExpBufferStr(out, ", ");
		first = false;
		appendPQExpBuffer(out, "\"%s\": ", param_name[k]);
		if (k == P_LIMIT)
			appendPQExpBuffer(out, "%ld", lim);
		else if (m)
			appendBinaryPQExpBuffer(out, body + m->value_start,
									m->value_end - m->value_start);
		else
			appendPQExpBufferStr(out, from_qs[k]);
	}
	appendPQExpBufferChar(out, '}');
	json_doc_free(&doc);
	if (PQExpBufferBroken(out))
		return set_err(err, errlen, "out of memory");
	return true;
}
