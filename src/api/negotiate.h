/*
 * negotiate.h
 *		Reading the Accept, Content-Type, Host and Origin request headers.
 */
#ifndef PANKO_API_NEGOTIATE_H
#define PANKO_API_NEGOTIATE_H

#include <stdbool.h>

extern bool accept_allows_json(const char *accept);
extern bool media_type_is_json(const char *content_type);
extern bool host_header_valid(const char *host);
extern bool host_is_loopback(const char *host);
extern bool origin_allowed(const char *origin, const char *const *origins,
						   int norigins);

#endif
