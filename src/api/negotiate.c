/*
 * negotiate.c
 *		Reading Accept, Content-Type, Host and Origin request headers.
 */
#include "postgres_fe.h"

#include "negotiate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Trim spaces and tabs from both ends of s[0..*n); returns the new start. */
static const char *
trim(const char *s, size_t *n)
{
	while (*n > 0 && (*s == ' ' || *s == '\t'))
	{
		s++;
		(*n)--;
	}
	while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
		(*n)--;
	return s;
}

/* Case-insensitive equality of s[0..n) and word. */
static bool
token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* The q parameter of one media range is zero ("q=0", "q=0.000")? */
static bool
q_is_zero(const char *params, size_t n)
{
	while (n > 0)
	{
		const char *semi = memchr(params, ';', n);
		size_t		len = semi ? (size_t) (semi - params) : n;
		size_t		tl = len;
		const char *t = trim(params, &tl);

		if (tl >= 2 && (t[0] == 'q' || t[0] == 'Q') && t[1] == '=')
			return strtod(t + 2, NULL) <= 0.0;
		if (semi == NULL)
			break;
		params = semi + 1;
		n -= len + 1;
	}
	return false;
}

/*
 * Does an Accept header allow a JSON response?  Absent or empty means
 * anything; otherwise application/json, application/(any) or (any)/(any)
 * must be listed without q=0.
 */
bool
accept_allows_json(const char *accept)
{
	const char *p = accept;
	bool		any = false;

	if (accept == NULL)
		return true;
	while (*p)
	{
		size_t		len = strcspn(p, ",");
		const char *semi = memchr(p, ';', len);
		size_t		tl = semi ? (size_t) (semi - p) : len;
		const char *t = trim(p, &tl);

		if (tl > 0)
			any = true;
		if ((token_is(t, tl, "application/json") ||
			 token_is(t, tl, "application/*") ||
			 token_is(t, tl, "*/*")) &&
			!(semi && q_is_zero(semi + 1, len - (size_t) (semi - p) - 1)))
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return !any;
}

/*
 * Is a Content-Type application/json?  Parameters such as charset are
 * ignored; anything else (form encoding included) is not read as JSON.
 */
bool
media_type_is_json(const char *content_type)
{
	size_t		n;
	const char *t;

	if (content_type == NULL)
		return false;
	n = strcspn(content_type, ";");
	t = trim(content_type, &n);
	return token_is(t, n, "application/json");
}

/* A Host header safe to echo in the versions document's links. */
bool
host_header_valid(const char *host)
{
	size_t		n = strlen(host);

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char		c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr(".-_~:[]", c)))
			return false;
	}
	return true;
}

/*
 * Does a Host header name this machine by a loopback address?  localhost
 * (any case), an IPv4 literal in 127.0.0.0/8 or [::1] (any IPv6 spelling of
 * a loopback address), each with an optional :port.  Nothing that DNS
 * answers for: a rebinding attacker controls every other name.
 */
bool
host_is_loopback(const char *host)
{
	char		name[64];
	const char *port;
	size_t		n;
	struct in_addr a4;
	struct in6_addr a6;

	if (host[0] == '[')
	{
		const char *close = strchr(host, ']');

		if (close == NULL)
			return false;
		n = (size_t) (close - host - 1);
		port = close + 1;
		if (*port != '\0' && *port != ':')
			return false;
	}
	else
	{
		port = strchr(host, ':');
		n = port ? (size_t) (port - host) : strlen(host);
		if (port == NULL)
			port = "";
	}
	if (n == 0 || n >= sizeof(name))
		return false;
	if (*port == ':')
	{
		size_t		digits = strspn(port + 1, "0123456789");

		if (digits == 0 || digits > 5 || port[1 + digits] != '\0')
			return false;
	}
	memcpy(name, host[0] == '[' ? host + 1 : host, n);
	name[n] = '\0';
	if (host[0] == '[')
		return inet_pton(AF_INET6, name, &a6) == 1 &&
			(IN6_IS_ADDR_LOOPBACK(&a6) ||
			 (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127));
	if (strcasecmp(name, "localhost") == 0)
		return true;
	return inet_pton(AF_INET, name, &a4) == 1 &&
		(ntohl(a4.s_addr) >> 24) == 127;
}

/* Is this Origin one of the given CORS origins ("*" allows any)? */
bool
origin_allowed(const char *origin, const char *const *origins, int norigins)
{
	if (origin == NULL || *origin == '\0')
		return false;
	for (int i = 0; i < norigins; i++)
		if (strcmp(origins[i], "*") == 0 || strcmp(origins[i], origin) == 0)
			return true;
	return false;
}
