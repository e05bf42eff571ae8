/*
 * json.h
 *		Request bodies read with jansson: a precise error for invalid JSON, a
 *		bounded nesting depth, and an object's top-level members as written.
 */
#ifndef PANKO_API_JSON_H
#define PANKO_API_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "pqexpbuffer.h"

/* Deeper bodies are refused (PostgreSQL's jsonb would take far more). */
#define JSON_MAX_DEPTH 256

/* One top-level member of an object, with the span of its value's text. */
typedef struct json_member
{
	char	   *key;			/* decoded key, malloc'd, NUL-free */
	size_t		key_len;
	size_t		value_start;	/* the value as written: s[start..end) */
	size_t		value_end;
	json_t	   *value;			/* the value as jansson decoded it */
} json_member;

/* A checked body: its value, or (members asked for) an object's members. */
typedef struct json_doc
{
	bool		object;			/* the value is an object */
	json_t	   *root;			/* the value; NULL when members are listed */
	json_member *members;		/* when members were asked for, in order */
	int			nmembers;		/* repeated names included */
} json_doc;

extern bool json_check(const char *s, size_t n, json_doc *doc, bool members,
					   char *err, size_t errlen);
extern void json_doc_free(json_doc *doc);
extern bool json_quote(PQExpBuffer buf, const char *s, size_t n);
extern char *json_quote_new(const char *s);

#endif
