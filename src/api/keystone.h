/*
 * keystone.h
 *		Validating Keystone tokens as keystonemiddleware does: panko-api's own
 *		service token, GET /v3/auth/tokens?nocatalog, and a bounded cache.
 */
#ifndef PANKO_API_KEYSTONE_H
#define PANKO_API_KEYSTONE_H

#include <stdbool.h>
#include <stddef.h>

/* How to reach Keystone and how long to trust its answers. */
typedef struct ks_settings
{
	const char *url;			/* with or without /v3 */
	const char *user;			/* password method: user, password, project */
	const char *password;
	const char *project;
	const char *user_domain;	/* names; Default */
	const char *project_domain;
	const char *app_cred_id;	/* or an application credential */
	const char *app_cred_secret;
	const char *cafile;			/* NULL: the system's CAs */
	long		connect_timeout;	/* seconds */
	long		timeout;		/* seconds, a whole call */
	long		cache_size;		/* entries */
	long		cache_time;		/* seconds a valid token is kept */
	long		negative_time;	/* seconds an invalid token is remembered */
} ks_settings;

/* What a token is, for this request. */
typedef enum ks_status
{
	KS_VALID,					/* identity filled */
	KS_INVALID,					/* 401: missing, malformed, expired, revoked,
								 * unscoped */
	KS_UNAVAILABLE				/* 503: Keystone cannot answer */
} ks_status;

/* A validated token's identity, the caller's own copy. */
typedef struct ks_identity
{
	char	   *user_id;
	char	   *project_id;
	char	   *roles;			/* role names, comma-separated */
} ks_identity;

/* How the first service token went. */
typedef enum ks_start
{
	KS_START_OK,
	KS_START_UNREACHABLE,		/* start anyway: 503 until Keystone answers */
	KS_START_REJECTED			/* Keystone refused the credentials: stop */
} ks_start;

extern ks_start ks_init(const ks_settings *s, char *why, size_t whylen);
extern const char *ks_www_authenticate(void);
extern ks_status ks_validate(const char *token, ks_identity *out,
							 char *why, size_t whylen);
extern void ks_identity_free(ks_identity *id);

#endif
