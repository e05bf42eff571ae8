/*
 * c->c
 *		Command-line flags and their environment variables.
 *
 * Every flag can also come from a PANKO_API_* variable so that the server
 * can be configured by a service manager or container without a wrapper
 * script; a flag given on the command line wins over its variable.
 */
#include "postgres_fe.h"

#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static const char usage_text[] =
"panko-api " PANKO_API_VERSION ": OpenStack Panko's v2 HTTP API over the panko extension\n"
"\n"
"Usage: panko-api [OPTION]...\n"
"\n"
"Each option can also be set with the environment variable shown; the\n"
"command line wins.\n"
"\n"
"  --listen HOST:PORT     address to listen on; IPv6 as [::1]:8977\n"
"                         (PANKO_API_LISTEN, default 127.0.0.1:8977)\n"
"  --db CONNINFO          libpq connection string or URI; empty means libpq's\n"
"                         PG* environment variables (PANKO_API_DB)\n"
"  --auth MODE            keystone: validate each request's X-Auth-Token with\n"
"                         Keystone (the --keystone-* options below);\n"
"                         keystone-headers: trust X-User-Id, X-Project-Id and\n"
"                         X-Roles set by Keystone's middleware or a gateway;\n"
"                         none: every caller is an admin seeing all projects,\n"
"                         allowed only on a loopback address, answering only\n"
"                         requests whose Host is localhost, 127.x.x.x or [::1]\n"
"                         (PANKO_API_AUTH, default keystone-headers)\n"
"  --cors-origin ORIGIN   allow this CORS origin; repeatable\n"
"                         (PANKO_API_CORS_ORIGIN, space- or comma-separated)\n"
"  --prefix /PATH         serve under this path prefix, e.g. /telemetry\n"
"                         (PANKO_API_PREFIX, default none)\n"
"  --threads N            HTTP worker threads, one database connection each\n"
"                         (PANKO_API_THREADS, default twice the CPU count)\n"
"  --max-limit N          the most events one GET /v2/events returns: a larger\n"
"                         limit, or the default of 100, is replaced by N;\n"
"                         0 for no cap (PANKO_API_MAX_LIMIT, default 10000)\n"
"  --max-filters N        the most q filters (and sort keys) in one query;\n"
"                         more answer 400 (PANKO_API_MAX_FILTERS, default 100)\n"
"  --statement-timeout SECONDS\n"
"                         cancel a database statement running this long and\n"
"                         answer 503; 0 leaves the database's own setting\n"
"                         (PANKO_API_STATEMENT_TIMEOUT, default 10)\n"
"  --max-body BYTES       largest request body; larger ones answer 413\n"
"                         (PANKO_API_MAX_BODY, default 10485760)\n"
"  --timeout SECONDS      close connections idle or stalled this long\n"
"                         (PANKO_API_TIMEOUT, default 30)\n"
"  --log FILE             append the request log to FILE, reopened on SIGHUP\n"
"                         (PANKO_API_LOG, default standard error)\n"
"\n"
"With --auth keystone (every request but / and /healthcheck needs a token;\n"
"identity headers are ignored):\n"
"  --keystone-url URL     Keystone, with or without /v3 (PANKO_API_KEYSTONE_URL)\n"
"  --keystone-user NAME   panko-api's service user (PANKO_API_KEYSTONE_USER)\n"
"  --keystone-password-file FILE\n"
"                         its password, the file's first line\n"
"                         (PANKO_API_KEYSTONE_PASSWORD_FILE; or the password\n"
"                         itself in PANKO_API_KEYSTONE_PASSWORD)\n"
"  --keystone-project NAME\n"
"                         the project of its token (PANKO_API_KEYSTONE_PROJECT)\n"
"  --keystone-user-domain NAME, --keystone-project-domain NAME\n"
"                         (PANKO_API_KEYSTONE_USER_DOMAIN,\n"
"                         PANKO_API_KEYSTONE_PROJECT_DOMAIN, default Default)\n"
"  --keystone-app-credential-id ID, --keystone-app-credential-secret-file FILE\n"
"                         an application credential instead of a password\n"
"                         (PANKO_API_KEYSTONE_APP_CREDENTIAL_ID,\n"
"                         PANKO_API_KEYSTONE_APP_CREDENTIAL_SECRET_FILE; or the\n"
"                         secret in PANKO_API_KEYSTONE_APP_CREDENTIAL_SECRET)\n"
"  --keystone-cafile FILE CA certificates for an https:// Keystone\n"
"                         (PANKO_API_KEYSTONE_CAFILE, default the system's)\n"
"  --keystone-connect-timeout SECONDS, --keystone-timeout SECONDS\n"
"                         (PANKO_API_KEYSTONE_CONNECT_TIMEOUT, default 2;\n"
"                         PANKO_API_KEYSTONE_TIMEOUT, default 5)\n"
"  --token-cache-size N   validated tokens kept in memory\n"
"                         (PANKO_API_TOKEN_CACHE_SIZE, default 10000)\n"
"  --token-cache-time SECONDS\n"
"                         how long a validated token is trusted, never past\n"
"                         its expiry (PANKO_API_TOKEN_CACHE_TIME, default 300)\n"
"  --token-negative-cache-time SECONDS\n"
"                         how long an invalid token is remembered\n"
"                         (PANKO_API_TOKEN_NEGATIVE_CACHE_TIME, default 5)\n"
"Keystone refusing the service credentials at start is fatal; Keystone\n"
"unreachable is not: requests answer 503 until it answers.\n"
"  --help                 show this help and exit\n"
"  --version              show the version and exit\n"
"\n"
"The database role must not be a superuser, have BYPASSRLS or own the\n"
"event table, since row-level security separates the tenants: panko-api\n"
"refuses to start (and to serve on a reconnection) with such a role.  Use\n"
"  CREATE ROLE panko_http LOGIN IN ROLE panko_api\n"
"\n"
"Signals: SIGTERM or SIGINT stops accepting, finishes in-flight requests\n"
"and exits 0; SIGHUP reopens the log file.\n";

enum
{
	OPT_LISTEN = 256,
	OPT_DB,
	OPT_AUTH,
	OPT_CORS,
	OPT_PREFIX,
	OPT_THREADS,
	OPT_MAX_LIMIT,
	OPT_MAX_FILTERS,
	OPT_STATEMENT_TIMEOUT,
	OPT_MAX_BODY,
	OPT_TIMEOUT,
	OPT_LOG,
	OPT_KS_URL,
	OPT_KS_USER,
	OPT_KS_PASSWORD_FILE,
	OPT_KS_PROJECT,
	OPT_KS_USER_DOMAIN,
	OPT_KS_PROJECT_DOMAIN,
	OPT_KS_APP_CRED_ID,
	OPT_KS_APP_CRED_SECRET_FILE,
	OPT_KS_CAFILE,
	OPT_KS_CONNECT_TIMEOUT,
	OPT_KS_TIMEOUT,
	OPT_TOKEN_CACHE_SIZE,
	OPT_TOKEN_CACHE_TIME,
	OPT_TOKEN_NEGATIVE_CACHE_TIME,
	OPT_HELP,
	OPT_VERSION
};

/* Complain about a bad setting in the usual "program: message" form. */
static int
bad(const char *what, const char *value, const char *why)
{
	fprintf(stderr, "panko-api: invalid %s \"%s\": %s\n", what, value, why);
	return -1;
}

/* Parse a decimal integer in [lo, hi]. */
static bool
parse_long(const char *s, long lo, long hi, long *out)
{
	char	   *end;
	long		v;

	if (*s == '\0' || !isdigit((unsigned char) *s))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Is the resolved address loopback (127/8, ::1, or ::ffff:127/104)? */
static bool
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
	{
		const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6)
	{
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
			in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

/* Resolve HOST:PORT (or [V6]:PORT) into c->addr. */
static int
set_listen(api_config *c, const char *value)
{
	char	   *copy = strdup(value);
	char	   *host = copy;
	char	   *port;
	long		portnum;
	struct addrinfo hints,
			   *res = NULL;
	int			rc;

	if (copy == NULL)
		return bad("--listen", value, "out of memory");
	if (host[0] == '[')
	{
		char	   *close = strchr(host, ']');

		if (close == NULL || close[1] != ':')
		{
			free(copy);
			return bad("--listen", value, "expected [IPV6]:PORT");
		}
		*close = '\0';
		host++;
		port = close + 2;
	}
	else
	{
		port = strrchr(host, ':');
		if (port == NULL || strchr(host, ':') != port)
		{
			free(copy);
			return bad("--listen", value, "expected HOST:PORT (IPv6 as [ADDR]:PORT)");
		}
		*port++ = '\0';
	}
	if (*host == '\0' || !parse_long(port, 1, 65535, &portnum))
	{
		free(copy);
		return bad("--listen", value, "expected HOST:PORT with a port from 1 to 65535");
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL)
	{
		int			r = bad("--listen", value, gai_strerror(rc));

		free(copy);
		return r;
	}
	memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
	c->addrlen = res->ai_addrlen;
	c->loopback = is_loopback(res->ai_addr);
	freeaddrinfo(res);
	free(copy);
	free(c->listen);
	c->listen = strdup(value);
	return 0;
}

/* Normalise --prefix: "/a/b" kept, trailing slashes dropped, "/" = none. */
static int
set_prefix(api_config *c, const char *value)
{
	size_t		n = strlen(value);

	if (n == 0)
	{
		free(c->prefix);
		c->prefix = strdup("");
		return 0;
	}
	if (value[0] != '/')
		return bad("--prefix", value, "must start with /");
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) value[i];

		if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%')
			return bad("--prefix", value,
					   "only printable ASCII without spaces, ?, # or %");
	}
	while (n > 0 && value[n - 1] == '/')
		n--;
	free(c->prefix);
	c->prefix = strndup(value, n);
	return 0;
}

/* Add the origins in a space- or comma-separated list. */
static int
add_origins(api_config *c, const char *list)
{
	const char *p = list;

	while (*p)
	{
		size_t		n;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		n = strcspn(p, " ,\t");
		if (n == 0)
			break;
		if (c->ncors >= MAX_CORS_ORIGINS)
			return bad("--cors-origin", list, "too many origins");
		c->cors_origins[c->ncors++] = strndup(p, n);
		p += n;
	}
	return 0;
}

/* The integer settings: bounds, the unit named in a complaint, the field. */
static const struct
{
	int			opt;
	const char *flag;
	long		lo;
	long		hi;
	const char *unit;
	size_t		field;			/* offsetof(api_config, ...), a long */
}			int_options[] =
{
	{OPT_THREADS, "--threads", 1, 1024, "", offsetof(api_config, threads)},
	{OPT_MAX_LIMIT, "--max-limit", 0, 1000000000L, "", offsetof(api_config, max_limit)},
	{OPT_MAX_FILTERS, "--max-filters", 1, 100000, "", offsetof(api_config, max_filters)},
	{OPT_STATEMENT_TIMEOUT, "--statement-timeout", 0, 86400, " seconds",
	offsetof(api_config, statement_timeout)},
	{OPT_MAX_BODY, "--max-body", 1, 1L << 30, " bytes", offsetof(api_config, max_body)},
	{OPT_TIMEOUT, "--timeout", 1, 86400, " seconds", offsetof(api_config, timeout)},
	{OPT_KS_CONNECT_TIMEOUT, "--keystone-connect-timeout", 1, 600, " seconds",
	offsetof(api_config, ks_connect_timeout)},
	{OPT_KS_TIMEOUT, "--keystone-timeout", 1, 600, " seconds",
	offsetof(api_config, ks_timeout)},
	{OPT_TOKEN_CACHE_SIZE, "--token-cache-size", 1, 10000000, "",
	offsetof(api_config, token_cache_size)},
	{OPT_TOKEN_CACHE_TIME, "--token-cache-time", 0, 86400, " seconds",
	offsetof(api_config, token_cache_time)},
	{OPT_TOKEN_NEGATIVE_CACHE_TIME, "--token-negative-cache-time", 0, 3600, " seconds",
	offsetof(api_config, token_negative_cache_time)},
};

/* The string settings, each a malloc'd copy in its field ("" = unset). */
static const struct
{
	int			opt;
	size_t		field;			/* offsetof(api_config, ...), a char * */
}			str_options[] =
{
	{OPT_DB, offsetof(api_config, db)},
	{OPT_KS_URL, offsetof(api_config, ks_url)},
	{OPT_KS_USER, offsetof(api_config, ks_user)},
	{OPT_KS_PASSWORD_FILE, offsetof(api_config, ks_password_file)},
	{OPT_KS_PROJECT, offsetof(api_config, ks_project)},
	{OPT_KS_USER_DOMAIN, offsetof(api_config, ks_user_domain)},
	{OPT_KS_PROJECT_DOMAIN, offsetof(api_config, ks_project_domain)},
	{OPT_KS_APP_CRED_ID, offsetof(api_config, ks_app_cred_id)},
	{OPT_KS_APP_CRED_SECRET_FILE, offsetof(api_config, ks_app_cred_secret_file)},
	{OPT_KS_CAFILE, offsetof(api_config, ks_cafile)},
};

/* Set a string setting when opt is one; 1 when it is not. */
static int
apply_str(api_config *c, int opt, const char *value)
{
	for (size_t i = 0; i < sizeof(str_options) / sizeof(str_options[0]); i++)
	{
		char	  **field = (char **) ((char *) c + str_options[i].field);

		if (str_options[i].opt != opt)
			continue;
		free(*field);
		*field = strdup(value);
		return *field ? 0 : bad("setting", value, "out of memory");
	}
	return 1;
}

/* Set an integer setting when opt is one; 1 when it is not. */
static int
apply_int(api_config *c, int opt, const char *value)
{
	for (size_t i = 0; i < sizeof(int_options) / sizeof(int_options[0]); i++)
	{
		char		why[80];
		long		v;

		if (int_options[i].opt != opt)
			continue;
		if (!parse_long(value, int_options[i].lo, int_options[i].hi, &v))
		{
			snprintf(why, sizeof(why), "expected %ld to %ld%s",
					 int_options[i].lo, int_options[i].hi, int_options[i].unit);
			return bad(int_options[i].flag, value, why);
		}
		*(long *) ((char *) c + int_options[i].field) = v;
		return 0;
	}
	return 1;
}

/* Apply one setting, from a flag or a variable. */
static int
apply(api_config *c, int opt, const char *value)
{
	int			rc = apply_int(c, opt, value);

	if (rc <= 0 || (rc = apply_str(c, opt, value)) <= 0)
		return rc;
	switch (opt)
	{
		case OPT_LISTEN:
			return set_listen(c, value);
		case OPT_AUTH:
			if (strcmp(value, "keystone") == 0)
				c->auth = AUTH_KEYSTONE;
			else if (strcmp(value, "keystone-headers") == 0)
				c->auth = AUTH_KEYSTONE_HEADERS;
			else if (strcmp(value, "none") == 0)
				c->auth = AUTH_NONE;
			else
				return bad("--auth", value, "expected keystone, keystone-headers or none");
			return 0;
		case OPT_CORS:
			return add_origins(c, value);
		case OPT_PREFIX:
			return set_prefix(c, value);
		case OPT_LOG:
			free(c->log_file);
			c->log_file = (*value == '\0') ? NULL : strdup(value);
			return 0;
	}
	return -1;
}

/*
 * Every option that takes a value: its flag, and the variable that sets it
 * too (a flag wins).
 */
static const struct
{
	const char *name;
	int			opt;
	const char *env;
}			options[] =
{
	{"listen", OPT_LISTEN, "PANKO_API_LISTEN"},
	{"db", OPT_DB, "PANKO_API_DB"},
	{"auth", OPT_AUTH, "PANKO_API_AUTH"},
	{"cors-origin", OPT_CORS, "PANKO_API_CORS_ORIGIN"},
	{"prefix", OPT_PREFIX, "PANKO_API_PREFIX"},
	{"threads", OPT_THREADS, "PANKO_API_THREADS"},
	{"max-limit", OPT_MAX_LIMIT, "PANKO_API_MAX_LIMIT"},
	{"max-filters", OPT_MAX_FILTERS, "PANKO_API_MAX_FILTERS"},
	{"statement-timeout", OPT_STATEMENT_TIMEOUT, "PANKO_API_STATEMENT_TIMEOUT"},
	{"max-body", OPT_MAX_BODY, "PANKO_API_MAX_BODY"},
	{"timeout", OPT_TIMEOUT, "PANKO_API_TIMEOUT"},
	{"log", OPT_LOG, "PANKO_API_LOG"},
	{"keystone-url", OPT_KS_URL, "PANKO_API_KEYSTONE_URL"},
	{"keystone-user", OPT_KS_USER, "PANKO_API_KEYSTONE_USER"},
	{"keystone-password-file", OPT_KS_PASSWORD_FILE, "PANKO_API_KEYSTONE_PASSWORD_FILE"},
	{"keystone-project", OPT_KS_PROJECT, "PANKO_API_KEYSTONE_PROJECT"},
	{"keystone-user-domain", OPT_KS_USER_DOMAIN, "PANKO_API_KEYSTONE_USER_DOMAIN"},
	{"keystone-project-domain", OPT_KS_PROJECT_DOMAIN, "PANKO_API_KEYSTONE_PROJECT_DOMAIN"},
	{"keystone-app-credential-id", OPT_KS_APP_CRED_ID, "PANKO_API_KEYSTONE_APP_CREDENTIAL_ID"},
	{"keystone-app-credential-secret-file", OPT_KS_APP_CRED_SECRET_FILE, "PANKO_API_KEYSTONE_APP_CREDENTIAL_SECRET_FILE"},
	{"keystone-cafile", OPT_KS_CAFILE, "PANKO_API_KEYSTONE_CAFILE"},
	{"keystone-connect-timeout", OPT_KS_CONNECT_TIMEOUT, "PANKO_API_KEYSTONE_CONNECT_TIMEOUT"},
	{"keystone-timeout", OPT_KS_TIMEOUT, "PANKO_API_KEYSTONE_TIMEOUT"},
	{"token-cache-size", OPT_TOKEN_CACHE_SIZE, "PANKO_API_TOKEN_CACHE_SIZE"},
	{"token-cache-time", OPT_TOKEN_CACHE_TIME, "PANKO_API_TOKEN_CACHE_TIME"},
	{"token-negative-cache-time", OPT_TOKEN_NEGATIVE_CACHE_TIME, "PANKO_API_TOKEN_NEGATIVE_CACHE_TIME"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* A set string setting ("" counts as unset). */
static bool
given(const char *s)
{
	return s != NULL && *s != '\0';
}

/*
 * A secret: the first line of file when one is named, else the variable
 * env.  NULL (with a message) when neither gives one.
 */
static char *
read_secret(const char *file, const char *env, const char *what)
{
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		n;
	FILE	   *f;

	if (!given(file))
	{
		const char *v = getenv(env);

		if (given(v))
			return strdup(v);
		fprintf(stderr, "panko-api: --auth keystone needs %s: a file (%s-file) "
				"or the variable %s\n", what, what, env);
		return NULL;
	}
	f = fopen(file, "r");
	if (f == NULL)
	{
		fprintf(stderr, "panko-api: cannot read %s file \"%s\": %s\n", what,
				file, strerror(errno));
		return NULL;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n <= 0)
	{
		fprintf(stderr, "panko-api: the %s file \"%s\" is empty\n", what, file);
		free(line);
		return NULL;
	}
	return line;
}

/* --auth keystone: the URL and one complete set of credentials. */
static int
keystone_settings(api_config *c)
{
	if (!given(c->ks_url))
	{
		fprintf(stderr, "panko-api: --auth keystone needs --keystone-url\n");
		return -1;
	}
	if (strncmp(c->ks_url, "http://", 7) != 0 && strncmp(c->ks_url, "https://", 8) != 0)
		return bad("--keystone-url", c->ks_url, "expected http://... or https://...");
	if (given(c->ks_app_cred_id))
	{
		if (given(c->ks_user) || given(c->ks_project))
		{
			fprintf(stderr, "panko-api: give either an application credential or "
					"--keystone-user and --keystone-project, not both\n");
			return -1;
		}
		c->ks_app_cred_secret = read_secret(c->ks_app_cred_secret_file,
											"PANKO_API_KEYSTONE_APP_CREDENTIAL_SECRET",
											"--keystone-app-credential-secret");
		return c->ks_app_cred_secret ? 0 : -1;
	}
	if (!given(c->ks_user) || !given(c->ks_project))
	{
		fprintf(stderr, "panko-api: --auth keystone needs --keystone-user, "
				"--keystone-project and a password (or an application credential)\n");
		return -1;
	}
	c->ks_password = read_secret(c->ks_password_file, "PANKO_API_KEYSTONE_PASSWORD",
								 "--keystone-password");
	return c->ks_password ? 0 : -1;
}

/*
 * Fill *c from defaults, then the environment, then argv.  Returns 0 to
 * run, 1 when --help or --version was answered, -1 on a bad setting.
 */
int
config_load(int argc, char **argv, api_config *c)
{
	struct option longopts[N_OPTIONS + 3];
	long		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool		cors_from_flags = false;
	int			opt;

	memset(c, 0, sizeof(*c));
	c->db = strdup("");
	c->prefix = strdup("");
	c->auth = AUTH_KEYSTONE_HEADERS;
	c->threads = (int) (ncpu > 0 && ncpu < 256 ? 2 * ncpu : 4);
	c->max_limit = 10000;
	c->max_filters = 100;
	c->statement_timeout = 10;
	c->max_body = 10 * 1024 * 1024;
	c->timeout = 30;
	c->ks_user_domain = strdup("Default");
	c->ks_project_domain = strdup("Default");
	c->ks_connect_timeout = 2;
	c->ks_timeout = 5;
	c->token_cache_size = 10000;
	c->token_cache_time = 300;
	c->token_negative_cache_time = 5;
	if (set_listen(c, "127.0.0.1:8977") != 0)
		return -1;

	for (size_t i = 0; i < N_OPTIONS; i++)
	{
		const char *v = getenv(options[i].env);

		longopts[i] = (struct option) {options[i].name, required_argument, NULL,
		options[i].opt};
		if (v != NULL && apply(c, options[i].opt, v) != 0)
		{
			fprintf(stderr, "panko-api: (from %s)\n", options[i].env);
			return -1;
		}
	}
	longopts[N_OPTIONS] = (struct option) {"help", no_argument, NULL, OPT_HELP};
	longopts[N_OPTIONS + 1] = (struct option) {"version", no_argument, NULL, OPT_VERSION};
	longopts[N_OPTIONS + 2] = (struct option) {NULL, 0, NULL, 0};

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (opt)
		{
			case OPT_HELP:
				fputs(usage_text, stdout);
				return 1;
			case OPT_VERSION:
				printf("panko-api %s\n", PANKO_API_VERSION);
				return 1;
			case '?':
			case ':':
				if (optopt)
					fprintf(stderr, "panko-api: bad or incomplete option\n");
				else
					fprintf(stderr, "panko-api: unknown option %s\n",
							argv[optind - 1]);
				fprintf(stderr, "Try \"panko-api --help\".\n");
				return -1;
			default:
				if (opt == OPT_CORS && !cors_from_flags)
				{
					cors_from_flags = true;
					for (int i = 0; i < c->ncors; i++)
						free(c->cors_origins[i]);
					c->ncors = 0;
				}
				if (apply(c, opt, optarg) != 0)
					return -1;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "panko-api: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if (c->auth == AUTH_NONE && !c->loopback)
	{
		fprintf(stderr, "panko-api: --auth none is only allowed on a loopback "
				"address, not %s\n", c->listen);
		return -1;
	}
	if (c->auth == AUTH_KEYSTONE && keystone_settings(c) != 0)
		return -1;
	for (int i = 0; c->auth == AUTH_NONE && i < c->ncors; i++)
		if (strcmp(c->cors_origins[i], "*") == 0)
		{
			fprintf(stderr, "panko-api: --auth none with --cors-origin '*' would "
					"let any web page read and write every event; name the "
					"origins instead\n");
			return -1;
		}
	return 0;
}

