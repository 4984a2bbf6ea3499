/* httpd: the /metrics server answers whole requests, refuses oversize ones, sheds clients
 * beyond its limit (evicting the oldest incomplete request first), and drops a client that trickles
 * its request at the deadline; no call ever waits for a client. Real loopback sockets, no servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "timeutil.h"

static int calls;

static char *
handler(void *ud, const char *line, const char **status)
{
    (void)ud;
    calls++;
    if (strncmp(line, "GET /big", 8) == 0) { /* more than a socket buffer holds */
        *status = "200 OK";
        char *b = malloc(8 << 20);
        memset(b, 'x', (8 << 20) - 1);
        b[(8 << 20) - 1] = '\0';
        return b;
    }
    if (strncmp(line, "GET /metrics", 12) == 0) {
        *status = "200 OK";
        return strdup("pgferry_up 1\n");
    }
    *status = "404 Not Found";
    return strdup("no\n");
}

static int port;

static httpd_t *
start(size_t max, int64_t timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    port = ntohs(a.sin_port);
    calls = 0;
    return httpd_new(fd, max, timeout_ms, handler, NULL);
}

static int
client_rcvbuf(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) /* before connect: the window stays small */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static int
client(void)
{
    return client_rcvbuf(0);
}

/* one loop turn as pgferryd's: poll (bounded), then handle; returns the turn's duration */
static int64_t
turn(httpd_t *h, long wait_ms)
{
    zmq_pollitem_t items[64];
    size_t n = httpd_poll_items(h, items, 64);
    zmq_poll(items, (int)n, wait_ms);
    int64_t t0 = time_mono_ms();
    httpd_handle(h, items, n, time_mono_ms());
    return time_mono_ms() - t0;
}

/* reads the reply until the server closes (the server never waits: turns run in between) */
static void
reply_of(httpd_t *h, int fd, char *out, size_t cap)
{
    size_t got = 0;
    for (int i = 0; i < 200; i++) {
        turn(h, 10);
        ssize_t r = recv(fd, out + got, cap - 1 - got, MSG_DONTWAIT);
        if (r == 0)
            break;
        if (r > 0)
            got += (size_t)r;
    }
    out[got] = '\0';
}

static void
test_answers(void **state)
{
    (void)state;
    httpd_t *h = start(4, 5000);
    char buf[4096];
    int fd = client();
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    reply_of(h, fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Content-Length: 13\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\npgferry_up 1\n"));
    close(fd);

    fd = client();
    req = "GET /other HTTP/1.0\n\n";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    reply_of(h, fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, "404 Not Found"));
    close(fd);

    /* a request that never ends its headers within 4 KiB: 431, handler not called */
    calls = 0;
    fd = client();
    char big[5000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    send(fd, big, sizeof(big), 0);
    reply_of(h, fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, "431"));
    assert_int_equal(calls, 0);
    close(fd);
    assert_int_equal(httpd_open_connections(h), 0);
    httpd_destroy(&h);
}

static void
test_slow_client(void **state)
{
    (void)state;
    httpd_t *h = start(4, 300);
    int slow = client();
    int64_t t0 = time_mono_ms(), longest = 0;
    char buf[512];
    bool closed = false;
    /* a byte now and then, never the end of the headers */
    for (int i = 0; i < 100 && !closed; i++) {
        if (i % 5 == 0 && send(slow, "G", 1, MSG_NOSIGNAL) < 0)
            closed = true;
        int64_t d = turn(h, 10);
        if (d > longest)
            longest = d;
        /* a well-behaved client beside it is served */
        if (i == 3) {
            int fd = client();
            const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
            send(fd, req, strlen(req), 0);
            reply_of(h, fd, buf, sizeof(buf));
            assert_non_null(strstr(buf, "200 OK"));
            close(fd);
        }
        ssize_t r = recv(slow, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            closed = true;
    }
    assert_true(closed); /* dropped at its deadline */
    int64_t took = time_mono_ms() - t0;
    assert_true(took >= 300 && took < 2000);
    assert_true(longest < 50); /* no turn waited for the client */
    assert_int_equal(httpd_open_connections(h), 0);
    assert_int_equal(httpd_next_deadline(h), -1);
    close(slow);
    httpd_destroy(&h);
}

static bool
is_closed(int fd)
{
    char b[64];
    ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* all slots taken by clients that never finish a request: a scraper evicts the oldest of
 * them instead of getting a 503 (issue 22) */
static void
test_limit(void **state)
{
    (void)state;
    httpd_t *h = start(2, 5000);
    int a = client();
    turn(h, 50);
    int b = client();
    send(b, "GET /met", 8, MSG_NOSIGNAL); /* half a request line */
    turn(h, 50);
    assert_int_equal(httpd_open_connections(h), 2);
    /* at most 2 s to a whole request, though the lifetime is 5 s */
    assert_true(httpd_next_deadline(h) <= time_mono_ms() + 2000);
    char buf[512];
    for (int round = 0; round < 3; round++) {
        int c = client();
        const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
        send(c, req, strlen(req), 0);
        reply_of(h, c, buf, sizeof(buf));
        assert_non_null(strstr(buf, "200 OK"));
        close(c);
    }
    assert_true(is_closed(a));  /* the oldest was evicted */
    assert_false(is_closed(b)); /* the younger one kept its slot */
    close(a);
    close(b);
    for (int i = 0; i < 10; i++)
        turn(h, 10); /* the closed clients are noticed */
    assert_int_equal(httpd_open_connections(h), 0);

    /* every slot is sending a reply its client does not read: the next one gets a 503 */
    int s[2];
    for (int i = 0; i < 2; i++) {
        s[i] = client_rcvbuf(4096);
        const char *req = "GET /big HTTP/1.1\r\n\r\n";
        send(s[i], req, strlen(req), 0);
    }
    for (int i = 0; i < 10; i++)
        turn(h, 10);
    assert_int_equal(httpd_open_connections(h), 2);
    int c = client();
    for (int i = 0; i < 10; i++)
        turn(h, 10);
    ssize_t r = recv(c, buf, sizeof(buf) - 1, 0);
    assert_true(r > 0);
    buf[r] = '\0';
    assert_non_null(strstr(buf, "503"));
    assert_int_equal(httpd_open_connections(h), 2);
    close(s[0]);
    close(s[1]);
    close(c);
    for (int i = 0; i < 10; i++)
        turn(h, 10);
    assert_int_equal(httpd_open_connections(h), 0);
    httpd_destroy(&h);
}

/* a client that sends nothing is dropped 2 s after connecting, not at the 5 s lifetime */
static void
test_request_deadline(void **state)
{
    (void)state;
    httpd_t *h = start(4, 5000);
    int a = client();
    send(a, "GET /metrics HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
    int64_t t0 = time_mono_ms();
    while (!is_closed(a) && time_mono_ms() - t0 < 4000)
        turn(h, 20);
    int64_t took = time_mono_ms() - t0;
    assert_true(took >= 1900 && took < 2500);
    assert_int_equal(httpd_open_connections(h), 0);
    close(a);
    httpd_destroy(&h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_slow_client),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_request_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
