/*
 * fuzz_query.c
 *		libFuzzer target for the GET /v2/events parameter parser.
 *
 * Input: a raw query string, optionally followed by '\n' and a JSON body.
 * Properties checked: no crash or sanitizer report; a failure always
 * carries a message, and every message is valid UTF-8 as produced (it is
 * never cut inside a character); every success produces a JSON object that
 * jansson accepts (what PostgreSQL will parse as jsonb), whose
 * names are q, limit, sort and marker at most once each, whose limit is
 * always there as a JSON integer from 1 to the cap, and whose q and sort
 * lists are within the bound.  limit_parse accepts only -?[0-9]+.
 */
#include "postgres_fe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "query.h"
#include "urlcodec.h"

#define FUZZ_MAX_LIMIT 50
#define FUZZ_MAX_FILTERS 5

/* Abort with a recognisable frame when a property does not hold. */
static void
property_failed(void)
{
	abort();
}

/* Is s[0..n) an optional '-' and one or more decimal digits? */
static bool
integer_text(const char *s, size_t n)
{
	size_t		i = (n > 0 && s[0] == '-') ? 1 : 0;

	if (i == n)
		return false;
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* The properties of a params document that params_build produced. */
static void
check_params(const PQExpBufferData *out)
{
	json_doc	doc;
	char		jerr[JSON_ERROR_TEXT_LENGTH + 32];
	bool		seen_limit = false;
	static const char *const names[] = {"q", "limit", "sort", "marker"};
	int			seen[4] = {0};

	if (!json_check(out->data, out->len, &doc, true, jerr, sizeof(jerr)) ||
		!doc.object)
		property_failed();
	for (int i = 0; i < doc.nmembers; i++)
	{
		const json_member *m = &doc.members[i];
		int			k = -1;

		for (int j = 0; j < 4; j++)
			if (strcmp(m->key, names[j]) == 0)
				k = j;
		if (k < 0 || seen[k]++)
			property_failed();
		if (k == 1)
		{
			const char *v = out->data + m->value_start;
			size_t		n = m->value_end - m->value_start;
			json_int_t	lim;

			seen_limit = true;
			if (!json_is_integer(m->value) || !integer_text(v, n))
				property_failed();
			lim = json_integer_value(m->value);
			if (lim < 1 || lim > FUZZ_MAX_LIMIT)
				property_failed();
		}
		if ((k == 0 || k == 2) && json_is_array(m->value) &&
			json_array_size(m->value) > FUZZ_MAX_FILTERS)
			property_failed();
	}
	if (!seen_limit)
		property_failed();
	json_doc_free(&doc);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One fuzzing iteration. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *) data;
	const char *nl = memchr(s, '\n', size);
	size_t		qlen = nl ? (size_t) (nl - s) : size;
	const char *body = nl ? nl + 1 : NULL;
	size_t		blen = nl ? size - qlen - 1 : 0;
	char	   *qs = malloc(qlen + 1);
	qs_params	qp;
	char		err[256];
	bool		checked;
	long		lim;

	if (qs == NULL)
		return 0;
	if (limit_parse(s, size, &lim) != LIMIT_INVALID &&
		!integer_text(s, size))
		property_failed();
	memcpy(qs, s, qlen);
	qs[qlen] = '\0';
	checked = qs_check(qs, qlen, err, sizeof(err));
	if (qs_parse(qs, qlen, FUZZ_MAX_FILTERS, &qp, err, sizeof(err)))
	{
		PQExpBufferData out;

		if (!checked)
			property_failed();
		initPQExpBuffer(&out);
		if (params_build(&qp, body, blen, FUZZ_MAX_LIMIT, FUZZ_MAX_FILTERS,
						 &out, err, sizeof(err)))
			check_params(&out);
		else if (err[0] == '\0')
			property_failed();
		termPQExpBuffer(&out);
		qs_params_free(&qp);
	}
	else if (err[0] == '\0')
		property_failed();
	/* messages quote only decoded, validated input: UTF-8 as they are */
	if (!utf8_valid(err, strlen(err)))
		property_failed();
	free(qs);
	return 0;
}
