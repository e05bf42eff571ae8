/*
 * route.h
 *		Mapping a request path to one of Panko's v2 routes.
 */
#ifndef PANKO_API_ROUTE_H
#define PANKO_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum route_id
{
	ROUTE_NONE = 0,				/* no such route: 404 */
	ROUTE_ROOT,					/* / : versions document */
	ROUTE_HEALTH,				/* /healthcheck */
	ROUTE_CAPABILITIES,			/* /v2/capabilities */
	ROUTE_EVENTS,				/* /v2/events */
	ROUTE_EVENT,				/* /v2/events/{message_id} */
	ROUTE_EVENT_TYPES,			/* /v2/event_types */
	ROUTE_EVENT_TYPE,			/* /v2/event_types/{type}: always 404 */
	ROUTE_TRAIT_TYPES,			/* /v2/event_types/{type}/traits */
	ROUTE_TRAITS				/* /v2/event_types/{type}/traits/{name} */
} route_id;

typedef enum route_status
{
	ROUTE_OK = 0,
	ROUTE_NOT_FOUND,
	ROUTE_BAD_PATH				/* bad percent-encoding or UTF-8: 400 */
} route_status;

typedef struct route_match
{
	route_id	id;
	char	   *arg[2];			/* decoded path parameters, malloc'd */
} route_match;

#define ROUTE_GET	0x1
#define ROUTE_POST	0x2

extern route_status route_find(const char *path, size_t len,
							   const char *prefix, route_match *m,
							   char *err, size_t errlen);
extern void route_match_free(route_match *m);
extern unsigned route_methods(route_id id);
extern const char *route_allow(route_id id);

#endif
