/*
 * numbers.c
 *		Integers and floats, read and written the way Panko's Python API
 *		did: strict decimal input, and floats printed as Python's repr().
 */
#include "postgres.h"

#include <errno.h>
#include <math.h>

#include "common/shortest_dec.h"

#include "numbers.h"

/*
 * Write a float as Python's repr(): the shortest digits that read back to
 * the same double (Ryu, via PostgreSQL), fixed notation with ".0" between
 * 1e-4 and 1e16, scientific with a two-digit exponent outside.
 */
void
PankoAppendFloat(StringInfo buf, float8 v)
{
	char		ryu[DOUBLE_SHORTEST_DECIMAL_LEN];
	char		digits[32];
	int			ndigits = 0;
	int			exp10 = 0;
	int			decpt;
	bool		seen_point = false;
	int			frac_digits = 0;
	char	   *p;

	if (isnan(v))
	{
		appendStringInfoString(buf, "nan");
		return;
	}
	if (isinf(v))
	{
		appendStringInfoString(buf, v < 0 ? "-inf" : "inf");
		return;
	}

	double_to_shortest_decimal_buf(v, ryu);
	p = ryu;
	if (*p == '-')
	{
		appendStringInfoChar(buf, '-');
		p++;
	}
	for (; *p && *p != 'e'; p++)
	{
		if (*p == '.')
		{
			seen_point = true;
			continue;
		}
		if (seen_point)
			frac_digits++;
		if (ndigits < (int) sizeof(digits) - 1)
			digits[ndigits++] = *p;
	}
	if (*p == 'e')
		exp10 = atoi(p + 1);
	digits[ndigits] = '\0';

	/* digits = d1 d2 ... with value d1d2...dn * 10^(exp10 - frac_digits) */
	{
		int			lead = 0;

		while (lead < ndigits - 1 && digits[lead] == '0')
			lead++;
		memmove(digits, digits + lead, ndigits - lead + 1);
		ndigits -= lead;
		while (ndigits > 1 && digits[ndigits - 1] == '0')
		{
			digits[--ndigits] = '\0';
			exp10++;
		}
		exp10 -= frac_digits;
	}
	if (ndigits == 1 && digits[0] == '0')
	{
		appendStringInfoString(buf, "0.0");
		return;
	}
	/* value = 0.d1d2...dn * 10^decpt */
	decpt = ndigits + exp10;

	if (decpt <= -4 || decpt > 16)
	{
		int			e = decpt - 1;

		appendStringInfoChar(buf, digits[0]);
		if (ndigits > 1)
		{
			appendStringInfoChar(buf, '.');
			appendStringInfoString(buf, digits + 1);
		}
		appendStringInfo(buf, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
	}
	else if (decpt <= 0)
	{
		appendStringInfoString(buf, "0.");
		for (int i = 0; i < -decpt; i++)
			appendStringInfoChar(buf, '0');
		appendStringInfoString(buf, digits);
	}
	else if (decpt >= ndigits)
	{
		appendStringInfoString(buf, digits);
		for (int i = 0; i < decpt - ndigits; i++)
			appendStringInfoChar(buf, '0');
		appendStringInfoString(buf, ".0");
	}
	else
	{
		appendBinaryStringInfo(buf, digits, decpt);
		appendStringInfoChar(buf, '.');
		appendStringInfoString(buf, digits + decpt);
	}
}

/* A base-10 int64 with optional sign and nothing else; false on overflow. */
bool
PankoParseInt64(const char *s, int len, int64 *result)
{
	const char *p = s;
	const char *end = s + len;
	bool		neg = false;
	uint64		v = 0;

	if (p < end && (*p == '+' || *p == '-'))
		neg = (*p++ == '-');
	if (p >= end)
		return false;
	for (; p < end; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
		if (v > (PG_UINT64_MAX - (*p - '0')) / 10)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (neg)
	{
		if (v > (uint64) PG_INT64_MAX + 1)
			return false;
		*result = (int64) (0 - v);
	}
	else
	{
		if (v > (uint64) PG_INT64_MAX)
			return false;
		*result = (int64) v;
	}
	return true;
}

/* A finite decimal float and nothing else (no hex, no inf/nan). */
bool
PankoParseFloat8(const char *s, int len, float8 *result)
{
	char	   *tmp;
	char	   *endp;
	double		v;
	bool		ok;

	if (len <= 0)
		return false;
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
			  c == '+' || c == '-'))
			return false;
	}
	tmp = pnstrdup(s, len);
	errno = 0;
	v = strtod(tmp, &endp);
	ok = (endp == tmp + len && endp != tmp && isfinite(v) &&
		  !(errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL)));
	pfree(tmp);
	if (ok)
		*result = v;
	return ok;
}
