/*
 * json.c
 *		Request bodies checked with jansson.
 *
 * Bodies go to PostgreSQL as jsonb parameters, and the database would
 * reject bad JSON too; checking here gives a precise 400 (jansson's message
 * and byte position) without a round trip, and bounds the nesting depth
 * (deep nesting would otherwise reach the database).  For a GET body, the
 * top-level members are listed as written, in order and repeated names
 * included (jansson's object keeps only the last), each with the span of
 * its value's text, so that the body can be merged with the query string
 * and a limit quoted as it was given.
 */
#include "postgres_fe.h"

#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urlcodec.h"

/* Numbers are decoded as jansson's integers and reals; NUL is refused. */
#define JSON_LOAD_FLAGS JSON_DECODE_ANY

/* The first position at or after pos that is not JSON whitespace. */
static size_t
skip_ws(const char *s, size_t n, size_t pos)
{
	while (pos < n && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' ||
					   s[pos] == '\r'))
		pos++;
	return pos;
}

/* Is the value nested deeper than depth levels allow (depth counts it)? */
static bool
too_deep(json_t *v, int depth)
{
	const char *key;
	json_t	   *item;
	size_t		i;

	if (!json_is_object(v) && !json_is_array(v))
		return false;
	if (depth > JSON_MAX_DEPTH)
		return true;
	/* jansson's parser stops at its own bound, so this recursion is bounded */
	if (json_is_array(v))
	{
		json_array_foreach(v, i, item)
			if (too_deep(item, depth + 1))
			return true;
		return false;
	}
	json_object_foreach(v, key, item)
		if (too_deep(item, depth + 1))
		return true;
	return false;
}

/* Decode the one value that starts at s[*pos]; *pos moves past it. */
static json_t *
load_at(const char *s, size_t n, size_t *pos)
{
	json_error_t e;
	json_t	   *v = json_loadb(s + *pos, n - *pos,
							   JSON_LOAD_FLAGS | JSON_DISABLE_EOF_CHECK, &e);

	if (v != NULL)
		*pos += (size_t) e.position;
	return v;
}

/* Keep one member (takes the value's reference). */
static bool
add_member(json_doc *doc, int *cap, json_t *key, size_t vs, size_t ve,
		   json_t *value)
{
	json_member *m;

	if (doc->nmembers == *cap)
	{
		/* grown by doubling, so that many keys cost linear time */
		int			ncap = *cap ? 2 * *cap : 8;

		m = realloc(doc->members, sizeof(json_member) * (size_t) ncap);
		if (m == NULL)
			return false;
		doc->members = m;
		*cap = ncap;
	}
	m = &doc->members[doc->nmembers];
	m->key_len = json_string_length(key);
	m->key = malloc(m->key_len + 1);
	if (m->key == NULL)
		return false;
	memcpy(m->key, json_string_value(key), m->key_len + 1);
	m->value_start = vs;
	m->value_end = ve;
	m->value = value;
	doc->nmembers++;
	return true;
}

/*
 * Read the object s[0..n) member by member: jansson decodes each key and
 * each value where it starts, so only the punctuation between them is
 * stepped over here, and no hash table is built for a body that may hold
 * many names.  False when the text is not one object (with a valid value
 * for every key) and nothing else, or memory ran out: the caller then asks
 * jansson for its message about the whole text.
 */
static bool
list_members(const char *s, size_t n, json_doc *doc, bool *oom)
{
	size_t		pos = skip_ws(s, n, 0) + 1;	/* past '{' */
	int			cap = 0;

	pos = skip_ws(s, n, pos);
	if (pos < n && s[pos] == '}')
		return skip_ws(s, n, pos + 1) == n;
	for (;;)
	{
		json_t	   *key,
				   *value;
		size_t		vs;
		bool		ok;

		if ((key = load_at(s, n, &pos)) == NULL || !json_is_string(key))
		{
			json_decref(key);
			return false;
		}
		pos = skip_ws(s, n, pos);
		if (pos >= n || s[pos] != ':')
		{
			json_decref(key);
			return false;
		}
		vs = pos = skip_ws(s, n, pos + 1);
		value = load_at(s, n, &pos);
		ok = value != NULL && !too_deep(value, 2);
		if (ok && !add_member(doc, &cap, key, vs, pos, value))
			*oom = !(ok = false);
		json_decref(key);
		if (!ok)
		{
			json_decref(value);
			return false;
		}
		pos = skip_ws(s, n, pos);
		if (pos < n && s[pos] == ',')
		{
			pos = skip_ws(s, n, pos + 1);
			continue;
		}
		return pos < n && s[pos] == '}' && skip_ws(s, n, pos + 1) == n;
	}
}

/* The reason s[0..n) is refused, from jansson, in err. */
static void
explain(const char *s, size_t n, char *err, size_t errlen)
{
	json_error_t e;
	json_t	   *v = json_loadb(s, n, JSON_LOAD_FLAGS, &e);

	if (v != NULL && too_deep(v, 1))
		snprintf(err, errlen, "nesting too deep (more than %d levels)",
				 JSON_MAX_DEPTH);
	else if (v != NULL)
		snprintf(err, errlen, "invalid JSON");	/* not reached */
	else
	{
		/* jansson quotes the input near the error, perhaps a broken part
		 * of a character: the message must stay UTF-8 */
		snprintf(err, errlen, "%s at byte %d", e.text, e.position);
		utf8_clip(err);
		utf8_sanitize(err);
	}
	json_decref(v);
}

/*
 * Check that s[0..n) is exactly one JSON value (whitespace around it
 * allowed), nested at most JSON_MAX_DEPTH deep.  With members, an object's
 * top-level members are listed (doc->object set, doc->root NULL); otherwise
 * doc->root is the value.  On failure err holds the reason (jansson's, with
 * the byte position) and doc is empty.
 */
bool
json_check(const char *s, size_t n, json_doc *doc, bool members, char *err,
		   size_t errlen)
{
	size_t		start = skip_ws(s, n, 0);
	bool		oom = false;

	memset(doc, 0, sizeof(*doc));
	err[0] = '\0';
	if (start == n)
	{
		snprintf(err, errlen, "body is empty");
		return false;
	}
	if (members && s[start] == '{')
	{
		doc->object = true;
		if (list_members(s, n, doc, &oom))
			return true;
		json_doc_free(doc);
		if (oom)
			snprintf(err, errlen, "out of memory");
		else
			explain(s, n, err, errlen);
		return false;
	}
	doc->root = json_loadb(s, n, JSON_LOAD_FLAGS, NULL);
	if (doc->root == NULL || too_deep(doc->root, 1))
	{
		json_doc_free(doc);
		explain(s, n, err, errlen);
		return false;
	}
	doc->object = json_is_object(doc->root);
	return true;
}

/* Release what json_check kept. */
void
json_doc_free(json_doc *doc)
{
	for (int i = 0; i < doc->nmembers; i++)
	{
		free(doc->members[i].key);
		json_decref(doc->members[i].value);
	}
	free(doc->members);
	json_decref(doc->root);
	memset(doc, 0, sizeof(*doc));
}

/* jansson's output callback: append to a PQExpBuffer. */
static int
append_cb(const char *buffer, size_t size, void *data)
{
	appendBinaryPQExpBuffer((PQExpBuffer) data, buffer, size);
	return PQExpBufferBroken((PQExpBuffer) data) ? -1 : 0;
}

/*
 * Append s[0..n), which must be valid UTF-8, as a JSON string literal.
 * False (nothing appended) when it is not, or memory ran out.
 */
bool
json_quote(PQExpBuffer buf, const char *s, size_t n)
{
	json_t	   *j = json_stringn(s, n);
	int			rc;

	if (j == NULL)
		return false;
	rc = json_dump_callback(j, append_cb, buf, JSON_ENCODE_ANY);
	json_decref(j);
	return rc == 0;
}

/* s as a malloc'd JSON string literal; NULL when not UTF-8 or no memory. */
char *
json_quote_new(const char *s)
{
	json_t	   *j = json_string(s);
	char	   *out;

	if (j == NULL)
		return NULL;
	out = json_dumps(j, JSON_ENCODE_ANY);
	json_decref(j);
	return out;
}
