/*
 * isotime.h
 *		ISO 8601 timestamps the way Panko's API reads and writes them.
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
extern bool PankoTimestampInRange(Timestamp ts);
extern void PankoAppendTimestamp(StringInfo buf, Timestamp ts);

#endif							/* PANKO_ISOTIME_H */
