/*
 * config.h
 *		panko-api's settings, filled once from flags and environment.
 */
#ifndef PANKO_API_CONFIG_H
#define PANKO_API_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#ifndef PANKO_API_VERSION
#define PANKO_API_VERSION "0.1.0"
#endif

#define MAX_CORS_ORIGINS 32

typedef enum auth_mode
{
	AUTH_KEYSTONE_HEADERS,
	AUTH_NONE
} auth_mode;

typedef struct api_config
{
	char	   *listen;			/* HOST:PORT as given */
	struct sockaddr_storage addr;	/* resolved listen address */
	socklen_t	addrlen;
	bool		loopback;		/* addr is a loopback address */
	char	   *db;				/* libpq conninfo or URI ("" = libpq env) */
	auth_mode	auth;
	char	   *cors_origins[MAX_CORS_ORIGINS];
	int			ncors;
	char	   *prefix;			/* "" or "/path" without trailing slash */
	int			threads;
	long		max_limit;		/* 0 = no cap */
	int			max_filters;	/* most q items (and sort keys) per query */
	int			statement_timeout;	/* seconds; 0 = leave the database's */
	size_t		max_body;
	unsigned	timeout;		/* seconds */
	char	   *log_file;		/* NULL = stderr */
} api_config;

extern api_config config;

extern int	config_load(int argc, char **argv);

#endif
