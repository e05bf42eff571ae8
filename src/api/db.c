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
 */
#include "db.h"

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

/* One step of a pipeline. */
typedef struct step
{
	int			stmt;
	int			nparams;
	const char *const *params;
	bool		prepare;		/* a Parse was sent ahead of it */
} step;

static const char *db_conninfo = "";
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

/* Remember the conninfo; connections are opened lazily per thread. */
void
db_init(const char *conninfo)
{
	db_conninfo = conninfo ? conninfo : "";
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

/* This thread's connection, opening it when needed; NULL if unreachable. */
static db_conn *
conn_get(void)
{
	static const char *const keys[] = {
		"connect_timeout", "fallback_application_name", "dbname", NULL
	};
	const char *vals[4] = {"10", "panko-api", db_conninfo, NULL};
	db_conn    *c;
	PGconn	   *pg;

	if (tls_conn && PQstatus(tls_conn->pg) == CONNECTION_OK)
		return tls_conn;
	conn_drop();
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
	{
		log_msg("cannot connect to the database: %s",
				pg ? PQerrorMessage(pg) : "out of memory");
		PQfinish(pg);
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

/*
 * Read the results of one queued command (up to its terminating NULL).
 * Returns the result when keep is set and it succeeded, NULL otherwise;
 * *lost is set when the connection broke.
 */
static PGresult *
read_command(db_conn *c, bool keep, db_result *out, bool *ok, bool *lost)
{
	PGresult   *r;
	PGresult   *kept = NULL;

	*ok = false;
	while ((r = PQgetResult(c->pg)) != NULL)
	{
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
			 db_result *out)
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
			read_command(c, false, out, &ok, &lost);
			if (ok)
				c->prepared |= 1u << steps[i].stmt;
		}
		if (!lost)
		{
			r = read_command(c, i == keep_step, out, &ok, &lost);
			if (r)
				kept = r;
		}
	}
	if (!lost)
	{
		r = PQgetResult(c->pg);
		if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
			lost = true;
		PQclear(r);
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
 * be reached.
 */
void
db_call(db_stmt stmt, const db_identity *id, const char *const *params,
		int nparams, db_result *out)
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
		if (run_pipeline(c, steps, n, keep, out))
		{
			if (out->status == 500)
				log_msg("database error %s: %s", out->sqlstate, out->message);
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
