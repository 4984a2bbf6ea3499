/*
 * pgferry-test-tcpproxy PORT: listens on 127.0.0.1 (ephemeral port, printed on stdout) and
 * forwards each connection to 127.0.0.1:PORT. Killing it makes an endpoint fail while the
 * server behind it stays up (a client switches endpoints; the server still serves its peers).
 * One child process per connection; exits after 900 s at the latest.
 */
#include "listen_lo.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void
pump(int a, int b)
{
    struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    char buf[65536];
    for (;;) {
        if (poll(p, 2, 900000) <= 0)
            return;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof(buf));
            if (n <= 0)
                return;
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(p[1 - i].fd, buf + off, (size_t)(n - off));
                if (w <= 0)
                    return;
                off += w;
            }
        }
    }
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pgferry-test-tcpproxy PORT\n");
        return 2;
    }
    int target = atoi(argv[1]);
    signal(SIGCHLD, SIG_IGN);
    int s = listen_lo("tcpproxy");
    if (s < 0)
        return 1;
    time_t end = time(NULL) + 900;
    while (time(NULL) < end) {
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        if (fork() == 0) {
            close(s);
            int t = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in ta;
            memset(&ta, 0, sizeof(ta));
            ta.sin_family = AF_INET;
            ta.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ta.sin_port = htons((unsigned short)target);
            if (t >= 0 && connect(t, (struct sockaddr *)&ta, sizeof(ta)) == 0)
                pump(c, t);
            _exit(0);
        }
        close(c);
    }
    return 0;
}
