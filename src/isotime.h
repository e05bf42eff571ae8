/*
 * isotime.h
 *		ISO 8601 timestamps and floats the way Panko's API writes them.
 */
#ifndef PANKO_ISOTIME_H
#define PANKO_ISOTIME_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "utils/timestamp.h"

/* Range accepted for trait datetimes and event timestamps (Python's). */
#define PANKO_MIN_YEAR 1
#define PANKO_MAX_YEAR 9999

extern bool PankoParseTimestamp(const char *s, int len, Timestamp *result,
								const char **problem);
extern void PankoAppendTimestamp(StringInfo buf, Timestamp ts);
extern void PankoAppendFloat(StringInfo buf, float8 v);
extern bool PankoParseInt64(const char *s, int len, int64 *result);
extern bool PankoParseFloat8(const char *s, int len, float8 *result);

#endif							/* PANKO_ISOTIME_H */
