/*
 * loader: the ingest client of panko's benchmark.
 *
 *   loader CONNINFO SQL FILE
 *
 * Prepares SQL (one parameter, $1, sent as text: a JSON array of events) and
 * executes it once per line of FILE (one batch per line), each execution its
 * own transaction (autocommit).  The batch travels as a bound parameter of
 * the extended protocol, as a libpq application (panko-api, a Ceilometer
 * consumer) would send it: no client-side quoting, no SQL lexing of a
 * multi-megabyte literal.  Only PQexecPrepared is timed, so reading the file
 * is not counted.
 *
 * Prints one line: "batches=B rows=R seconds=S" where R sums the first column
 * of the first row each execution returns (if it returns rows; e.g.
 * count(*) of events NOT stored by panko.record_events), or the number of
 * rows affected.  Exits non-zero on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	FILE	   *f;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	long		batches = 0;
	long long	rows = 0;
	double		total = 0;

	if (argc != 4)
	{
		fprintf(stderr, "usage: loader CONNINFO SQL FILE\n");
		return 2;
	}
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "loader: %s", PQerrorMessage(conn));
		return 1;
	}
	res = PQprepare(conn, "batch", argv[2], 1, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "loader: prepare: %s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(res);
	f = fopen(argv[3], "r");
	if (f == NULL)
	{
		perror(argv[3]);
		return 1;
	}
	while ((len = getline(&line, &cap, f)) > 0)
	{
		const char *params[1];
		double		t0;

		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		params[0] = line;
		t0 = now();
		res = PQexecPrepared(conn, "batch", 1, params, NULL, NULL, 0);
		total += now() - t0;
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
				rows += atoll(PQgetvalue(res, 0, 0));
		}
		else if (PQresultStatus(res) == PGRES_COMMAND_OK)
			rows += atoll(PQcmdTuples(res));
		else
		{
			fprintf(stderr, "loader: batch %ld: %s", batches + 1, PQerrorMessage(conn));
			return 1;
		}
		PQclear(res);
		batches++;
	}
	fclose(f);
	free(line);
	PQfinish(conn);
	printf("batches=%ld rows=%lld seconds=%.6f\n", batches, rows, total);
	return 0;
}
