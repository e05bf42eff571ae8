/*
 * main.c
 *		panko-api: start, wait for signals, drain and stop.
 *
 * Signals are blocked in every thread and taken synchronously here with
 * sigwait(), so the handlers can do real work (reopen a file, stop the
 * daemon) without async-signal-safety concerns.
 */
#include "postgres_fe.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "http.h"
#include "keystone.h"
#include "log.h"

/* Seconds to wait for in-flight requests after SIGTERM. */
#define DRAIN_SECONDS 30

/* Sleep a few milliseconds. */
static void
nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * Stop accepting, let in-flight requests finish (bounded), then stop the
 * daemon.  Idle keep-alive connections are closed by MHD_stop_daemon.
 */
static void
drain_and_stop(struct MHD_Daemon *daemon)
{
	MHD_socket	listen_fd;
	int			waited = 0;

	http_set_draining();
	listen_fd = MHD_quiesce_daemon(daemon);
	while (http_in_flight() > 0 && waited < DRAIN_SECONDS * 100)
	{
		nap(10);
		waited++;
	}
	if (http_in_flight() > 0)
		log_msg("stopping with %d requests still in flight", http_in_flight());
	MHD_stop_daemon(daemon);
	if (listen_fd != MHD_INVALID_SOCKET)
		close(listen_fd);
}

/* Say why the server does not start, on stderr and in the log file. */
static bool
refuse_start(const api_config *config, const char *why)
{
	fprintf(stderr, "panko-api: refusing to start: %s\n", why);
	if (config->log_file)
		log_msg("refusing to start: %s", why);
	return false;
}

/*
 * Fail closed: a login role that bypasses row-level security would show
 * every tenant everything, so the server does not start with one.  A
 * database that cannot be reached yet is not fatal (503 until it is).
 */
static bool
database_role_allowed(const api_config *config)
{
	char		why[1024];

	switch (db_check(why, sizeof(why)))
	{
		case DB_OPEN_OK:
			return true;
		case DB_OPEN_FAILED:
			log_msg("%s", why);
			return true;
		case DB_OPEN_REFUSED:
			break;
	}
	return refuse_start(config, why);
}

/*
 * --auth keystone: the first service token.  Credentials that Keystone
 * refuses stop the server; a Keystone that cannot be reached does not
 * (requests answer 503 until it answers, and the token is fetched then).
 */
static bool
keystone_started(const api_config *config)
{
	char		why[1024];
	ks_settings s = {
		.url = config->ks_url,
		.user = config->ks_user,
		.password = config->ks_password,
		.project = config->ks_project,
		.user_domain = config->ks_user_domain,
		.project_domain = config->ks_project_domain,
		.app_cred_id = config->ks_app_cred_id && *config->ks_app_cred_id
		? config->ks_app_cred_id : NULL,
		.app_cred_secret = config->ks_app_cred_secret,
		.cafile = config->ks_cafile && *config->ks_cafile ? config->ks_cafile : NULL,
		.connect_timeout = config->ks_connect_timeout,
		.timeout = config->ks_timeout,
		.cache_size = config->token_cache_size,
		.cache_time = config->token_cache_time,
		.negative_time = config->token_negative_cache_time,
	};

	switch (ks_init(&s, why, sizeof(why)))
	{
		case KS_START_OK:
			return true;
		case KS_START_UNREACHABLE:
			log_msg("Keystone cannot be reached yet (%s): starting anyway; "
					"requests with a token answer 503 until it answers", why);
			return true;
		case KS_START_REJECTED:
			break;
	}
	return refuse_start(config, why);
}

/* Parse settings, serve until SIGTERM/SIGINT, exit 0 after draining. */
int
main(int argc, char **argv)
{
	api_config	config;
	handler_settings handlers;
	http_settings hs;
	struct MHD_Daemon *daemon;
	sigset_t	set;
	int			rc;
	int			sig;

	rc = config_load(argc, argv, &config);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (log_open(config.log_file) != 0)
	{
		fprintf(stderr, "panko-api: cannot open log file \"%s\": %s\n",
				config.log_file, strerror(errno));
		return 1;
	}

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	db_init(config.db, (int) config.statement_timeout);
	if (!database_role_allowed(&config))
		return 1;
	if (config.auth == AUTH_KEYSTONE && !keystone_started(&config))
		return 1;
	handlers = (handler_settings) {
		.auth = config.auth,
		.listen = config.listen,
		.prefix = config.prefix,
		.max_limit = config.max_limit,
		.max_filters = (int) config.max_filters,
	};
	hs = (http_settings) {
		.addr = (const struct sockaddr *) &config.addr,
		.threads = (int) config.threads,
		.timeout = (unsigned) config.timeout,
		.max_body = (size_t) config.max_body,
		.prefix = config.prefix,
		.loopback_hosts_only = config.auth == AUTH_NONE,
		.identity_headers = config.auth != AUTH_KEYSTONE,
		.cors_origins = (const char *const *) config.cors_origins,
		.ncors = config.ncors,
		.handlers = &handlers,
	};
	daemon = http_start(&hs);
	if (daemon == NULL)
	{
		log_msg("cannot listen on %s", config.listen);
		return 1;
	}
	log_msg("listening on %s (auth %s, %ld threads, prefix \"%s\")",
			config.listen,
			auth_mode_name(config.auth),
			config.threads, config.prefix);

	for (;;)
	{
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
		{
			if (log_reopen() != 0)
				log_msg("cannot reopen log file: %s", strerror(errno));
			else
				log_msg("log reopened");
			continue;
		}
		log_msg("received signal %d, draining %d in-flight requests",
				sig, http_in_flight());
		break;
	}
	drain_and_stop(daemon);
	log_msg("stopped");
	return 0;
}
