/*
 * db.c
 *		Per-thread libpq connections and the one-round-trip request pipeline.
 *
 * Each HTTP worker thread owns one connection, opened on its first request
 * and kept in pipeline mode.  A request sends, without waiting in between:
 *
 *		[ROLLBACK]  BEGIN [READ ONLY]  set_identity(...)  api_xxx(...)  COMMIT  Sync
 *
 * and then reads every result.  Statements are prepared on first use, in the
 * same pipeline, so even the first request is one round trip.  Parameters are
 * always sent separately from the SQL text.
 *
 * Every new connection is checked before it serves anything: its role must
 * be subject to row-level security (tenant isolation depends on it), and it
 * gets the statement timeout.  While a request waits for its results, the
 * client's socket is watched too, and the query is cancelled when the client
 * has gone away.
 */
#include "postgres_fe.h"		/* with _GNU_SOURCE (Makefile): POLLRDHUP */

#include "db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "urlcodec.h"

/* Statements beyond the API ones: transaction control and identity. */
enum
{
	STMT_BEGIN_RO = N_API_STMTS,
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_IDENTITY,
	N_STMTS
};

typedef struct stmt_def
{
	const char *name;
	const char *sql;
	int			nparams;
} stmt_def;

static const stmt_def stmt_defs[N_STMTS] = {
	[STMT_GET_EVENTS] = {"panko_api_get_events", "SELECT panko.api_get_events($1::jsonb)", 1},
	[STMT_GET_EVENT] = {"panko_api_get_event", "SELECT panko.api_get_event($1::text)", 1},
	[STMT_EVENT_TYPES] = {"panko_api_event_types", "SELECT panko.api_event_types()", 0},
	[STMT_TRAIT_TYPES] = {"panko_api_trait_types", "SELECT panko.api_trait_types($1::text)", 1},
	[STMT_TRAITS] = {"panko_api_traits", "SELECT panko.api_traits($1::text, $2::text)", 2},
	[STMT_CAPABILITIES] = {"panko_api_capabilities", "SELECT panko.api_capabilities()", 0},
	[STMT_POST_EVENTS] = {"panko_api_post_events", "SELECT panko.api_post_events($1::jsonb)", 1},
	[STMT_HEALTH] = {"panko_health", "SELECT 1", 0},
	[STMT_BEGIN_RO] = {"panko_begin_ro", "BEGIN READ ONLY", 0},
	[STMT_BEGIN] = {"panko_begin", "BEGIN", 0},
	[STMT_COMMIT] = {"panko_commit", "COMMIT", 0},
	[STMT_ROLLBACK] = {"panko_rollback", "ROLLBACK", 0},
	[STMT_IDENTITY] = {"panko_set_identity",
	"SELECT panko.set_identity($1::text, $2::text, $3::text, $4::boolean)", 4},
};

typedef struct db_conn
{
	PGconn	   *pg;
	unsigned	prepared;		/* bit per stmt_defs entry */
} db_conn;

/*
 * Does the login role escape row-level security on panko.event?  A
 * superuser does, a BYPASSRLS role does, and so does the table's owner (or
 * a member of the owner) unless RLS is forced.  One row: the role's name,
 * then one boolean per reason.
 */
static const char role_check_sql[] =
"SELECT current_user::text, r.rolsuper, r.rolbypassrls,"
" coalesce((SELECT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')"
"                  AND NOT c.relforcerowsecurity"
"             FROM pg_catalog.pg_class c"
"             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
"            WHERE n.nspname = 'panko' AND c.relname = 'event'), false)"
" FROM pg_catalog.pg_roles r WHERE r.rolname = current_user";

/* One step of a pipeline. */
typedef struct step
{
	int			stmt;
	int			nparams;
	const char *const *params;
	bool		prepare;		/* a Parse was sent ahead of it */
} step;

static const char *db_conninfo = "";
static int	db_statement_timeout;	/* seconds; 0 = the database's own */
static pthread_key_t conn_key;
static __thread db_conn *tls_conn;

/* Thread exit: close the thread's connection. */
static void
conn_destroy(void *arg)
{
	db_conn    *c = arg;

	if (c)
	{
		PQfinish(c->pg);
		free(c);
	}
}

/*
 * Remember the conninfo and the statement timeout (seconds, 0 to leave the
 * database's); connections are opened lazily per thread.
 */
void
db_init(const char *conninfo, int statement_timeout)
{
	db_conninfo = conninfo ? conninfo : "";
	db_statement_timeout = statement_timeout;
	pthread_key_create(&conn_key, conn_destroy);
}

/* Drop this thread's connection (after a failure). */
static void
conn_drop(void)
{
	if (tls_conn)
	{
		pthread_setspecific(conn_key, NULL);
		conn_destroy(tls_conn);
		tls_conn = NULL;
	}
}

/*
 * Check a new connection's role and give it the statement timeout.
 * Returns DB_OPEN_OK, DB_OPEN_REFUSED (the role bypasses row-level
 * security; why names it and the fix) or DB_OPEN_FAILED.
 */
static db_open_status
conn_setup(PGconn *pg, char *why, size_t whylen)
{
	PGresult   *r;
	const char *role;
	const char *reason = NULL;

	r = PQexec(pg, role_check_sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
	{
		snprintf(why, whylen, "cannot check the database role: %s",
				 PQerrorMessage(pg));
		utf8_clip(why);
		PQclear(r);
		return DB_OPEN_FAILED;
	}
	role = PQgetvalue(r, 0, 0);
	if (strcmp(PQgetvalue(r, 0, 1), "t") == 0)
		reason = "is a superuser";
	else if (strcmp(PQgetvalue(r, 0, 2), "t") == 0)
		reason = "has BYPASSRLS";
	else if (strcmp(PQgetvalue(r, 0, 3), "t") == 0)
		reason = "owns panko.event (or is a member of its owner)";
	if (reason)
	{
		snprintf(why, whylen,
				 "the database role \"%s\" %s, so row-level security would "
				 "not separate the tenants; connect as a role that is a member "
				 "of panko_api only, e.g. CREATE ROLE panko_http LOGIN IN ROLE panko_api",
				 role, reason);
		utf8_clip(why);
		PQclear(r);
		return DB_OPEN_REFUSED;
	}
	PQclear(r);
	if (db_statement_timeout > 0)
	{
		char		value[32];
		const char *params[1] = {value};

		/* an integer only, and sent as a parameter, never spliced into SQL */
		snprintf(value, sizeof(value), "%ds", db_statement_timeout);
		r = PQexecParams(pg, "SELECT pg_catalog.set_config('statement_timeout', $1, false)",
						 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			snprintf(why, whylen, "cannot set the statement timeout: %s",
					 PQerrorMessage(pg));
			utf8_clip(why);
			PQclear(r);
			return DB_OPEN_FAILED;
		}
		PQclear(r);
	}
	return DB_OPEN_OK;
}

/*
 * Open and check a connection (UTF8 whatever the conninfo or environment
 * says: responses are UTF-8).  NULL with why set when it cannot be used.
 */
static PGconn *
conn_open(db_open_status *status, char *why, size_t whylen)
{
	/* keys after dbname override the conninfo; those before it do not */
	static const char *const keys[] = {
		"connect_timeout", "fallback_application_name", "dbname",
		"client_encoding", NULL
	};
	const char *vals[5] = {"10", "panko-api", db_conninfo, "UTF8", NULL};
	PGconn	   *pg;

	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
	{
		snprintf(why, whylen, "cannot connect to the database: %s",
				 pg ? PQerrorMessage(pg) : "out of memory");
		utf8_clip(why);
		PQfinish(pg);
		*status = DB_OPEN_FAILED;
		return NULL;
	}
	*status = conn_setup(pg, why, whylen);
	if (*status != DB_OPEN_OK)
	{
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

/*
 * At startup: may the configured role serve?  A database that cannot be
 * reached yet is not an error (requests answer 503 until it can).
 */
db_open_status
db_check(char *why, size_t whylen)
{
	db_open_status st;
	PGconn	   *pg = conn_open(&st, why, whylen);

	PQfinish(pg);
	return st;
}

/* This thread's connection, opening it when needed; NULL if unusable. */
static db_conn *
conn_get(void)
{
	db_conn    *c;
	PGconn	   *pg;
	db_open_status st;
	char		why[1024];

	if (tls_conn && PQstatus(tls_conn->pg) == CONNECTION_OK)
		return tls_conn;
	conn_drop();
	pg = conn_open(&st, why, sizeof(why));
	if (pg == NULL)
	{
		log_msg("%s%s", st == DB_OPEN_REFUSED ? "not serving: " : "", why);
		return NULL;
	}
	if (!PQenterPipelineMode(pg))
	{
		log_msg("cannot enter pipeline mode: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return NULL;
	}
	c = calloc(1, sizeof(db_conn));
	if (c == NULL)
	{
		PQfinish(pg);
		return NULL;
	}
	c->pg = pg;
	tls_conn = c;
	pthread_setspecific(conn_key, c);
	return c;
}

/* The connection is gone (not the statement): reconnect and retry once. */
static bool
db_sqlstate_is_lost(const char *s)
{
	return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
		strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

/*
 * HTTP status for a SQLSTATE, as the contract maps them.  Connection
 * classes are 503: the database went away, not the request's fault.
 */
int
db_status_for_sqlstate(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return 500;
	if (strncmp(s, "22", 2) == 0 || strcmp(s, "54000") == 0)
		return 400;
	if (strcmp(s, "42501") == 0)
		return 403;
	if (strcmp(s, "28000") == 0)
		return 401;
	if (strcmp(s, "P0002") == 0)
		return 404;
	if (db_sqlstate_is_lost(s))
		return 503;
	/* a statement timeout, lack of resources, or a conflict: try again later */
	if (strcmp(s, "57014") == 0 || strncmp(s, "53", 2) == 0 ||
		strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
		return 503;
	return 500;
}

/* Queue one step: a Parse when not yet prepared, then Bind/Execute. */
static bool
send_step(db_conn *c, step *s)
{
	const stmt_def *d = &stmt_defs[s->stmt];

	s->prepare = !(c->prepared & (1u << s->stmt));
	if (s->prepare && !PQsendPrepare(c->pg, d->name, d->sql, d->nparams, NULL))
		return false;
	return PQsendQueryPrepared(c->pg, d->name, s->nparams, s->params,
							   NULL, NULL, 0) == 1;
}

/* Keep the first error of the pipeline; the rest are its consequences. */
static void
note_error(PGresult *r, db_result *out)
{
	const char *state;
	const char *msg;

	if (out->sqlstate[0] != '\0')
		return;
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	snprintf(out->sqlstate, sizeof(out->sqlstate), "%s", state ? state : "XX000");
	utf8_copy(out->message, sizeof(out->message), msg ? msg : "database error");
}

/* Ask the server to cancel what the connection is running. */
static void
cancel_query(db_conn *c)
{
	PGcancel   *cancel = PQgetCancel(c->pg);
	char		err[256];

	if (cancel == NULL || !PQcancel(cancel, err, sizeof(err)))
		log_msg("cannot cancel the query of a client that went away: %s",
				cancel ? err : "no cancel handle");
	PQfreeCancel(cancel);
}

/*
 * Wait until a result can be read without blocking, watching the client's
 * socket at the same time: when the client has gone away, the query is
 * cancelled (once) and the results are still read to the end of the
 * pipeline, so the connection is ready for the next request.
 */
static void
await_result(db_conn *c, int client_fd, db_result *out)
{
	int			sock = PQsocket(c->pg);

	while (PQisBusy(c->pg))
	{
		struct pollfd fds[2];
		int			nfds = 1;

		fds[0] = (struct pollfd) {sock, POLLIN, 0};
		if (client_fd >= 0 && !out->cancelled)
			fds[nfds++] = (struct pollfd) {client_fd, POLLRDHUP, 0};
		if (poll(fds, (nfds_t) nfds, -1) < 0)
		{
			if (errno == EINTR)
				continue;
			return;				/* PQgetResult will block, as it used to */
		}
		/* the client closed its end (FIN), or the connection was reset */
		if (nfds == 2 &&
			(fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0)
		{
			out->cancelled = true;
			cancel_query(c);
		}
		if (fds[0].revents != 0 && !PQconsumeInput(c->pg))
			return;				/* broken: PQgetResult reports it */
	}
}

/*
 * Read the results of one queued command (up to its terminating NULL).
 * Returns the result when keep is set and it succeeded, NULL otherwise;
 * *lost is set when the connection broke.
 */
static PGresult *
read_command(db_conn *c, int client_fd, bool keep, db_result *out, bool *ok,
			 bool *lost)
{
	PGresult   *r;
	PGresult   *kept = NULL;

	*ok = false;
	for (;;)
	{
		await_result(c, client_fd, out);
		if ((r = PQgetResult(c->pg)) == NULL)
			break;
		switch (PQresultStatus(r))
		{
			case PGRES_COMMAND_OK:
			case PGRES_TUPLES_OK:
				*ok = true;
				if (keep && kept == NULL)
				{
					kept = r;
					continue;
				}
				break;
			case PGRES_PIPELINE_ABORTED:
				break;
			default:
				note_error(r, out);
				break;
		}
		PQclear(r);
	}
	if (PQstatus(c->pg) != CONNECTION_OK)
		*lost = true;
	return kept;
}

/*
 * Send the steps and one Sync, then read everything back.  Returns false
 * only when the connection failed (the caller may retry on a new one).
 */
static bool
run_pipeline(db_conn *c, step *steps, int nsteps, int keep_step,
			 int client_fd, db_result *out)
{
	PGresult   *kept = NULL;
	PGresult   *r;
	bool		lost = false;

	for (int i = 0; i < nsteps; i++)
		if (!send_step(c, &steps[i]))
			return false;
	if (!PQpipelineSync(c->pg))
		return false;
	for (int i = 0; i < nsteps && !lost; i++)
	{
		bool		ok;

		if (steps[i].prepare)
		{
			read_command(c, client_fd, false, out, &ok, &lost);
			if (ok)
				c->prepared |= 1u << steps[i].stmt;
		}
		if (!lost)
		{
			r = read_command(c, client_fd, i == keep_step, out, &ok, &lost);
			if (r)
				kept = r;
		}
	}
	if (!lost)
	{
		await_result(c, client_fd, out);
		r = PQgetResult(c->pg);
		if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
			lost = true;
		PQclear(r);
	}
	if (out->cancelled)
	{
		/* nobody is waiting for the answer; do not retry */
		PQclear(kept);
		out->status = 503;
		snprintf(out->message, sizeof(out->message),
				 "The client closed the connection; the query was cancelled");
		return true;
	}
	if (lost || (out->sqlstate[0] != '\0' && db_sqlstate_is_lost(out->sqlstate)))
	{
		PQclear(kept);
		out->sqlstate[0] = '\0';
		return false;
	}
	if (out->sqlstate[0] != '\0')
	{
		PQclear(kept);
		out->status = db_status_for_sqlstate(out->sqlstate);
		return true;
	}
	if (kept == NULL || PQntuples(kept) != 1 || PQnfields(kept) < 1 ||
		PQgetisnull(kept, 0, 0))
	{
		PQclear(kept);
		out->status = 500;
		snprintf(out->message, sizeof(out->message),
				 "the database function returned no value");
		return true;
	}
	out->status = 200;
	out->res = kept;
	out->value = PQgetvalue(kept, 0, 0);
	out->len = (size_t) PQgetlength(kept, 0, 0);
	return true;
}

/*
 * Run one API statement for one request.  With an identity, it runs in its
 * own transaction after panko.set_identity (read-only unless it stores
 * events); without one (the health check) it runs alone.  Retries once on a
 * fresh connection when the connection fails; 503 when the database cannot
 * be reached or may not be used.  client_fd (or -1) is the client's socket:
 * the query is cancelled if the client goes away before it finishes.
 */
void
db_call(db_stmt stmt, const db_identity *id, const char *const *params,
		int nparams, int client_fd, db_result *out)
{
	const char *idparams[4];

	memset(out, 0, sizeof(*out));
	if (id)
	{
		idparams[0] = id->user_id;
		idparams[1] = id->project_id;
		idparams[2] = id->roles;
		idparams[3] = id->all_tenants ? "true" : "false";
	}
	for (int attempt = 0; attempt < 2; attempt++)
	{
		db_conn    *c = conn_get();
		step		steps[6];
		int			n = 0;
		int			keep;
		PGTransactionStatusType ts;

		if (c == NULL)
			break;
		/* a failed request leaves its transaction open: end it first */
		ts = PQtransactionStatus(c->pg);
		if (ts == PQTRANS_INERROR || ts == PQTRANS_INTRANS)
			steps[n++] = (step) {STMT_ROLLBACK, 0, NULL, false};
		if (id)
		{
			steps[n++] = (step) {stmt == STMT_POST_EVENTS ? STMT_BEGIN : STMT_BEGIN_RO,
			0, NULL, false};
			steps[n++] = (step) {STMT_IDENTITY, 4, idparams, false};
		}
		keep = n;
		steps[n++] = (step) {stmt, nparams, params, false};
		if (id)
			steps[n++] = (step) {STMT_COMMIT, 0, NULL, false};
		memset(out, 0, sizeof(*out));
		if (run_pipeline(c, steps, n, keep, client_fd, out))
		{
			if (out->status == 500)
				log_msg("database error %s: %s", out->sqlstate, out->message);
			else if (out->cancelled)
				log_msg("the client went away; its query was cancelled");
			return;
		}
		log_msg("database connection lost (%s), %s",
				PQerrorMessage(c->pg), attempt == 0 ? "reconnecting" : "giving up");
		conn_drop();
	}
	memset(out, 0, sizeof(*out));
	out->status = 503;
	snprintf(out->message, sizeof(out->message), "Database unavailable");
}
