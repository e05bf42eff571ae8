/*
 * isotime.c
 *		ISO 8601 timestamps, read and written the way Panko's Python API
 *		did, so clients see the same strings.
 */
#include "postgres.h"

#include <ctype.h>

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
	if (!PankoTimestampInRange(*result))
	{
		*problem = "year must be between 1 and 9999";
		return false;
	}
	return true;
}

/*
 * Is ts within years 1 to 9999?  Python's datetime holds no other, so
 * neither do trait datetimes and event timestamps: clients could not read
 * them back.
 */
bool
PankoTimestampInRange(Timestamp ts)
{
	int64		lo = ((int64) date2j(PANKO_MIN_YEAR, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
	int64		hi = ((int64) date2j(PANKO_MAX_YEAR + 1, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;

	return ts >= lo && ts < hi;
}

/* Two decimal digits of v (0..99) at p. */
static inline char *
Put2(char *p, int v)
{
	p[0] = (char) ('0' + v / 10);
	p[1] = (char) ('0' + v % 10);
	return p + 2;
}

/*
 * Write a UTC timestamp as Python's datetime.isoformat() does: no zone,
 * microseconds only when they are not zero.  Written digit by digit: every
 * event and every datetime trait of an API answer comes through here.
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
	int			secs;
	char		tmp[32];
	char	   *p = tmp;

	if (rem < 0)
	{
		rem += USECS_PER_DAY;
		days--;
	}
	j2date((int) (days + POSTGRES_EPOCH_JDATE), &year, &mon, &mday);
	usec = (int) (rem % USECS_PER_SEC);
	secs = (int) (rem / USECS_PER_SEC);
	if (year < 0 || year > 9999)
	{
		/* outside what Panko stores; written as before, never truncated */
		appendStringInfo(buf, "%04d-%02d-%02dT%02d:%02d:%02d",
						 year, mon, mday, secs / 3600, (secs / 60) % 60, secs % 60);
		if (usec != 0)
			appendStringInfo(buf, ".%06d", usec);
		return;
	}
	p = Put2(p, year / 100);
	p = Put2(p, year % 100);
	*p++ = '-';
	p = Put2(p, mon);
	*p++ = '-';
	p = Put2(p, mday);
	*p++ = 'T';
	p = Put2(p, secs / 3600);
	*p++ = ':';
	p = Put2(p, (secs / 60) % 60);
	*p++ = ':';
	p = Put2(p, secs % 60);
	if (usec != 0)
	{
		*p++ = '.';
		for (int i = 5; i >= 0; i--)
		{
			p[i] = (char) ('0' + usec % 10);
			usec /= 10;
		}
		p += 6;
	}
	appendBinaryStringInfo(buf, tmp, (int) (p - tmp));
}
