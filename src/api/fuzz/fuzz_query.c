/*
 * fuzz_query.c
 *		libFuzzer target for the GET /v2/events parameter parser.
 *
 * Input: a raw query string, optionally followed by '\n' and a JSON body.
 * Properties checked: no crash or sanitizer report, a failure always
 * carries a message, and every success produces a JSON object that the
 * strict checker accepts (what PostgreSQL will parse as jsonb).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "query.h"
#include "urlcodec.h"

/* Abort with a recognisable frame when a property does not hold. */
static void
property_failed(void)
{
	abort();
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

	if (qs == NULL)
		return 0;
	memcpy(qs, s, qlen);
	qs[qlen] = '\0';
	checked = qs_check(qs, qlen, err, sizeof(err));
	if (qs_parse(qs, qlen, 50, &qp, err, sizeof(err)))
	{
		strbuf		out;

		if (!checked)
			property_failed();
		sb_init(&out);
		if (params_build(&qp, body, blen, 50, &out, err, sizeof(err)))
		{
			json_doc	doc;
			char		jerr[160];

			if (!json_scan(out.data, out.len, &doc, jerr, sizeof(jerr)) ||
				doc.type != JSON_OBJECT)
				property_failed();
			json_doc_free(&doc);
		}
		else if (err[0] == '\0')
			property_failed();
		sb_free(&out);
		qs_params_free(&qp);
	}
	else if (err[0] == '\0')
		property_failed();
	utf8_sanitize(err);
	if (!utf8_valid(err, strlen(err)))
		property_failed();
	free(qs);
	return 0;
}
