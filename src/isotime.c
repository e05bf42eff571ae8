/*
 * isotime.c
 *		ISO 8601 timestamps and shortest round-trip floats, written the way
 *		Panko's Python API wrote them, so clients see the same strings.
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>

#include "common/shortest_dec.h"
#include "utils/datetime.h"

#include "isotime.h"

/* Read exactly n digits at *p; false if any is not a digit. */
static bool
ReadDigits(const char **p, const char *end, int n, int *result)
{
	int			v = 0;

	if (end - *p < n)
		return false;
	for (int i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*result = v;
	return true;
}

/*
 * Parse an ISO 8601 timestamp into UTC.  Accepted: YYYY-MM-DD, optionally
 * followed by T (or a space) and HH:MM[:SS[.fraction]], optionally followed
 * by Z or an offset +HH[:MM] / -HHMM.  No zone means UTC (as Ceilometer
 * writes them); an offset is converted; a bare date is midnight.  Fractions
 * finer than a microsecond are rounded.  On failure *problem says why.
 */
bool
PankoParseTimestamp(const char *s, int len, Timestamp *result,
					const char **problem)
{
	const char *p = s;
	const char *end = s + len;
	int			year,
				mon,
				mday,
				hour = 0,
				min = 0,
				sec = 0;
	int64		usec = 0;
	int64		offset_usec = 0;
	int64		days;

	*problem = NULL;
	while (p < end && isspace((unsigned char) *p))
		p++;
	while (end > p && isspace((unsigned char) end[-1]))
		end--;

	if (!ReadDigits(&p, end, 4, &year) || p >= end || *p++ != '-' ||
		!ReadDigits(&p, end, 2, &mon) || p >= end || *p++ != '-' ||
		!ReadDigits(&p, end, 2, &mday))
	{
		*problem = "expected an ISO 8601 timestamp such as 2024-01-02T03:04:05.123456";
		return false;
	}
	if (year < PANKO_MIN_YEAR || year > PANKO_MAX_YEAR)
	{
		*problem = "year must be between 1 and 9999";
		return false;
	}
	if (mon < 1 || mon > 12 || mday < 1 || mday > day_tab[isleap(year)][mon - 1])
	{
		*problem = "date out of range";
		return false;
	}

	if (p < end && (*p == 'T' || *p == 't' || *p == ' '))
	{
		p++;
		if (!ReadDigits(&p, end, 2, &hour) || p >= end || *p++ != ':' ||
			!ReadDigits(&p, end, 2, &min))
		{
			*problem = "expected a time of the form HH:MM[:SS[.ffffff]]";
			return false;
		}
		if (p < end && *p == ':')
		{
			p++;
			if (!ReadDigits(&p, end, 2, &sec))
			{
				*problem = "expected two digits of seconds";
				return false;
			}
			if (p < end && (*p == '.' || *p == ','))
			{
				int64		scale = 100000;
				int			ndigits = 0;
				bool		round_up = false;

				p++;
				while (p < end && *p >= '0' && *p <= '9')
				{
					if (ndigits < 6)
					{
						usec += (*p - '0') * scale;
						scale /= 10;
					}
					else if (ndigits == 6)
						round_up = (*p >= '5');
					ndigits++;
					p++;
				}
				if (ndigits == 0)
				{
					*problem = "expected digits after the decimal point";
					return false;
				}
				if (round_up)
					usec++;
			}
		}
		if (hour > 23 || min > 59 || sec > 59)
		{
			*problem = "time out of range";
			return false;
		}
	}

	if (p < end)
	{
		if ((*p == 'Z' || *p == 'z') && p + 1 == end)
			p++;
		else if (*p == '+' || *p == '-')
		{
			int			sign = (*p == '-') ? -1 : 1;
			int			oh,
						om = 0;

			p++;
			if (!ReadDigits(&p, end, 2, &oh))
			{
				*problem = "expected a zone offset such as +02:00";
				return false;
			}
			if (p < end && *p == ':')
				p++;
			if (p < end && !ReadDigits(&p, end, 2, &om))
			{
				*problem = "expected a zone offset such as +02:00";
				return false;
			}
			if (oh > 23 || om > 59)
			{
				*problem = "zone offset out of range";
				return false;
			}
			offset_usec = sign * ((int64) oh * USECS_PER_HOUR + (int64) om * USECS_PER_MINUTE);
		}
		if (p != end)
		{
			*problem = "unexpected characters after the timestamp";
			return false;
		}
	}

	days = (int64) date2j(year, mon, mday) - POSTGRES_EPOCH_JDATE;
	*result = days * USECS_PER_DAY
		+ (int64) hour * USECS_PER_HOUR
		+ (int64) min * USECS_PER_MINUTE
		+ (int64) sec * USECS_PER_SEC
		+ usec - offset_usec;

	/* An offset or rounding may push a value just outside the range. */
	{
		int64		lo = ((int64) date2j(PANKO_MIN_YEAR, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
		int64		hi = ((int64) date2j(PANKO_MAX_YEAR + 1, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;

		if (*result < lo || *result >= hi)
		{
			*problem = "year must be between 1 and 9999";
			return false;
		}
	}
	return true;
}

/*
 * Write a UTC timestamp as Python's datetime.isoformat() does: no zone,
 * microseconds only when they are not zero.
 */
void
PankoAppendTimestamp(StringInfo buf, Timestamp ts)
{
	int64		days = ts / USECS_PER_DAY;
	int64		rem = ts % USECS_PER_DAY;
	int			year,
				mon,
				mday;
	int			usec;

	if (rem < 0)
	{
		rem += USECS_PER_DAY;
		days--;
	}
	j2date((int) (days + POSTGRES_EPOCH_JDATE), &year, &mon, &mday);
	usec = (int) (rem % USECS_PER_SEC);
	rem /= USECS_PER_SEC;
	appendStringInfo(buf, "%04d-%02d-%02dT%02d:%02d:%02d",
					 year, mon, mday,
					 (int) (rem / 3600), (int) ((rem / 60) % 60), (int) (rem % 60));
	if (usec != 0)
		appendStringInfo(buf, ".%06d", usec);
}

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
