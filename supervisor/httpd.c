/* httpd: non-blocking HTTP for /metrics (see httpd.h). */
#include "httpd.h"
#include "timeutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_MAX 4096
/* from accept to the end of the request's headers; a scraper sends them at once */
#define REQ_TIMEOUT_MS 2000

typedef struct {
    int fd; /* -1: free slot */
    int64_t deadline;
    int64_t accepted; /* monotonic ms */
    uint64_t seq;     /* accept order: the lowest incomplete one is evicted first */
    char req[REQ_MAX + 1];
    size_t got;
    char *out; /* the whole reply once the request is read */
    size_t outlen, sent;
} conn_t;

struct httpd {
    int lfd;
    size_t max;
    int64_t timeout_ms;
    httpd_handler_fn fn;
    void *ud;
    conn_t *conns;
    uint64_t seq;
};

httpd_t *
httpd_new(int listen_fd, size_t max_conns, int64_t timeout_ms, httpd_handler_fn fn, void *ud)
{
    httpd_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->conns = calloc(max_conns, sizeof(*h->conns));
    if (!h->conns) {
        free(h);
        return NULL;
    }
    for (size_t i = 0; i < max_conns; i++)
        h->conns[i].fd = -1;
    h->lfd = listen_fd;
    h->max = max_conns;
    h->timeout_ms = timeout_ms;
    h->fn = fn;
    h->ud = ud;
    return h;
}

static void
conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    c->out = NULL;
    c->fd = -1;
    c->got = c->outlen = c->sent = 0;
}

void
httpd_destroy(httpd_t **hp)
{
    httpd_t *h = *hp;
    if (!h)
        return;
    for (size_t i = 0; i < h->max; i++)
        conn_close(&h->conns[i]);
    if (h->lfd >= 0)
        close(h->lfd);
    free(h->conns);
    free(h);
    *hp = NULL;
}

size_t
httpd_open_connections(const httpd_t *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->max; i++)
        n += h->conns[i].fd >= 0;
    return n;
}

size_t
httpd_poll_items(const httpd_t *h, zmq_pollitem_t *items, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    items[n++] = (zmq_pollitem_t){NULL, h->lfd, ZMQ_POLLIN, 0};
    for (size_t i = 0; i < h->max && n < cap; i++) {
        const conn_t *c = &h->conns[i];
        if (c->fd >= 0)
            items[n++] = (zmq_pollitem_t){NULL, c->fd, c->out ? ZMQ_POLLOUT : ZMQ_POLLIN, 0};
    }
    return n;
}

int64_t
httpd_next_deadline(const httpd_t *h)
{
    int64_t d = -1;
    for (size_t i = 0; i < h->max; i++) {
        if (h->conns[i].fd >= 0 && (d < 0 || h->conns[i].deadline < d))
            d = h->conns[i].deadline;
    }
    return d;
}

/* The reply to a complete (or too long) request, kept in c->out. */
static void
respond(httpd_t *h, conn_t *c, bool too_long)
{
    const char *status = "431 Request Header Fields Too Large";
    char *body = NULL;
    if (!too_long) {
        char line[256];
        size_t ll = strcspn(c->req, "\r\n");
        snprintf(line, sizeof(line), "%.*s", (int)(ll < sizeof(line) ? ll : sizeof(line) - 1),
                 c->req);
        body = h->fn(h->ud, line, &status);
        if (!body)
            status = "500 Internal Server Error";
    }
    const char *b = body ? body : "";
    size_t bl = strlen(b);
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, bl);
    c->out = malloc((size_t)hl + bl + 1);
    if (c->out) {
        memcpy(c->out, head, (size_t)hl);
        memcpy(c->out + hl, b, bl);
        c->outlen = (size_t)hl + bl;
        c->sent = 0;
    }
    free(body);
    if (!c->out)
        conn_close(c);
    else
        c->deadline = c->accepted + h->timeout_ms; /* the rest of its lifetime to send */
}

static void
on_readable(httpd_t *h, conn_t *c)
{
    for (;;) {
        ssize_t r = recv(c->fd, c->req + c->got, REQ_MAX - c->got, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (r <= 0) { /* closed before a whole request, or an error */
            conn_close(c);
            return;
        }
        c->got += (size_t)r;
        c->req[c->got] = '\0';
        if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
            respond(h, c, false);
            return;
        }
        if (c->got >= REQ_MAX) {
            respond(h, c, true);
            return;
        }
    }
}

static void
on_writable(conn_t *c)
{
    while (c->sent < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->sent, c->outlen - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (w <= 0)
            break;
        c->sent += (size_t)w;
    }
    conn_close(c);
}

/* A slot for a new connection: a free one, else the oldest that has not sent a whole
 * request (idle or trickling clients cannot keep a scraper out), else NULL (every slot is
 * sending a reply). */
static conn_t *
free_slot(httpd_t *h)
{
    conn_t *oldest = NULL;
    for (size_t i = 0; i < h->max; i++) {
        conn_t *c = &h->conns[i];
        if (c->fd < 0)
            return c;
        if (!c->out && (!oldest || c->seq < oldest->seq))
            oldest = c;
    }
    if (oldest)
        conn_close(oldest);
    return oldest;
}

static void
accept_all(httpd_t *h, int64_t now)
{
    for (int k = 0; k < 64; k++) {
        int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        conn_t *c = free_slot(h);
        if (!c) { /* every slot is sending: a scraper retries; nobody can hold the loop */
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: "
                                       "0\r\nConnection: close\r\n\r\n";
            if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                /* nothing to do: the connection is closed either way */
            }
            close(fd);
            continue;
        }
        c->fd = fd;
        c->accepted = now;
        c->seq = ++h->seq;
        c->deadline = now + (h->timeout_ms < REQ_TIMEOUT_MS ? h->timeout_ms : REQ_TIMEOUT_MS);
        c->got = 0;
        c->req[0] = '\0';
        /* a scraper's request is usually there already: read it now, so that later
         * connections in this burst cannot evict it */
        on_readable(h, c);
    }
}

void
httpd_handle(httpd_t *h, const zmq_pollitem_t *items, size_t n, int64_t now)
{
    for (size_t k = 1; k < n; k++) {
        conn_t *c = NULL;
        for (size_t i = 0; i < h->max && !c; i++) {
            if (h->conns[i].fd >= 0 && h->conns[i].fd == items[k].fd)
                c = &h->conns[i];
        }
        if (!c || !items[k].revents)
            continue;
        if (c->out)
            on_writable(c);
        else if (items[k].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            on_readable(h, c);
    }
    for (size_t i = 0; i < h->max; i++) {
        if (h->conns[i].fd >= 0 && now >= h->conns[i].deadline)
            conn_close(&h->conns[i]); /* too slow: dropped, the loop never waited for it */
    }
    if (n > 0 && (items[0].revents & ZMQ_POLLIN))
        accept_all(h, now);
}
