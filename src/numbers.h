/*
 * numbers.h
 *		Integers and floats the way Panko's API reads and writes them.
 */
#ifndef PANKO_NUMBERS_H
#define PANKO_NUMBERS_H

#include "postgres.h"
#include "lib/stringinfo.h"

extern void PankoAppendFloat(StringInfo buf, float8 v);
extern bool PankoParseInt64(const char *s, int len, int64 *result);
extern bool PankoParseFloat8(const char *s, int len, float8 *result);

#endif							/* PANKO_NUMBERS_H */
