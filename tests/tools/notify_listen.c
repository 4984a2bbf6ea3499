/*
 * pgferry-test-notify-listen PATH SECONDS: plays systemd's side of Type=notify. Binds a datagram
 * socket at PATH and prints every message it receives, one per line, for SECONDS seconds (or
 * until it has seen STOPPING=1). Run it in the background with NOTIFY_SOCKET=PATH given to the
 * daemon.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PATH SECONDS\n", argv[0]);
        return 2;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    unlink(argv[1]);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("bind");
        return 2;
    }
    time_t end = time(NULL) + atoi(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (time(NULL) < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        printf("%s\n", buf);
        if (strstr(buf, "STOPPING=1"))
            break;
    }
    unlink(argv[1]);
    return 0;
}
