/*
 * log: one line per event on one fd (stderr by default), plain or JSON, with pid, role,
 * pipe and source location. Each line is a single write() so processes sharing the fd do
 * not interleave. Secrets (passwords in URIs and conninfo strings) are masked before the
 * line is written, whatever the caller passed.
 */
#ifndef PGFERRY_LOG_H
#define PGFERRY_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { PGF_LOG_ERROR = 0, PGF_LOG_WARN, PGF_LOG_INFO, PGF_LOG_DEBUG } log_level_t;

void log_init(const char *role, const char *pipe);
void log_set_pipe(const char *pipe);
void log_set_level(log_level_t level);
log_level_t log_get_level(void);
void log_set_json(bool json);
bool log_get_json(void);
void log_set_fd(int fd);
bool log_parse_level(const char *s, log_level_t *out);
/* The same line from the same source location is written at most burst times per window_ms
 * (default 10 per 10 s); one line then says how many were left out. burst 0: no limit. */
void log_set_rate_limit(unsigned burst, unsigned window_ms);
/* Writes the summary of every repeat window that has ended (a daemon calls it from its loop, so
 * the count comes even when nothing else is logged). */
void log_flush_repeats(void);
const char *log_level_name(log_level_t level);

void log_write(log_level_t level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_error(...) log_write(PGF_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_write(PGF_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_write(PGF_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_write(PGF_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

/* in as one line of printable text: line breaks and tabs become one space, other control bytes
 * \xNN (for log lines, history reasons and errors shown to operators). */
void log_oneline(const char *in, char *out, size_t outlen);

#endif
