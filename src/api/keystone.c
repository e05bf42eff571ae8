/*
 * keystone.c
 *		Keystone token validation for --auth keystone.
 *
 * As keystonemiddleware does: panko-api holds a service token of its own
 * (password or application credential, fetched at start and renewed before
 * it expires) and validates a caller's token with
 *
 *		GET {keystone}/v3/auth/tokens?nocatalog
 *		X-Auth-Token: <service token>    X-Subject-Token: <caller's token>
 *
 * 200 gives the user, the project and the role names (implied roles
 * included); 404 means the token is unknown, expired or revoked; 401 means
 * the service token went bad (renewed once, then the call is retried).
 *
 * Answers are cached in memory, keyed by the SHA-256 of the token (tokens
 * are never kept or logged): a valid token for --token-cache-time seconds
 * and never past its expires_at, an invalid one for a few seconds.  The
 * cache holds at most --token-cache-size entries (least recently used go
 * first).  Requests that bring the same new token at the same time wait
 * for one validation (an entry in flight has a condition variable of its
 * own).  HTTP is libcurl, one handle per thread (connections are reused),
 * TLS verified, with connect and total timeouts; JSON is jansson.
 */
#include "postgres_fe.h"

#include "keystone.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "log.h"
#include "pqexpbuffer.h"

/* Longest token accepted (Fernet tokens are ~200 bytes, PKI ones ~8 KiB). */
#define TOKEN_MAX_LEN 8192
/* Largest Keystone answer read. */
#define BODY_MAX (1024 * 1024)
/* After Keystone could not be reached, new tokens get 503 for this long. */
#define DOWN_BACKOFF_MS 500
/* Renew the service token this long before it expires (or at half life). */
#define RENEW_MARGIN 120

static ks_settings ks;
static char *tokens_url;		/* {keystone}/v3/auth/tokens */
static char *validate_url;		/* ...?nocatalog */
static char *www_authenticate;	/* Keystone uri="{keystone}" */

/* ---- HTTP ---------------------------------------------------------- */

/* One Keystone answer. */
typedef struct ks_reply
{
	long		status;
	PQExpBufferData body;
	bool		too_large;
	char	   *subject_token;	/* X-Subject-Token of a POST, malloc'd */
} ks_reply;

static __thread CURL *tls_curl;
static pthread_key_t curl_key;

/* Thread exit: release the thread's handle. */
static void
curl_destroy(void *arg)
{
	curl_easy_cleanup((CURL *) arg);
}

/* Body callback: keep at most BODY_MAX bytes. */
static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	ks_reply   *rep = arg;

	if (rep->body.len + size * n > BODY_MAX)
	{
		rep->too_large = true;
		return 0;
	}
	appendBinaryPQExpBuffer(&rep->body, data, size * n);
	return size * n;
}

/* Header callback: keep X-Subject-Token. */
static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	ks_reply   *rep = arg;
	size_t		len = size * n;
	static const char name[] = "x-subject-token:";

	if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0)
	{
		const char *v = data + sizeof(name) - 1;
		size_t		vl = len - (sizeof(name) - 1);

		while (vl > 0 && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		free(rep->subject_token);
		rep->subject_token = strndup(v, vl);
	}
	return len;
}

/* This thread's handle, reset to panko-api's defaults. */
static CURL *
thread_curl(void)
{
	if (tls_curl == NULL)
	{
		tls_curl = curl_easy_init();
		if (tls_curl == NULL)
			return NULL;
		pthread_setspecific(curl_key, tls_curl);
	}
	else
		curl_easy_reset(tls_curl);	/* keeps the connections */
	curl_easy_setopt(tls_curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(tls_curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(tls_curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(tls_curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(tls_curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ks.cafile)
		curl_easy_setopt(tls_curl, CURLOPT_CAINFO, ks.cafile);
	curl_easy_setopt(tls_curl, CURLOPT_CONNECTTIMEOUT_MS, ks.connect_timeout * 1000L);
	curl_easy_setopt(tls_curl, CURLOPT_TIMEOUT_MS, ks.timeout * 1000L);
	curl_easy_setopt(tls_curl, CURLOPT_USERAGENT, "panko-api");
	return tls_curl;
}

/* Milliseconds of the monotonic clock. */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Until when new tokens get 503 without a call (Keystone was unreachable). */
static atomic_llong down_until;

/*
 * One call to Keystone: GET (validation) or POST (a new service token).
 * The tokens go in headers, never in a URL or a log line.  False when
 * Keystone could not be reached or did not answer in time (why says so).
 */
static bool
ks_http(const char *url, const char *auth_token, const char *subject_token,
		const char *post_body, ks_reply *rep, char *why, size_t whylen)
{
	CURL	   *curl = thread_curl();
	struct curl_slist *hdrs = NULL;
	char		errbuf[CURL_ERROR_SIZE] = "";
	PQExpBufferData h;
	CURLcode	rc;
	long long	t0 = now_ms();

	memset(rep, 0, sizeof(*rep));
	initPQExpBuffer(&rep->body);
	if (curl == NULL)
	{
		snprintf(why, whylen, "cannot start an HTTP client");
		return false;
	}
	initPQExpBuffer(&h);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (auth_token)
	{
		printfPQExpBuffer(&h, "X-Auth-Token: %s", auth_token);
		hdrs = curl_slist_append(hdrs, h.data);
	}
	if (subject_token)
	{
		printfPQExpBuffer(&h, "X-Subject-Token: %s", subject_token);
		hdrs = curl_slist_append(hdrs, h.data);
	}
	if (post_body)
	{
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body);
	}
	/* the buffer held tokens: wipe it before it is freed */
	if (!PQExpBufferBroken(&h))
		memset(h.data, 0, h.maxlen);
	termPQExpBuffer(&h);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, rep);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, rep);
	rc = curl_easy_perform(curl);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK || rep->too_large || PQExpBufferBroken(&rep->body))
	{
		snprintf(why, whylen, "Keystone at %s: %s", url,
				 rep->too_large ? "answer too large" :
				 rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) :
				 "out of memory");
		if (rc != CURLE_OK)
			atomic_store(&down_until, now_ms() + DOWN_BACKOFF_MS);
		return false;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &rep->status);
	log_msg("keystone: %s /v3/auth/tokens%s: %ld in %.1f ms",
			post_body ? "POST" : "GET", post_body ? "" : "?nocatalog",
			rep->status, (double) (now_ms() - t0));
	return true;
}

/* Release an answer. */
static void
ks_reply_free(ks_reply *rep)
{
	termPQExpBuffer(&rep->body);
	free(rep->subject_token);
	rep->subject_token = NULL;
}

/* An answer's token object, or NULL. */
static json_t *
token_object(ks_reply *rep, json_t **root)
{
	*root = json_loadb(rep->body.data, rep->body.len, 0, NULL);
	return json_object_get(*root, "token");
}

/* expires_at (2024-01-02T03:04:05.000000Z) as a time_t; 0 when absent. */
static time_t
expires_at(json_t *token)
{
	const char *s = json_string_value(json_object_get(token, "expires_at"));
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
							&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

/* ---- the service token --------------------------------------------- */

static pthread_mutex_t svc_lock = PTHREAD_MUTEX_INITIALIZER;
static char *svc_token;			/* guarded by svc_lock */
static time_t svc_renew_at;		/* realtime: renew from then on */
static time_t svc_expires;		/* realtime */
static unsigned svc_generation;	/* bumped at every new token */

/* The body of POST /v3/auth/tokens for panko-api's own credentials. */
static char *
auth_body(void)
{
	json_t	   *body;
	char	   *text;

	if (ks.app_cred_id)
		body = json_pack("{s:{s:{s:[s],s:{s:s,s:s}}}}", "auth", "identity",
						 "methods", "application_credential",
						 "application_credential", "id", ks.app_cred_id,
						 "secret", ks.app_cred_secret);
	else
		body = json_pack("{s:{s:{s:[s],s:{s:{s:s,s:{s:s},s:s}}},s:{s:{s:s,s:{s:s}}}}}",
						 "auth", "identity", "methods", "password",
						 "password", "user", "name", ks.user,
						 "domain", "name", ks.user_domain,
						 "password", ks.password,
						 "scope", "project", "name", ks.project,
						 "domain", "name", ks.project_domain);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	return text;
}

/*
 * Get a new service token (svc_lock held).  KS_INVALID when Keystone
 * refuses the credentials, KS_UNAVAILABLE when it cannot be asked.
 */
static ks_status
fetch_service_token(char *why, size_t whylen)
{
	char	   *body = auth_body();
	ks_reply	rep;
	ks_status	st = KS_UNAVAILABLE;
	json_t	   *root = NULL;
	json_t	   *token;
	bool		reached;

	if (body == NULL)
	{
		snprintf(why, whylen, "cannot build the authentication request");
		return KS_UNAVAILABLE;
	}
	reached = ks_http(tokens_url, NULL, NULL, body, &rep, why, whylen);
	memset(body, 0, strlen(body));	/* it holds the secret */
	free(body);
	if (!reached)
		goto done;
	if (rep.status == 201 && rep.subject_token && rep.subject_token[0])
	{
		time_t		now = time(NULL);
		time_t		exp;

		token = token_object(&rep, &root);
		exp = expires_at(token);
		if (exp == 0)
			exp = now + 3600;
		free(svc_token);
		svc_token = rep.subject_token;
		rep.subject_token = NULL;
		svc_expires = exp;
		svc_renew_at = exp - (exp - now > 2 * RENEW_MARGIN ? RENEW_MARGIN : (exp - now) / 2);
		svc_generation++;
		log_msg("keystone: got a service token, valid until %ld (renewed from %ld)",
				(long) svc_expires, (long) svc_renew_at);
		st = KS_VALID;
	}
	else if (rep.status >= 400 && rep.status < 500)
	{
		snprintf(why, whylen, "Keystone refused panko-api's credentials (%s at %s): HTTP %ld",
				 ks.app_cred_id ? "application credential" : "user, password and project",
				 tokens_url, rep.status);
		st = KS_INVALID;
	}
	else
		snprintf(why, whylen, "Keystone at %s answered HTTP %ld to panko-api's "
				 "authentication", tokens_url, rep.status);
done:
	json_decref(root);
	ks_reply_free(&rep);
	return st;
}

/*
 * A copy of the service token, renewing it when due (one thread renews;
 * while the old token is still valid a failed renewal is not an error).
 * stale_gen, when not 0, is a generation Keystone refused: renew it.
 */
static char *
service_token(unsigned stale_gen, unsigned *gen, char *why, size_t whylen)
{
	char	   *copy = NULL;
	time_t		now = time(NULL);

	pthread_mutex_lock(&svc_lock);
	if (svc_token == NULL || now >= svc_renew_at ||
		(stale_gen != 0 && stale_gen == svc_generation))
	{
		ks_status	st;

		if (atomic_load(&down_until) > now_ms() && svc_token == NULL)
		{
			snprintf(why, whylen, "Keystone was unreachable moments ago");
			st = KS_UNAVAILABLE;
		}
		else
			st = fetch_service_token(why, whylen);
		if (st != KS_VALID)
		{
			log_msg("keystone: no new service token: %s", why);
			if (stale_gen != 0 && stale_gen == svc_generation)
			{
				free(svc_token);
				svc_token = NULL;
			}
			if (svc_token != NULL && now >= svc_expires)
			{
				free(svc_token);
				svc_token = NULL;
			}
		}
	}
	if (svc_token)
		copy = strdup(svc_token);
	*gen = svc_generation;
	pthread_mutex_unlock(&svc_lock);
	return copy;
}

/* ---- validating one token ------------------------------------------ */

/* The identity in a validation answer; false when it is not project-scoped. */
static bool
read_identity(json_t *token, ks_identity *id, char *why, size_t whylen)
{
	const char *user = json_string_value(json_object_get(json_object_get(token, "user"), "id"));
	const char *project = json_string_value(json_object_get(json_object_get(token, "project"), "id"));
	json_t	   *roles = json_object_get(token, "roles");
	json_t	   *role;
	size_t		i;
	PQExpBufferData names;

	memset(id, 0, sizeof(*id));
	if (user == NULL || project == NULL || !json_is_array(roles))
	{
		snprintf(why, whylen, "the token is not scoped to a project");
		return false;
	}
	initPQExpBuffer(&names);
	json_array_foreach(roles, i, role)
	{
		const char *name = json_string_value(json_object_get(role, "name"));

		if (name == NULL)
			continue;
		if (names.len > 0)
			appendPQExpBufferChar(&names, ',');
		appendPQExpBufferStr(&names, name);
	}
	id->user_id = strdup(user);
	id->project_id = strdup(project);
	id->roles = PQExpBufferBroken(&names) ? NULL : strdup(names.data);
	termPQExpBuffer(&names);
	if (id->user_id == NULL || id->project_id == NULL || id->roles == NULL)
	{
		ks_identity_free(id);
		snprintf(why, whylen, "out of memory");
		return false;
	}
	return true;
}

/*
 * Ask Keystone about a token.  On KS_VALID, *id and *exp (its expires_at,
 * 0 when not given) are set.
 */
static ks_status
keystone_check(const char *token, ks_identity *id, time_t *exp, char *why,
			   size_t whylen)
{
	unsigned	stale = 0;

	if (atomic_load(&down_until) > now_ms())
	{
		snprintf(why, whylen, "Keystone was unreachable moments ago");
		return KS_UNAVAILABLE;
	}
	for (int attempt = 0; attempt < 2; attempt++)
	{
		unsigned	gen;
		char	   *svc = service_token(stale, &gen, why, whylen);
		ks_reply	rep;
		bool		reached;
		json_t	   *root = NULL;
		ks_status	st;

		if (svc == NULL)
			return KS_UNAVAILABLE;
		reached = ks_http(validate_url, svc, token, NULL, &rep, why, whylen);
		free(svc);
		if (!reached)
		{
			ks_reply_free(&rep);
			return KS_UNAVAILABLE;
		}
		switch (rep.status)
		{
			case 200:
				st = read_identity(token_object(&rep, &root), id, why, whylen)
					? KS_VALID : KS_INVALID;
				if (st == KS_VALID)
					*exp = expires_at(json_object_get(root, "token"));
				json_decref(root);
				ks_reply_free(&rep);
				return st;
			case 400:
			case 404:
				snprintf(why, whylen, "the token is unknown, expired or revoked");
				ks_reply_free(&rep);
				return KS_INVALID;
			case 401:
				/* our own token went bad: renew it once and try again */
				snprintf(why, whylen, "Keystone refused panko-api's service token");
				stale = gen;
				ks_reply_free(&rep);
				continue;
			case 403:
				snprintf(why, whylen, "panko-api's service user may not validate "
						 "tokens (give it the service role)");
				break;
			default:
				snprintf(why, whylen, "Keystone answered HTTP %ld", rep.status);
				break;
		}
		ks_reply_free(&rep);
		log_msg("keystone: %s", why);
		return KS_UNAVAILABLE;
	}
	log_msg("keystone: %s", why);
	return KS_UNAVAILABLE;
}

/* ---- the cache ------------------------------------------------------ */

typedef enum entry_state
{
	ENTRY_PENDING,				/* being validated; wait on done */
	ENTRY_VALID,
	ENTRY_INVALID,
	ENTRY_UNAVAILABLE			/* for the waiters only: never kept */
} entry_state;

typedef struct entry
{
	unsigned char key[32];		/* SHA-256 of the token */
	entry_state state;
	time_t		deadline;		/* realtime: drop from then on */
	ks_identity id;
	pthread_cond_t done;		/* signalled when state leaves PENDING */
	int			refs;			/* threads validating or waiting */
	bool		linked;			/* in the table and the LRU list */
	struct entry *hnext;		/* bucket chain */
	struct entry *prev;			/* LRU list, most recent first */
	struct entry *next;
} entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static entry **buckets;
static size_t nbuckets;			/* a power of two */
static long nentries;
static entry lru;				/* sentinel: lru.next is the most recent */

/* Bucket of a key. */
static entry **
bucket(const unsigned char *key)
{
	size_t		h;

	memcpy(&h, key, sizeof(h));
	return &buckets[h & (nbuckets - 1)];
}

/* The linked entry of a key, or NULL. */
static entry *
lookup(const unsigned char *key)
{
	for (entry *e = *bucket(key); e; e = e->hnext)
		if (memcmp(e->key, key, sizeof(e->key)) == 0)
			return e;
	return NULL;
}

/* Free an entry nobody holds. */
static void
entry_free(entry *e)
{
	ks_identity_free(&e->id);
	pthread_cond_destroy(&e->done);
	free(e);
}

/* Take an entry out of the table and the LRU list; free it if unheld. */
static void
unlink_entry(entry *e)
{
	entry	  **p;

	if (!e->linked)
		return;
	for (p = bucket(e->key); *p != e; p = &(*p)->hnext)
		;
	*p = e->hnext;
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->linked = false;
	nentries--;
	if (e->refs == 0)
		entry_free(e);
}

/* Move a linked entry to the front of the LRU list. */
static void
touch(entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->next = lru.next;
	e->prev = &lru;
	lru.next->prev = e;
	lru.next = e;
}

/* Make room for one more: drop the least recently used settled entry. */
static void
evict(void)
{
	for (entry *e = lru.prev; e != &lru && nentries >= ks.cache_size; e = e->prev)
		if (e->state != ENTRY_PENDING && e->refs == 0)
		{
			unlink_entry(e);
			return;
		}
}

/* A new pending entry for key, linked at the front; NULL without memory. */
static entry *
insert_pending(const unsigned char *key)
{
	entry	   *e = calloc(1, sizeof(entry));
	entry	  **b;

	if (e == NULL)
		return NULL;
	if (nentries >= ks.cache_size)
		evict();
	memcpy(e->key, key, sizeof(e->key));
	e->state = ENTRY_PENDING;
	pthread_cond_init(&e->done, NULL);
	e->refs = 1;
	e->linked = true;
	b = bucket(key);
	e->hnext = *b;
	*b = e;
	e->next = lru.next;
	e->prev = &lru;
	lru.next->prev = e;
	lru.next = e;
	nentries++;
	return e;
}

/* Copy an identity; false without memory. */
static bool
identity_copy(ks_identity *dst, const ks_identity *src)
{
	dst->user_id = strdup(src->user_id);
	dst->project_id = strdup(src->project_id);
	dst->roles = strdup(src->roles);
	if (dst->user_id && dst->project_id && dst->roles)
		return true;
	ks_identity_free(dst);
	return false;
}

/* What a settled entry means for the caller (cache_lock held). */
static ks_status
entry_result(const entry *e, ks_identity *out, char *why, size_t whylen)
{
	switch (e->state)
	{
		case ENTRY_VALID:
			if (identity_copy(out, &e->id))
				return KS_VALID;
			snprintf(why, whylen, "out of memory");
			return KS_UNAVAILABLE;
		case ENTRY_INVALID:
			snprintf(why, whylen, "the token is not valid");
			return KS_INVALID;
		case ENTRY_PENDING:
		case ENTRY_UNAVAILABLE:
			break;
	}
	snprintf(why, whylen, "Keystone cannot be reached");
	return KS_UNAVAILABLE;
}

/*
 * The SHA-256 of a token.  The digest is fetched once (ks_init): OpenSSL 3
 * would otherwise look it up, under a lock, at every call.
 */
static EVP_MD *sha256_md;

static bool
token_hash(const char *token, unsigned char *key, unsigned int *keylen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool		ok;

	ok = ctx != NULL && EVP_DigestInit_ex2(ctx, sha256_md, NULL) &&
		EVP_DigestUpdate(ctx, token, strlen(token)) &&
		EVP_DigestFinal_ex(ctx, key, keylen);
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Is this a token at all?  Printable ASCII, not empty, not huge. */
static bool
token_well_formed(const char *t)
{
	size_t		n = strlen(t);

	if (n == 0 || n > TOKEN_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) t[i] <= ' ' || (unsigned char) t[i] >= 0x7f)
			return false;
	return true;
}

/*
 * What the caller's token is.  From the cache when it holds a live answer
 * (waiting for a validation of the same token already in flight), from
 * Keystone otherwise.  why says what went wrong (no token in it).
 */
ks_status
ks_validate(const char *token, ks_identity *out, char *why, size_t whylen)
{
	unsigned char key[32];
	unsigned int keylen = 0;
	entry	   *e;
	ks_status	st;
	ks_identity id;
	time_t		exp = 0;
	time_t		now;

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if (!token_well_formed(token))
	{
		snprintf(why, whylen, "the token is malformed");
		return KS_INVALID;
	}
	if (!token_hash(token, key, &keylen) || keylen != sizeof(key))
	{
		snprintf(why, whylen, "cannot hash the token");
		return KS_UNAVAILABLE;
	}
	pthread_mutex_lock(&cache_lock);
	e = lookup(key);
	if (e && e->state != ENTRY_PENDING && time(NULL) >= e->deadline)
	{
		unlink_entry(e);
		e = NULL;
	}
	if (e)
	{
		e->refs++;
		while (e->state == ENTRY_PENDING)
			pthread_cond_wait(&e->done, &cache_lock);
		e->refs--;
		st = entry_result(e, out, why, whylen);
		if (e->linked)
			touch(e);
		else if (e->refs == 0)
			entry_free(e);
		pthread_mutex_unlock(&cache_lock);
		return st;
	}
	e = insert_pending(key);
	pthread_mutex_unlock(&cache_lock);

	memset(&id, 0, sizeof(id));
	st = keystone_check(token, &id, &exp, why, whylen);

	if (e == NULL)
	{
		/* no memory for an entry: answer this request alone */
		*out = id;
		return st;
	}
	pthread_mutex_lock(&cache_lock);
	now = time(NULL);
	if (st == KS_VALID)
	{
		e->state = ENTRY_VALID;
		e->deadline = now + ks.cache_time;
		if (exp != 0 && exp < e->deadline)
			e->deadline = exp;
		e->id = id;
		st = entry_result(e, out, why, whylen);
	}
	else if (st == KS_INVALID)
	{
		e->state = ENTRY_INVALID;
		e->deadline = now + ks.negative_time;
	}
	else
	{
		e->state = ENTRY_UNAVAILABLE;
		unlink_entry(e);		/* held: stays until the last waiter */
	}
	e->refs--;
	pthread_cond_broadcast(&e->done);
	if (!e->linked && e->refs == 0)
		entry_free(e);
	pthread_mutex_unlock(&cache_lock);
	return st;
}

/* Release an identity's strings. */
void
ks_identity_free(ks_identity *id)
{
	free(id->user_id);
	free(id->project_id);
	free(id->roles);
	memset(id, 0, sizeof(*id));
}

/* ---- start ---------------------------------------------------------- */

/* {url} without trailing slashes and without a final /v3. */
static char *
root_url(const char *url)
{
	size_t		n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n >= 3 && strncmp(url + n - 3, "/v3", 3) == 0)
		n -= 3;
	while (n > 0 && url[n - 1] == '/')
		n--;
	return strndup(url, n);
}

/* The WWW-Authenticate value of a 401. */
const char *
ks_www_authenticate(void)
{
	return www_authenticate;
}

/*
 * Set up the client and the cache, and get the first service token.
 * KS_START_REJECTED when Keystone refuses the credentials (do not start);
 * KS_START_UNREACHABLE when it cannot be asked yet (start: requests with a
 * token answer 503 until it can).
 */
ks_start
ks_init(const ks_settings *s, char *why, size_t whylen)
{
	char	   *root;
	unsigned	gen;
	char	   *svc;
	size_t		nb = 16;
	ks_status	st;

	ks = *s;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
	{
		snprintf(why, whylen, "cannot initialise libcurl");
		return KS_START_REJECTED;
	}
	pthread_key_create(&curl_key, curl_destroy);
	sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	if (sha256_md == NULL)
	{
		snprintf(why, whylen, "OpenSSL has no SHA-256");
		return KS_START_REJECTED;
	}
	root = root_url(ks.url);
	if (root == NULL || asprintf(&tokens_url, "%s/v3/auth/tokens", root) < 0 ||
		asprintf(&validate_url, "%s?nocatalog", tokens_url) < 0 ||
		asprintf(&www_authenticate, "Keystone uri=\"%s\"", root) < 0)
	{
		snprintf(why, whylen, "out of memory");
		return KS_START_REJECTED;
	}
	free(root);
	while ((long) nb < ks.cache_size && nb < ((size_t) 1 << 24))
		nb <<= 1;
	nbuckets = nb;
	buckets = calloc(nbuckets, sizeof(entry *));
	if (buckets == NULL)
	{
		snprintf(why, whylen, "out of memory for the token cache");
		return KS_START_REJECTED;
	}
	lru.next = lru.prev = &lru;

	pthread_mutex_lock(&svc_lock);
	st = fetch_service_token(why, whylen);
	pthread_mutex_unlock(&svc_lock);
	if (st == KS_INVALID)
		return KS_START_REJECTED;
	if (st != KS_VALID)
		return KS_START_UNREACHABLE;
	svc = service_token(0, &gen, why, whylen);
	free(svc);
	return KS_START_OK;
}
