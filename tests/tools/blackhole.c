/*
 * pgferry-test-blackhole: listens on 127.0.0.1 (ephemeral port, printed on stdout), accepts
 * connections and never answers: a server that hangs. Exits after 600 s at the latest.
 */
#include "listen_lo.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int
main(void)
{
    int s = listen_lo("blackhole");
    if (s < 0)
        return 1;
    time_t end = time(NULL) + 600;
    int held[256], n = 0;
    while (time(NULL) < end) {
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 1000) > 0) {
            int c = accept(s, NULL, NULL);
            if (c >= 0) {
                if (n < 256)
                    held[n++] = c;
                else
                    close(c);
            }
        }
    }
    for (int i = 0; i < n; i++)
        close(held[i]);
    return 0;
}
