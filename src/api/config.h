/*
 * config.h
 *		panko-api's settings, filled once from flags and environment.
 *		PANKO_API_VERSION comes from the Makefile (panko.control).
 */
#ifndef PANKO_API_CONFIG_H
#define PANKO_API_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "auth.h"

#define MAX_CORS_ORIGINS 32

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
	long		threads;
	long		max_limit;		/* 0 = no cap */
	long		max_filters;	/* most q items (and sort keys) per query */
	long		statement_timeout;	/* seconds; 0 = leave the database's */
	long		max_body;
	long		timeout;		/* seconds */
	char	   *log_file;		/* NULL = stderr */
} api_config;

extern int	config_load(int argc, char **argv, api_config *out);

#endif
