/*
 * httpd: a tiny HTTP/1.1 server for pgferryd's /metrics endpoint that never blocks the loop it
 * runs in. Sockets are non-blocking and sit in the caller's poll set; each connection gets a
 * bounded request (4 KiB), at most 2 s (or timeout_ms if shorter) from accept to the end of
 * its request headers, a bounded lifetime (timeout_ms from accept to the last byte sent), and
 * there are at most max_conns at once. When all are taken, a new connection evicts the oldest
 * one that has not sent a whole request (so idle or trickling clients cannot keep a scraper
 * out); only when every slot is sending a reply is the new one answered 503 and closed. A
 * client that trickles bytes costs one poll entry until its deadline, nothing else.
 */
#ifndef PGFERRY_HTTPD_H
#define PGFERRY_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct httpd httpd_t;

/* Answers one request line ("GET /metrics HTTP/1.1"): fills *status (e.g. "200 OK") and
 * returns the malloc'd body, or NULL for a 500. */
typedef char *(*httpd_handler_fn)(void *ud, const char *request_line, const char **status);

/* Takes ownership of listen_fd (a non-blocking listening socket). */
httpd_t *httpd_new(int listen_fd, size_t max_conns, int64_t timeout_ms, httpd_handler_fn fn,
                   void *ud);
void httpd_destroy(httpd_t **h);

/* Poll entries for the listener and every connection (at most 1 + max_conns). */
size_t httpd_poll_items(const httpd_t *h, zmq_pollitem_t *items, size_t cap);
/* Acts on the revents of the entries httpd_poll_items filled, and closes expired
 * connections; call once per loop turn with the same entries. */
void httpd_handle(httpd_t *h, const zmq_pollitem_t *items, size_t n, int64_t now_ms);
/* The earliest connection deadline (monotonic ms), or -1 when there is no connection. */
int64_t httpd_next_deadline(const httpd_t *h);
size_t httpd_open_connections(const httpd_t *h);

#endif
