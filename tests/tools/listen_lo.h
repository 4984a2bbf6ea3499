/* The test servers' listening socket: 127.0.0.1 on an ephemeral port, the port printed on
 * stdout (the caller's script reads it). */
#ifndef PGFERRY_TEST_LISTEN_LO_H
#define PGFERRY_TEST_LISTEN_LO_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* the listening socket, or -1 after perror(who) */
static inline int
listen_lo(const char *who)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 64) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &al) != 0) {
        perror(who);
        return -1;
    }
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return s;
}

#endif
