/*
 * db.h
 *		One pipelined round trip per request to the panko extension.
 */
#ifndef PANKO_API_DB_H
#define PANKO_API_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

/* The API statements; each is prepared once per connection. */
typedef enum db_stmt
{
	STMT_GET_EVENTS,
	STMT_GET_EVENT,
	STMT_EVENT_TYPES,
	STMT_TRAIT_TYPES,
	STMT_TRAITS,
	STMT_CAPABILITIES,
	STMT_POST_EVENTS,
	STMT_HEALTH,
	N_API_STMTS
} db_stmt;

/* Who is asking: the arguments of panko.set_identity. */
typedef struct db_identity
{
	const char *user_id;		/* NULL when absent */
	const char *project_id;
	const char *roles;
	bool		all_tenants;
} db_identity;

/* The result of db_call: either a JSON text or an HTTP error. */
typedef struct db_result
{
	int			status;			/* 200 or the mapped HTTP status */
	PGresult   *res;			/* on success: owns the value below */
	const char *value;			/* on success: the function's JSON */
	size_t		len;
	char		sqlstate[6];	/* on a database error */
	char		message[512];	/* faultstring on error */
	bool		cancelled;		/* the client went away; the query was cancelled */
} db_result;

/* Whether a new connection may serve. */
typedef enum db_open_status
{
	DB_OPEN_OK,
	DB_OPEN_FAILED,				/* unreachable, or the checks failed: retry later */
	DB_OPEN_REFUSED				/* the role bypasses row-level security */
} db_open_status;

extern void db_init(const char *conninfo, int statement_timeout);
extern db_open_status db_check(char *why, size_t whylen);
extern void db_call(db_stmt stmt, const db_identity *id,
					const char *const *params, int nparams, int client_fd,
					db_result *out);
extern int	db_status_for_sqlstate(const char *sqlstate);

#endif
