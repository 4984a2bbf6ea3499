/*
 * pgferry-test-rawsend ENDPOINT KIND [COUNT]: sends one malformed (or valid) message (COUNT
 * times, each after the previous reply) to pgferryd's control socket as a DEALER and prints
 * the (last) reply: "code=N message=..." or "no reply".
 * KIND: garbage | truncated | unknown-type | bad-version | oversized | empty-frames |
 *       many-frames | pause-unknown | valid-list | create
 * create: a CreatePipe as pgferryctl would never send it (its checks refuse the values), from
 * the environment: RAWSEND_PIPE, RAWSEND_TABLE (schema.name), RAWSEND_TARGET,
 * RAWSEND_PARTITION_BY, RAWSEND_DB, PGFERRY_PG_URI, PGFERRY_CH_URL.
 */
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "state.pb-c.h"

#include "control.pb-c.h"
#include "ipc.h"

static size_t
pack_request(Pgferry__Control__Request *r, uint8_t **out)
{
    size_t n = pgferry__control__request__get_packed_size(r);
    *out = malloc(n + 1);
    pgferry__control__request__pack(r, *out);
    return n;
}

int
main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s ENDPOINT KIND [COUNT]\n", argv[0]);
        return 2;
    }
    int count = argc == 4 ? atoi(argv[3]) : 1;
    const char *kind = argv[2];
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, to = 3000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof(to));
    if (zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "connect: %s\n", zmq_strerror(zmq_errno()));
        return 2;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__GetPipe get = PGFERRY__CONTROL__GET_PIPE__INIT;
    Pgferry__Control__ListPipes list = PGFERRY__CONTROL__LIST_PIPES__INIT;
    Pgferry__Control__PausePipe pause = PGFERRY__CONTROL__PAUSE_PIPE__INIT;
    req.version = IPC_VERSION;
    if (strcmp(kind, "garbage") == 0) {
        len = 64;
        buf = malloc(len);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(0xff - i * 7);
    } else if (strcmp(kind, "truncated") == 0) {
        char name[200];
        memset(name, 'x', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        get.name = name;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_GET;
        req.get = &get;
        len = pack_request(&req, &buf) / 2;
    } else if (strcmp(kind, "unknown-type") == 0) {
        /* version = 1, then field 99 (length-delimited), which no pgferryd knows */
        static const uint8_t m[] = {0x08, 0x01, 0x9a, 0x06, 0x01, 'x'};
        len = sizeof(m);
        buf = malloc(len);
        memcpy(buf, m, len);
    } else if (strcmp(kind, "bad-version") == 0) {
        req.version = 99;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_LIST;
        req.list = &list;
        len = pack_request(&req, &buf);
    } else if (strcmp(kind, "pause-unknown") == 0) {
        pause.name = "x";
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_PAUSE;
        req.pause = &pause;
        len = pack_request(&req, &buf);
    } else if (strcmp(kind, "valid-list") == 0) {
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_LIST;
        req.list = &list;
        len = pack_request(&req, &buf);
    } else if (strcmp(kind, "create") == 0) {
        static Pgferry__Control__CreatePipe cr = PGFERRY__CONTROL__CREATE_PIPE__INIT;
        static Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
        static Pgferry__State__TableSpec ts = PGFERRY__STATE__TABLE_SPEC__INIT;
        static Pgferry__State__TableSpec *tsp[1] = {&ts};
        static char table[200];
        const char *e;
        snprintf(table, sizeof(table), "%s", (e = getenv("RAWSEND_TABLE")) ? e : "public.t");
        char *dot = strchr(table, '.');
        if (dot) {
            *dot = '\0';
            ts.schema = table;
            ts.name = dot + 1;
        } else {
            ts.name = table;
        }
        ts.target = (e = getenv("RAWSEND_TARGET")) ? (char *)e : "";
        ts.partition_by = (e = getenv("RAWSEND_PARTITION_BY")) ? (char *)e : "";
        spec.name = (e = getenv("RAWSEND_PIPE")) ? (char *)e : "rawsend";
        spec.source = (e = getenv("PGFERRY_PG_URI")) ? (char *)e : "";
        spec.dest_url = (e = getenv("PGFERRY_CH_URL")) ? (char *)e : "";
        spec.dest_database = (e = getenv("RAWSEND_DB")) ? (char *)e : "";
        spec.tables = tsp;
        spec.n_tables = 1;
        cr.spec = &spec;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_CREATE;
        req.create = &cr;
        len = pack_request(&req, &buf);
    } else if (strcmp(kind, "oversized") == 0) {
        len = IPC_MAX_MSG + 1024;
        buf = calloc(1, len);
    } else if (strcmp(kind, "empty-frames") == 0) {
        zmq_send(s, "", 0, ZMQ_SNDMORE);
        len = 0;
        buf = malloc(1);
    } else if (strcmp(kind, "many-frames") == 0) {
        for (int i = 0; i < 10; i++)
            zmq_send(s, "abc", 3, ZMQ_SNDMORE);
        len = 3;
        buf = malloc(3);
        memcpy(buf, "abc", 3);
    } else {
        fprintf(stderr, "unknown kind %s\n", kind);
        return 2;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    int got = -1;
    for (int i = 0; i < (count > 0 ? count : 1); i++) {
        if (zmq_send(s, buf, len, 0) < 0) {
            fprintf(stderr, "send: %s\n", zmq_strerror(zmq_errno()));
            return 2;
        }
        /* the reply body is the last frame (a REQ-style delimiter may come first) */
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        got = zmq_msg_recv(&m, s, 0);
        while (got >= 0 && zmq_msg_more(&m)) {
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            got = zmq_msg_recv(&m, s, 0);
        }
        if (got < 0)
            break;
    }
    free(buf);
    if (got < 0) {
        printf("no reply\n");
    } else {
        Pgferry__Control__Reply *r =
            pgferry__control__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        if (!r)
            printf("undecodable reply\n");
        else {
            printf("code=%d message=%s\n", (int)r->code, r->message);
            pgferry__control__reply__free_unpacked(r, NULL);
        }
    }
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
