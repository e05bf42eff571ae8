/*
 * route.c
 *		Path matching for Panko's v2 routes.
 *
 * The path is matched segment by segment after strict percent-decoding, so
 * a message_id or event type may contain any character (a '/' as %2F).
 * One trailing slash is accepted everywhere, because the openstack CLI
 * sends /v2/event_types/ and /v2/capabilities/.
 */
#include "postgres_fe.h"

#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urlcodec.h"

#define MAX_SEGMENTS 6

/* Free the decoded path parameters. */
void
route_match_free(route_match *m)
{
	free(m->arg[0]);
	free(m->arg[1]);
	m->arg[0] = m->arg[1] = NULL;
	m->id = ROUTE_NONE;
}

/* Which methods a route answers (HEAD and OPTIONS go with GET). */
unsigned
route_methods(route_id id)
{
	switch (id)
	{
		case ROUTE_NONE:
			return 0;
		case ROUTE_EVENTS:
			return ROUTE_GET | ROUTE_POST;
		default:
			return ROUTE_GET;
	}
}

/* The Allow header of a route, for 405 and OPTIONS. */
const char *
route_allow(route_id id)
{
	return (route_methods(id) & ROUTE_POST) ? "GET, HEAD, POST, OPTIONS"
		: "GET, HEAD, OPTIONS";
}

/* Segment k equals word? */
static bool
seg_is(char **seg, int k, const char *word)
{
	return strcmp(seg[k], word) == 0;
}

/* Decide the route from the decoded segments; keeps parameters in m. */
static route_id
match_segments(char **seg, int n, route_match *m)
{
	if (n == 0)
		return ROUTE_ROOT;
	if (n == 1)
		return seg_is(seg, 0, "healthcheck") ? ROUTE_HEALTH : ROUTE_NONE;
	if (!seg_is(seg, 0, "v2"))
		return ROUTE_NONE;
	if (seg_is(seg, 1, "capabilities"))
		return n == 2 ? ROUTE_CAPABILITIES : ROUTE_NONE;
	if (seg_is(seg, 1, "events"))
	{
		if (n == 2)
			return ROUTE_EVENTS;
		if (n == 3)
		{
			m->arg[0] = seg[2];
			seg[2] = NULL;
			return ROUTE_EVENT;
		}
		return ROUTE_NONE;
	}
	if (!seg_is(seg, 1, "event_types"))
		return ROUTE_NONE;
	if (n == 2)
		return ROUTE_EVENT_TYPES;
	if (n == 3)
		return ROUTE_EVENT_TYPE;
	if (!seg_is(seg, 3, "traits"))
		return ROUTE_NONE;
	m->arg[0] = seg[2];
	seg[2] = NULL;
	if (n == 4)
		return ROUTE_TRAIT_TYPES;
	if (n == 5)
	{
		m->arg[1] = seg[4];
		seg[4] = NULL;
		return ROUTE_TRAITS;
	}
	return ROUTE_NONE;
}

/*
 * Match the raw request path (no query string) under prefix ("" or
 * "/path").  Paths outside the prefix, empty segments and unknown paths
 * are ROUTE_NOT_FOUND; undecodable ones ROUTE_BAD_PATH with err set.
 */
route_status
route_find(const char *path, size_t len, const char *prefix,
		   route_match *m, char *err, size_t errlen)
{
	size_t		plen = strlen(prefix);
	char	   *seg[MAX_SEGMENTS];
	int			n = 0;
	size_t		pos;
	route_status rs = ROUTE_OK;

	memset(m, 0, sizeof(*m));
	if (len < plen || memcmp(path, prefix, plen) != 0 ||
		(len > plen && path[plen] != '/'))
		return ROUTE_NOT_FOUND;
	path += plen;
	len -= plen;
	if (len == 0)
	{
		m->id = ROUTE_ROOT;
		return ROUTE_OK;
	}
	/* one trailing slash is accepted; the root is "/" itself */
	if (len > 1 && path[len - 1] == '/')
	{
		len--;
		if (len == 1)
			return ROUTE_NOT_FOUND; /* "//" */
	}
	pos = 1;
	while (pos < len)
	{
		const char *slash = memchr(path + pos, '/', len - pos);
		size_t		end = slash ? (size_t) (slash - path) : len;
		size_t		dlen;
		url_status	st;

		if (end == pos || n == MAX_SEGMENTS)
		{
			rs = ROUTE_NOT_FOUND;
			break;
		}
		st = url_decode(path + pos, end - pos, false, &seg[n], &dlen);
		if (st != URL_OK)
		{
			snprintf(err, errlen, "Invalid path: %s", url_status_text(st));
			rs = ROUTE_BAD_PATH;
			break;
		}
		n++;
		pos = end + 1;
		if (slash && pos == len)
		{
			/* "//" at the end: an empty last segment */
			rs = ROUTE_NOT_FOUND;
			break;
		}
	}
	if (rs == ROUTE_OK)
	{
		m->id = match_segments(seg, n, m);
		if (m->id == ROUTE_NONE)
			rs = ROUTE_NOT_FOUND;
	}
	for (int i = 0; i < n; i++)
		free(seg[i]);
	if (rs != ROUTE_OK)
		route_match_free(m);
	return rs;
}
