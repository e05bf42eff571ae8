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
	/* --auth keystone */
	char	   *ks_url;
	char	   *ks_user;
	char	   *ks_password_file;
	char	   *ks_password;	/* from the file, or PANKO_API_KEYSTONE_PASSWORD */
	char	   *ks_project;
	char	   *ks_user_domain;
	char	   *ks_project_domain;
	char	   *ks_app_cred_id;
	char	   *ks_app_cred_secret_file;
	char	   *ks_app_cred_secret; /* from the file, or the environment */
	char	   *ks_cafile;
	long		ks_connect_timeout;	/* seconds */
	long		ks_timeout;		/* seconds */
	long		token_cache_size;
	long		token_cache_time;	/* seconds */
	long		token_negative_cache_time;	/* seconds */
} api_config;

extern int	config_load(int argc, char **argv, api_config *out);

#endif
