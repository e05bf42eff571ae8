/*
 * json.h
 *		A strict JSON checker that also reports an object's top-level members.
 */
#ifndef PANKO_API_JSON_H
#define PANKO_API_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define JSON_MAX_DEPTH 256

typedef enum json_type
{
	JSON_NONE = 0,
	JSON_OBJECT,
	JSON_ARRAY,
	JSON_STRING,
	JSON_NUMBER,
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL
} json_type;

/* One top-level member of an object: spans index into the scanned text. */
typedef struct json_member
{
	char	   *key;			/* decoded key, malloc'd, NUL-free */
	size_t		key_len;
	size_t		raw_key_start;	/* the quoted key as written */
	size_t		raw_key_end;
	size_t		value_start;
	size_t		value_end;
	json_type	value_type;
	int			nitems;			/* elements, when the value is an array */
} json_member;

typedef struct json_doc
{
	json_type	type;			/* type of the top-level value */
	json_member *members;		/* only when type == JSON_OBJECT */
	int			nmembers;
	int			cap;			/* allocated members */
} json_doc;

extern bool json_scan(const char *s, size_t n, json_doc *doc,
					  char *err, size_t errlen);
extern void json_doc_free(json_doc *doc);
extern bool json_string_decode(const char *s, size_t n, strbuf *out);
extern const char *json_type_name(json_type t);

#endif
