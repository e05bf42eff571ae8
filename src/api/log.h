/*
 * log.h
 *		The request log and server messages.
 */
#ifndef PANKO_API_LOG_H
#define PANKO_API_LOG_H

extern int	log_open(const char *path);
extern int	log_reopen(void);
extern void log_request(const char *method, const char *path, int status,
						double ms, const char *request_id);
extern void log_msg(const char *fmt,...) __attribute__((format(printf, 1, 2)));

#endif
