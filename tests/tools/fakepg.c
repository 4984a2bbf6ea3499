/*
 * pgferry-test-fakepg FILE: a PostgreSQL server that only asks for a password in clear text.
 * Listens on 127.0.0.1 (ephemeral port, printed on stdout); for each connection it answers an
 * SSLRequest with 'N', takes the startup message, sends AuthenticationCleartextPassword and
 * appends what it receives to FILE, one line per connection: "startup" when a startup message
 * came, then "password <the password>" when a password message came. Then it sends a FATAL
 * error and closes. With --raw FILE it is no PostgreSQL server: it appends every byte each
 * connection sends to FILE (until the peer is silent for a second) and answers nothing, e.g.
 * to see what an HTTP client would send. Exits after 600 s at the latest.
 */
#include "listen_lo.h"
#include <arpa/inet.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int
read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1)
            return -1;
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void
serve(int c, FILE *rec)
{
    unsigned char hdr[8];
    char body[4096];
    for (;;) {
        if (read_full(c, hdr, 8) != 0)
            return;
        uint32_t len, code;
        memcpy(&len, hdr, 4);
        memcpy(&code, hdr + 4, 4);
        len = ntohl(len);
        code = ntohl(code);
        if (len < 8 || len > sizeof(body))
            return;
        if (len > 8 && read_full(c, body, len - 8) != 0)
            return;
        if (code == 80877103 || code == 80877104) { /* SSLRequest, GSSENCRequest */
            if (write(c, "N", 1) != 1)
                return;
            continue;
        }
        break;
    }
    fprintf(rec, "startup\n");
    fflush(rec);
    unsigned char auth[9] = {'R', 0, 0, 0, 8, 0, 0, 0, 3};
    if (write(c, auth, sizeof(auth)) != (ssize_t)sizeof(auth))
        return;
    unsigned char t[5];
    if (read_full(c, t, 5) != 0 || t[0] != 'p')
        return;
    uint32_t len;
    memcpy(&len, t + 1, 4);
    len = ntohl(len);
    if (len < 4 || len - 4 >= sizeof(body) || read_full(c, body, len - 4) != 0)
        return;
    body[len - 4] = '\0';
    fprintf(rec, "password %s\n", body);
    fflush(rec);
    static const char err[] = "SFATAL\0C28P01\0Mpassword authentication failed\0";
    unsigned char e[5];
    uint32_t el = htonl((uint32_t)(4 + sizeof(err)));
    e[0] = 'E';
    memcpy(e + 1, &el, 4);
    if (write(c, e, 5) == 5 && write(c, err, sizeof(err)) == (ssize_t)sizeof(err)) {
        /* sent */
    }
}

static void
serve_raw(int c, FILE *rec)
{
    char buf[4096];
    for (;;) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 1000) != 1)
            return;
        ssize_t r = read(c, buf, sizeof(buf));
        if (r <= 0)
            return;
        fwrite(buf, 1, (size_t)r, rec);
        fflush(rec);
    }
}

int
main(int argc, char **argv)
{
    bool raw = argc == 3 && strcmp(argv[1], "--raw") == 0;
    if (argc != 2 && !raw) {
        fprintf(stderr, "usage: pgferry-test-fakepg [--raw] RECORD_FILE\n");
        return 2;
    }
    FILE *rec = fopen(argv[argc - 1], "a");
    if (!rec) {
        perror(argv[argc - 1]);
        return 1;
    }
    int s = listen_lo("fakepg");
    if (s < 0)
        return 1;
    time_t end = time(NULL) + 600;
    while (time(NULL) < end) {
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        if (raw)
            serve_raw(c, rec);
        else
            serve(c, rec);
        close(c);
    }
    fclose(rec);
    return 0;
}
